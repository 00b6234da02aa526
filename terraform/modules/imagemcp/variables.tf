# Inputs of the imagemcp module. Every variable is documented; defaults suit a small production
# deployment in one region.

variable "name" {
  description = "Prefix of every resource name (letters, digits and hyphens), e.g. \"imagemcp-prod\"."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2 to 31 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "package_dir" {
  description = "Directory holding the function packages built by `cargo lambda build --release --arm64 --output-format zip` (target/lambda): <dir>/mcp/bootstrap.zip, <dir>/api/bootstrap.zip, <dir>/webhooks/bootstrap.zip, <dir>/batch/bootstrap.zip."
  type        = string
}

variable "architecture" {
  description = "Lambda architecture the packages were built for: arm64 (Graviton, cheaper and faster to start) or x86_64."
  type        = string
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_mb" {
  description = "Memory of the HTTP functions (mcp, api) in MB; CPU scales with it. Image previews are CPU-bound."
  type        = number
  default     = 1024
}

variable "batch_memory_mb" {
  description = "Memory of the batch (queue consumer) function in MB."
  type        = number
  default     = 1024
}

variable "http_timeout_seconds" {
  description = "Timeout of the mcp and api functions. A high-quality generation of several images can take 2 minutes."
  type        = number
  default     = 180
}

variable "retention_sweep_schedule" {
  description = "EventBridge schedule of the retention sweep (the batch function deletes expired Free images' objects, up to 1000 images per run)."
  type        = string
  default     = "rate(1 hour)"
}

variable "batch_timeout_seconds" {
  description = "Timeout of the batch function. The queue's visibility timeout is six times this, as AWS recommends."
  type        = number
  default     = 300
}

variable "reserved_concurrency" {
  description = "Reserved concurrency per function (caps spend and protects the account's other functions). -1 leaves it unreserved."
  type        = number
  default     = 50
}

variable "queue_max_attempts" {
  description = "Deliveries of a queued job message before it moves to the dead-letter queue (the redrive maxReceiveCount). The consumer marks the job failed on the last one."
  type        = number
  default     = 3
}

variable "batch_size" {
  description = "Messages per batch handed to the batch function."
  type        = number
  default     = 5
}

variable "log_retention_days" {
  description = "Retention of the functions' and the API's log groups."
  type        = number
  default     = 365
}

variable "download_url_ttl_seconds" {
  description = "Lifetime of presigned image download URLs (60 to 604800)."
  type        = number
  default     = 900
}

variable "cost_confirmation_cents" {
  description = "Estimated cost, in cents, above which a generating MCP tool asks before spending (0 to 1000000; users and organisations may set their own)."
  type        = number
  default     = 100

  validation {
    condition     = var.cost_confirmation_cents >= 0 && var.cost_confirmation_cents <= 1000000 && floor(var.cost_confirmation_cents) == var.cost_confirmation_cents
    error_message = "cost_confirmation_cents must be a whole number from 0 to 1000000."
  }
}

variable "export_expiration_days" {
  description = "Days after which objects under exports/ (multi-format export bundles) are deleted."
  type        = number
  default     = 7
}

variable "noncurrent_version_expiration_days" {
  description = "Days a replaced or deleted object version is kept (versioning protects against mistakes, not forever)."
  type        = number
  default     = 30
}

variable "openai_image_model" {
  description = "Default OpenAI image model when a request names none (empty: the server's default)."
  type        = string
  default     = ""
}

variable "stripe_pro_price" {
  description = "Stripe price id of Pro ($29/month). Needed once the Stripe secret holds STRIPE_SECRET_KEY (billing on)."
  type        = string
  default     = ""
}

variable "stripe_team_price" {
  description = "Stripe price id of Team: per seat, package-priced at $99 per 5 seats (see docs/billing.md)."
  type        = string
  default     = ""
}

variable "stripe_meter_event" {
  description = "Event name of the Stripe Billing Meter that bills overage images (empty: imagemcp_overage_images)."
  type        = string
  default     = ""
}

variable "allowed_origins" {
  description = "Browser origins allowed to call /mcp besides the deployment's own (e.g. a web client)."
  type        = list(string)
  default     = []
}

variable "domain_name" {
  description = "Optional custom domain for the HTTP API (REST, pages, webhooks), e.g. \"images.example.com\". Empty: the execute-api URL."
  type        = string
  default     = ""
}

variable "certificate_arn" {
  description = "ACM certificate (same region) for domain_name. Required when domain_name is set; point a DNS record at the output api_domain_target."
  type        = string
  default     = ""
}

variable "api_throttle_rate" {
  description = "Steady-state requests per second the HTTP API accepts before answering 429."
  type        = number
  default     = 100
}

variable "api_throttle_burst" {
  description = "Burst of requests the HTTP API accepts."
  type        = number
  default     = 200
}

variable "kms_deletion_window_days" {
  description = "Waiting period before the KMS key is deleted after `terraform destroy` (7 to 30)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
