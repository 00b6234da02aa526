# imagemcp on AWS: four Lambda functions (mcp behind a streaming function URL; api and webhooks
# behind an HTTP API; batch fed by SQS), one DynamoDB table, one S3 bucket, a job queue with its
# dead-letter queue, secrets, and one KMS key encrypting all of it.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition
  tags      = merge({ "app" = "imagemcp", "imagemcp:deployment" = var.name }, var.tags)

  functions = {
    mcp      = { memory = var.memory_mb, timeout = var.http_timeout_seconds }
    api      = { memory = var.memory_mb, timeout = var.http_timeout_seconds }
    webhooks = { memory = 256, timeout = 30 }
    batch    = { memory = var.batch_memory_mb, timeout = var.batch_timeout_seconds }
  }

  # What each function may touch, beyond its own logs: least privilege per function.
  table_readers = ["mcp", "api", "webhooks", "batch"]
  blob_users    = ["mcp", "api", "batch"]
  queue_senders = ["mcp", "api", "webhooks"]
  # Every function builds the whole app (the KEK is required at start), and billing must be on in
  # all of them alike: a function without Stripe's settings would serve every org the unlimited
  # local plan (see docs/billing.md).
  app_secret    = ["mcp", "api", "webhooks", "batch"]
  stripe_secret = ["mcp", "api", "webhooks", "batch"]

  api_url    = var.domain_name != "" ? "https://${var.domain_name}" : aws_apigatewayv2_api.http.api_endpoint
  public_url = local.api_url
}

# ---------------------------------------------------------------------------------------------
# Encryption: one customer-managed key for the table, bucket, queues, secrets, logs and the
# functions' environment, rotated yearly by KMS.

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_111:A key policy's "*" resource means this key only; write access is constrained to the account's own IAM and to CloudWatch Logs in this account.
  #checkov:skip=CKV_AWS_356:In a key policy the resource "*" is the key the policy is attached to.
  #checkov:skip=CKV_AWS_109:The account root statement is the standard key policy that delegates to IAM; without it the key becomes unmanageable.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
  statement {
    sid       = "CloudWatchLogsEncrypt"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "main" {
  description             = "imagemcp ${var.name}: data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = local.tags
}

resource "aws_kms_alias" "main" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.main.key_id
}

# ---------------------------------------------------------------------------------------------
# State: the single table (items, sessions, cache entries, jobs).

resource "aws_dynamodb_table" "main" {
  name                        = var.name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = true

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "gsi1pk"
    type = "S"
  }
  attribute {
    name = "gsi1sk"
    type = "S"
  }

  global_secondary_index {
    name            = "gsi1"
    hash_key        = "gsi1pk"
    range_key       = "gsi1sk"
    projection_type = "ALL"
  }

  # Expired items (sessions, tombstones, cache entries, quota windows) read as absent at once and
  # are removed by DynamoDB within days.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }

  tags = local.tags
}

# ---------------------------------------------------------------------------------------------
# Blobs: images, previews and exports; downloads go straight to S3 through presigned URLs.

resource "aws_s3_bucket" "blobs" {
  #checkov:skip=CKV_AWS_18:Server access logs would need a second bucket; requests are audited by CloudTrail data events where required, and every download URL is minted (and logged) by the app.
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice left to the operator (it doubles storage cost); versioning and KMS protect the data in-region.
  #checkov:skip=CKV2_AWS_62:Nothing consumes bucket events: the functions write and read objects themselves.
  bucket_prefix = "${var.name}-blobs-"
  tags          = local.tags
}

