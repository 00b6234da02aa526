//! What the adapters need to know besides the SDK's own configuration: which table, bucket and
//! queues, how blobs are encrypted. Read once from the environment and checked.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use imagemcp_core::{Error, Result};

use crate::blob::Sse;

/// The resources a deployment runs on (Terraform sets these as the functions' environment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsSettings {
    /// `IMAGEMCP_TABLE`: the single DynamoDB table (items, cache entries, sessions).
    pub table: String,
    /// `IMAGEMCP_BUCKET`: the S3 bucket for images and previews.
    pub bucket: String,
    /// `IMAGEMCP_QUEUE_URL`: the SQS queue for long work.
    pub queue_url: String,
    /// `IMAGEMCP_DLQ_URL`: its dead-letter queue, read by operators (optional).
    pub dead_letter_queue_url: Option<String>,
    /// `IMAGEMCP_QUEUE_MAX_ATTEMPTS`: the queue's `maxReceiveCount` (default 3). The consumer
    /// marks a job failed on its last attempt, so this must match the redrive policy.
    pub queue_max_attempts: u32,
    /// `IMAGEMCP_S3_KMS_KEY_ID`: SSE-KMS with this key; without it SSE-S3 (AES-256).
    pub sse: Sse,
    /// `IMAGEMCP_S3_FORCE_PATH_STYLE`: path-style S3 URLs, which emulators need. Defaults to on
    /// when an endpoint override (`AWS_ENDPOINT_URL[_S3]`) is set, off otherwise.
    pub force_path_style: bool,
}

impl AwsSettings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads the settings through `var` (the environment, or a map in tests).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let required = |name: &str| {
            var(name).ok_or_else(|| Error::invalid(name, "must be set (see docs/deploy-aws.md)"))
        };
        let queue_max_attempts = match var("IMAGEMCP_QUEUE_MAX_ATTEMPTS") {
            None => 3,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    Error::invalid(
                        "IMAGEMCP_QUEUE_MAX_ATTEMPTS",
                        "must be a number from 1 to 1000",
                    )
                })?,
        };
        let emulated = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
            .map(&var)
            .iter()
            .any(Option::is_some);
        let force_path_style = match var("IMAGEMCP_S3_FORCE_PATH_STYLE").as_deref() {
            None => emulated,
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(_) => {
                return Err(Error::invalid(
                    "IMAGEMCP_S3_FORCE_PATH_STYLE",
                    "must be true or false",
                ));
            }
        };
        Ok(Self {
            table: required("IMAGEMCP_TABLE")?,
            bucket: required("IMAGEMCP_BUCKET")?,
            queue_url: required("IMAGEMCP_QUEUE_URL")?,
            dead_letter_queue_url: var("IMAGEMCP_DLQ_URL"),
            queue_max_attempts,
            sse: match var("IMAGEMCP_S3_KMS_KEY_ID") {
                Some(key) => Sse::Kms(Some(key)),
                None => Sse::Aes256,
            },
            force_path_style,
        })
    }
}

/// The SDK clients, built once per process (a Lambda cold start) and cloned cheaply.
#[derive(Clone, Debug)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

/// How long one SDK attempt and one whole call (retries included) may take: a Lambda must fail
/// a stuck call well before its own timeout rather than be killed mid-request.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const CALL_TIMEOUT: Duration = Duration::from_secs(25);

impl Clients {
    /// Clients configured from the environment (region, credentials, endpoint overrides) with the
    /// SDK's standard retries (3 attempts with backoff, throttling included) and our timeouts.
    pub async fn from_env(force_path_style: bool) -> Self {
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard())
            .timeout_config(timeouts())
            .load()
            .await;
        Self::from_config(&shared, force_path_style)
    }

    /// Clients from an SDK configuration built by the caller (tests point it at an emulator).
    pub fn from_config(shared: &aws_config::SdkConfig, force_path_style: bool) -> Self {
        let s3 = aws_sdk_s3::config::Builder::from(shared)
            .force_path_style(force_path_style)
            .build();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(shared),
            s3: aws_sdk_s3::Client::from_conf(s3),
            sqs: aws_sdk_sqs::Client::new(shared),
            secrets: aws_sdk_secretsmanager::Client::new(shared),
        }
    }
}

/// The timeouts of every SDK call.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(CALL_TIMEOUT)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<AwsSettings> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AwsSettings::from_lookup(|k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 3] = [
        ("IMAGEMCP_TABLE", "t"),
        ("IMAGEMCP_BUCKET", "b"),
        ("IMAGEMCP_QUEUE_URL", "https://sqs/q"),
    ];

    #[test]
    fn defaults_and_overrides() {
        let s = settings(&BASE).unwrap();
        assert_eq!(
            (s.queue_max_attempts, s.force_path_style, &s.sse),
            (3, false, &Sse::Aes256)
        );
        let mut vars = BASE.to_vec();
        vars.extend([
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("IMAGEMCP_S3_KMS_KEY_ID", "alias/imagemcp"),
            ("IMAGEMCP_QUEUE_MAX_ATTEMPTS", "5"),
        ]);
        let s = settings(&vars).unwrap();
        assert_eq!(s.queue_max_attempts, 5);
        assert!(
            s.force_path_style,
            "an endpoint override means an emulator: path style"
        );
        assert_eq!(s.sse, Sse::Kms(Some("alias/imagemcp".into())));
    }

    #[test]
    fn missing_or_bad_values_are_named() {
        let err = settings(&BASE[..2]).unwrap_err();
        assert!(err.to_string().contains("IMAGEMCP_QUEUE_URL"), "{err}");
        let mut vars = BASE.to_vec();
        vars.push(("IMAGEMCP_QUEUE_MAX_ATTEMPTS", "0"));
        assert!(settings(&vars).is_err());
    }
}
