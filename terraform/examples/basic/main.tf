# The smallest useful imagemcp deployment: everything in one region, the API on its execute-api
# URL (set domain_name and certificate_arn for a custom domain). See docs/deploy-aws.md.

terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "imagemcp"
}

variable "domain_name" {
  description = "Optional custom domain for the REST API and pages."
  type        = string
  default     = ""
}

variable "certificate_arn" {
  description = "ACM certificate for domain_name (same region)."
  type        = string
  default     = ""
}

module "imagemcp" {
  source = "../../modules/imagemcp"

  name            = var.name
  package_dir     = "${path.root}/../../../target/lambda"
  architecture    = "arm64"
  domain_name     = var.domain_name
  certificate_arn = var.certificate_arn
}

output "mcp_url" {
  description = "Give this to MCP clients, with an API key as the bearer token."
  value       = module.imagemcp.mcp_url
}

output "api_url" {
  description = "The REST API and web pages."
  value       = module.imagemcp.api_url
}

output "app_secret_arn" {
  description = "Put the OpenAI key and the KEK here before the first request."
  value       = module.imagemcp.app_secret_arn
}
