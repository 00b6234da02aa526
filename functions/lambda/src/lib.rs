//! The AWS Lambda runtime: shared start-up for the `mcp`, `api`, `webhooks` and `batch` functions.