resource "aws_s3_bucket_ownership_controls" "blobs" {
  bucket = aws_s3_bucket.blobs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "blobs" {
  bucket                  = aws_s3_bucket.blobs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "blobs" {
  bucket = aws_s3_bucket.blobs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "blobs" {
  bucket = aws_s3_bucket.blobs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "blobs" {
  bucket = aws_s3_bucket.blobs.id

  rule {
    id     = "exports-expire"
    status = "Enabled"
    filter {
      prefix = "exports/"
    }
    expiration {
      days = var.export_expiration_days
    }
  }

  rule {
    id     = "old-versions-expire"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.blobs]
}

data "aws_iam_policy_document" "blobs" {
  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.blobs.arn, "${aws_s3_bucket.blobs.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "blobs" {
  bucket     = aws_s3_bucket.blobs.id
  policy     = data.aws_iam_policy_document.blobs.json
  depends_on = [aws_s3_bucket_public_access_block.blobs]
}

# ---------------------------------------------------------------------------------------------
# Long work: the job queue and its dead-letter queue.

resource "aws_sqs_queue" "dead_letters" {
  name                              = "${var.name}-jobs-dlq"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = aws_kms_key.main.arn
  kms_data_key_reuse_period_seconds = 300
  tags                              = local.tags
}

resource "aws_sqs_queue" "jobs" {
  name                              = "${var.name}-jobs"
  visibility_timeout_seconds        = 6 * var.batch_timeout_seconds
  message_retention_seconds         = 345600
  kms_master_key_id                 = aws_kms_key.main.arn
  kms_data_key_reuse_period_seconds = 300
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letters.arn
    maxReceiveCount     = var.queue_max_attempts
  })
  tags = local.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "dead_letters" {
  queue_url = aws_sqs_queue.dead_letters.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.jobs.arn]
  })
}

# ---------------------------------------------------------------------------------------------
# Secrets: created empty; the operator puts the values (docs/deploy-aws.md), so they never pass
# through Terraform state. Each is a JSON object of environment-style names.

resource "aws_secretsmanager_secret" "app" {
  #checkov:skip=CKV2_AWS_57:The OpenAI key is rotated in OpenAI's console and the KEK and token keys by the app's own rotation (old keys stay listed until re-wrapped); a Lambda rotator cannot do either.
  name_prefix = "${var.name}/app-"
  description = "imagemcp ${var.name}: OPENAI_API_KEY, IMAGEMCP_KEK, IMAGEMCP_KEK_ID, IMAGEMCP_KEK_PREVIOUS, IMAGEMCP_TOKEN_KEYS"
  kms_key_id  = aws_kms_key.main.arn
  tags        = local.tags
}

resource "aws_secretsmanager_secret" "stripe" {
  #checkov:skip=CKV2_AWS_57:Stripe keys are rolled in Stripe's dashboard, then put here; a Lambda rotator cannot call Stripe's key rolling.
  name_prefix = "${var.name}/stripe-"
  description = "imagemcp ${var.name}: STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET"
  kms_key_id  = aws_kms_key.main.arn
  tags        = local.tags
}

# ---------------------------------------------------------------------------------------------
# Logs.

resource "aws_cloudwatch_log_group" "functions" {
  for_each          = local.functions
  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
  tags              = local.tags
}

resource "aws_cloudwatch_log_group" "api_access" {
  name              = "/aws/apigateway/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
  tags              = local.tags
}

# ---------------------------------------------------------------------------------------------
# One role per function, allowed exactly what that function does.

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each           = local.functions
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = local.tags
}

