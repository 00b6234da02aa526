# What a deployment hands back: the URLs to give users, and the names operators need.

output "mcp_url" {
  description = "The MCP server URL to give MCP clients (Claude, ChatGPT, Cursor): the mcp function's streaming URL plus /mcp."
  value       = "${trimsuffix(aws_lambda_function_url.mcp.function_url, "/")}/mcp"
}

output "api_url" {
  description = "The REST API and web pages base URL (the custom domain when set)."
  value       = local.api_url
}

output "api_domain_target" {
  description = "Where to point the custom domain's DNS record (CNAME or alias), when domain_name is set."
  value       = var.domain_name != "" ? aws_apigatewayv2_domain_name.custom[0].domain_name_configuration[0].target_domain_name : null
}

output "table_name" {
  description = "The DynamoDB table."
  value       = aws_dynamodb_table.main.name
}

output "bucket_name" {
  description = "The S3 bucket of images, previews and exports."
  value       = aws_s3_bucket.blobs.bucket
}

output "queue_url" {
  description = "The job queue."
  value       = aws_sqs_queue.jobs.url
}

output "dead_letter_queue_url" {
  description = "The job dead-letter queue (inspect and redrive from the SQS console)."
  value       = aws_sqs_queue.dead_letters.url
}

output "app_secret_arn" {
  description = "Put OPENAI_API_KEY, IMAGEMCP_KEK, IMAGEMCP_KEK_ID and IMAGEMCP_TOKEN_KEYS here (a JSON object)."
  value       = aws_secretsmanager_secret.app.arn
}

output "stripe_secret_arn" {
  description = "Put STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET here (a JSON object)."
  value       = aws_secretsmanager_secret.stripe.arn
}

output "kms_key_arn" {
  description = "The key encrypting the table, bucket, queues, secrets, logs and function environments."
  value       = aws_kms_key.main.arn
}

output "function_names" {
  description = "The Lambda functions by role."
  value       = { for k, f in aws_lambda_function.fn : k => f.function_name }
}