data "aws_iam_policy_document" "function" {
  for_each = local.functions

  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.functions[each.key].arn}:*"]
  }

  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions.
  }

  statement {
    sid       = "Key"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }

  dynamic "statement" {
    for_each = contains(local.table_readers, each.key) ? [1] : []
    content {
      sid = "Table"
      actions = [
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
        "dynamodb:Query", "dynamodb:ConditionCheckItem",
      ]
      resources = [aws_dynamodb_table.main.arn, "${aws_dynamodb_table.main.arn}/index/*"]
    }
  }

  dynamic "statement" {
    for_each = contains(local.blob_users, each.key) ? [1] : []
    content {
      sid       = "Blobs"
      actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
      resources = ["${aws_s3_bucket.blobs.arn}/*"]
    }
  }

  dynamic "statement" {
    for_each = contains(local.queue_senders, each.key) ? [1] : []
    content {
      sid       = "SendJobs"
      actions   = ["sqs:SendMessage"]
      resources = [aws_sqs_queue.jobs.arn]
    }
  }

  dynamic "statement" {
    for_each = each.key == "batch" ? [1] : []
    content {
      sid       = "ConsumeJobs"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:SendMessage"]
      resources = [aws_sqs_queue.jobs.arn]
    }
  }

  dynamic "statement" {
    for_each = contains(local.app_secret, each.key) ? [1] : []
    content {
      sid       = "AppSecret"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [aws_secretsmanager_secret.app.arn]
    }
  }

  dynamic "statement" {
    for_each = contains(local.stripe_secret, each.key) ? [1] : []
    content {
      sid       = "StripeSecret"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [aws_secretsmanager_secret.stripe.arn]
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions
  name     = "${var.name}-${each.key}"
  role     = aws_iam_role.function[each.key].id
  policy   = data.aws_iam_policy_document.function[each.key].json
}

# ---------------------------------------------------------------------------------------------
# The functions.

resource "aws_lambda_function" "fn" {
  #checkov:skip=CKV_AWS_116:mcp, api and webhooks are invoked synchronously (the caller sees the error) and batch by an SQS event source mapping, whose failures go to the queue's own dead-letter queue; the only asynchronous invocation is the retention schedule, whose sweep is idempotent and simply runs again on the next tick.
  #checkov:skip=CKV_AWS_117:The functions call only AWS public endpoints and OpenAI/Stripe on the internet; a VPC would add a NAT gateway and cold-start latency for no isolation gained.
  #checkov:skip=CKV_AWS_272:Packages are built reproducibly by `cargo lambda build` in CI; code signing needs an AWS Signer profile the operator may add.
  for_each      = local.functions
  function_name = "${var.name}-${each.key}"
  role          = aws_iam_role.function[each.key].arn
  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [var.architecture]
  filename      = "${var.package_dir}/${each.key}/bootstrap.zip"
  # Redeploy exactly when the package changes.
  source_code_hash               = filebase64sha256("${var.package_dir}/${each.key}/bootstrap.zip")
  memory_size                    = each.value.memory
  timeout                        = each.value.timeout
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = aws_kms_key.main.arn

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.functions[each.key].name
  }

  environment {
    variables = merge(
      {
        IMAGEMCP_TABLE                   = aws_dynamodb_table.main.name
        IMAGEMCP_BUCKET                  = aws_s3_bucket.blobs.bucket
        IMAGEMCP_QUEUE_URL               = aws_sqs_queue.jobs.url
        IMAGEMCP_DLQ_URL                 = aws_sqs_queue.dead_letters.url
        IMAGEMCP_QUEUE_MAX_ATTEMPTS      = tostring(var.queue_max_attempts)
        IMAGEMCP_S3_KMS_KEY_ID           = aws_kms_key.main.arn
        IMAGEMCP_PUBLIC_URL              = local.public_url
        IMAGEMCP_DOWNLOAD_URL_TTL_SECS   = tostring(var.download_url_ttl_seconds)
        IMAGEMCP_COST_CONFIRMATION_CENTS = tostring(var.cost_confirmation_cents)
        IMAGEMCP_ALLOWED_ORIGINS         = join(",", var.allowed_origins)
        IMAGEMCP_SECRET_ARNS = join(",", concat(
          contains(local.app_secret, each.key) ? [aws_secretsmanager_secret.app.arn] : [],
          contains(local.stripe_secret, each.key) ? [aws_secretsmanager_secret.stripe.arn] : [],
        ))
        RUST_LOG = "info"
      },
      var.openai_image_model != "" ? { OPENAI_IMAGE_MODEL = var.openai_image_model } : {},
      # Billing is on when the Stripe secret holds STRIPE_SECRET_KEY; the price ids are not secret.
      var.stripe_pro_price != "" ? { STRIPE_PRO_PRICE = var.stripe_pro_price } : {},
      var.stripe_team_price != "" ? { STRIPE_TEAM_PRICE = var.stripe_team_price } : {},
      var.stripe_meter_event != "" ? { STRIPE_METER_EVENT = var.stripe_meter_event } : {},
    )
  }

  depends_on = [aws_iam_role_policy.function, aws_cloudwatch_log_group.functions]
  tags       = local.tags
}

# MCP: a function URL in response-streaming mode, so progress notifications stream as SSE (API
# Gateway buffers responses). The app authenticates every request (API keys, OAuth tokens).
resource "aws_lambda_function_url" "mcp" {
  #checkov:skip=CKV_AWS_258:MCP clients authenticate with bearer tokens (API keys or the server's own OAuth 2.1 tokens) checked by the app on every request; IAM SigV4 is not something MCP clients can send.
  function_name      = aws_lambda_function.fn["mcp"].function_name
  authorization_type = "NONE"
  invoke_mode        = "RESPONSE_STREAM"
}

# Jobs: SQS feeds the batch function, which reports per-message failures.
resource "aws_lambda_event_source_mapping" "jobs" {
  event_source_arn                   = aws_sqs_queue.jobs.arn
  function_name                      = aws_lambda_function.fn["batch"].arn
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = 1
  function_response_types            = ["ReportBatchItemFailures"]
  scaling_config {
    maximum_concurrency = 10
  }
}

# Retention: on a schedule, the batch function deletes the S3 objects of Free images whose expiry
# day is over (`imagemcp_app::billing::retention`; the DynamoDB TTL removes their records).
resource "aws_cloudwatch_event_rule" "retention_sweep" {
  name                = "${var.name}-retention-sweep"
  description         = "Deletes the stored bytes of expired Free-plan images."
  schedule_expression = var.retention_sweep_schedule
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "retention_sweep" {
  rule = aws_cloudwatch_event_rule.retention_sweep.name
  arn  = aws_lambda_function.fn["batch"].arn
  retry_policy {
    maximum_retry_attempts       = 2
    maximum_event_age_in_seconds = 3600
  }
}

resource "aws_lambda_permission" "retention_sweep" {
  statement_id  = "AllowRetentionSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn["batch"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.retention_sweep.arn
}

# ---------------------------------------------------------------------------------------------
# The HTTP API: REST routes and pages to `api`, webhooks to `webhooks`.

resource "aws_apigatewayv2_api" "http" {
  name          = var.name
  protocol_type = "HTTP"
  tags          = local.tags
}

resource "aws_apigatewayv2_integration" "fn" {
  for_each               = toset(["api", "webhooks"])
  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.fn[each.key].invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 30000
}

resource "aws_apigatewayv2_route" "default" {
  #checkov:skip=CKV_AWS_309:Routes are public by design; the app authenticates each request itself (API keys, OAuth tokens, sessions) and serves public pages and metadata.
  api_id    = aws_apigatewayv2_api.http.id
  route_key = "$default"
  target    = "integrations/${aws_apigatewayv2_integration.fn["api"].id}"
}

resource "aws_apigatewayv2_route" "webhooks" {
  #checkov:skip=CKV_AWS_309:Webhook senders (Stripe, Slack) authenticate by signing the body, which the function verifies; they cannot send AWS credentials.
  api_id    = aws_apigatewayv2_api.http.id
  route_key = "ANY /webhooks/{proxy+}"
  target    = "integrations/${aws_apigatewayv2_integration.fn["webhooks"].id}"
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.api_throttle_rate
    throttling_burst_limit = var.api_throttle_burst
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId        = "$context.requestId", ip = "$context.identity.sourceIp", method = "$context.httpMethod",
      path             = "$context.path", status = "$context.status", latencyMs = "$context.responseLatency",
      integrationError = "$context.integrationErrorMessage"
    })
  }

  tags = local.tags
}

resource "aws_lambda_permission" "http" {
  for_each      = toset(["api", "webhooks"])
  statement_id  = "AllowHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn[each.key].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/*/*"
}

resource "aws_apigatewayv2_domain_name" "custom" {
  count       = var.domain_name != "" ? 1 : 0
  domain_name = var.domain_name
  domain_name_configuration {
    certificate_arn = var.certificate_arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }
  tags = local.tags

  lifecycle {
    precondition {
      condition     = var.certificate_arn != ""
      error_message = "certificate_arn is required when domain_name is set."
    }
  }
}

resource "aws_apigatewayv2_api_mapping" "custom" {
  count       = var.domain_name != "" ? 1 : 0
  api_id      = aws_apigatewayv2_api.http.id
  domain_name = aws_apigatewayv2_domain_name.custom[0].id
  stage       = aws_apigatewayv2_stage.default.id
}
