//! The Worker's settings from its vars and secrets, read through a lookup so this module is pure
//! (it builds and is tested natively too): where and as whom it reaches AWS, the table, bucket and
//! encryption, the queue's attempts, and the settings every runtime shares (parsed by
//! `imagemcp_app::settings`). `docs/settings.md` lists the variables (its Worker column); the tests
//! below check this module reads exactly those.

use imagemcp_app::settings::{Defaults, Settings};
use imagemcp_core::{Error, Result};

/// Deliveries before a message goes to the dead-letter queue: `max_retries` + 1 in wrangler.toml.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;

/// Where and as whom the Worker reaches AWS: from Worker vars and secrets (see wrangler.toml).
#[derive(Clone, PartialEq, Eq)]
pub struct AwsTarget {
    pub region: String,
    /// `https://dynamodb.<region>.amazonaws.com`, or an emulator's URL.
    pub dynamodb_endpoint: String,
    /// `https://s3.<region>.amazonaws.com`, or an emulator's URL; buckets are addressed path-style.
    pub s3_endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for AwsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsTarget")
            .field("region", &self.region)
            .field("dynamodb_endpoint", &self.dynamodb_endpoint)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("access_key_id", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// How objects are encrypted at rest: `AES256` (SSE-S3) or `aws:kms` with an optional key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sse {
    Aes256,
    Kms(Option<String>),
}

/// The Worker's checked settings.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    pub aws: AwsTarget,
    /// `IMAGEMCP_TABLE`: the DynamoDB table.
    pub table: String,
    /// `IMAGEMCP_BUCKET`: the S3 bucket.
    pub bucket: String,
    /// `IMAGEMCP_SSE` and `IMAGEMCP_KMS_KEY_ID`.
    pub sse: Sse,
    /// `IMAGEMCP_QUEUE_MAX_ATTEMPTS` (default [`DEFAULT_MAX_ATTEMPTS`]).
    pub queue_max_attempts: u32,
    /// What every runtime shares; the KEK is required here.
    pub app: Settings,
}

impl WorkerSettings {
    /// Reads and checks the settings through `var` (the Worker's secrets, then its vars).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &str| {
            get(name)
                .ok_or_else(|| Error::invalid(name, "must be set (see docs/deploy-cloudflare.md)"))
        };
        let region = get("AWS_REGION").unwrap_or_else(|| "us-east-1".to_owned());
        let endpoint = get("AWS_ENDPOINT_URL");
        let service_endpoint = |name: &str, service: &str| {
            get(name)
                .or_else(|| endpoint.clone())
                .unwrap_or_else(|| format!("https://{service}.{region}.amazonaws.com"))
        };
        let aws = AwsTarget {
            dynamodb_endpoint: service_endpoint("AWS_ENDPOINT_URL_DYNAMODB", "dynamodb"),
            s3_endpoint: service_endpoint("AWS_ENDPOINT_URL_S3", "s3"),
            region: region.clone(),
            access_key_id: required("AWS_ACCESS_KEY_ID")?,
            secret_access_key: required("AWS_SECRET_ACCESS_KEY")?,
        };
        let kms_key = get("IMAGEMCP_KMS_KEY_ID");
        let sse = match get("IMAGEMCP_SSE").as_deref() {
            None | Some("aws:kms") => Sse::Kms(kms_key),
            Some("AES256") if kms_key.is_some() => {
                return Err(Error::invalid(
                    "IMAGEMCP_KMS_KEY_ID",
                    "is set, but IMAGEMCP_SSE is AES256 (which uses no KMS key)",
                ));
            }
            Some("AES256") => Sse::Aes256,
            Some(_) => return Err(Error::invalid("IMAGEMCP_SSE", "must be AES256 or aws:kms")),
        };
        let queue_max_attempts = match get("IMAGEMCP_QUEUE_MAX_ATTEMPTS") {
            None => DEFAULT_MAX_ATTEMPTS,
            Some(v) => v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                Error::invalid("IMAGEMCP_QUEUE_MAX_ATTEMPTS", "must be a positive integer")
            })?,
        };
        let app = Settings::from_vars(&var, &Defaults::deployment())?;
        // Stored secrets and prompts are sealed with it: checked here, before anything is served.
        app.required_keyring()?;
        Ok(Self {
            aws,
            table: required("IMAGEMCP_TABLE")?,
            bucket: required("IMAGEMCP_BUCKET")?,
            sse,
            queue_max_attempts,
            app,
        })
    }
}

#[cfg(test)]
mod tests {
    use imagemcp_app::settings::documented::{Recorder, SHARED, assert_shared_landed, read_by};

    use super::*;

    /// The Worker's own variables, none at its default (`aws:kms` is the default of
    /// `IMAGEMCP_SSE`, but the only value a KMS key id goes with; `AES256` is checked below).
    const OWN: &[(&str, &str)] = &[
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:5001"),
        ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5002"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI"),
        ("IMAGEMCP_TABLE", "images-table"),
        ("IMAGEMCP_BUCKET", "images-bucket"),
        ("IMAGEMCP_SSE", "aws:kms"),
        ("IMAGEMCP_KMS_KEY_ID", "alias/images"),
        ("IMAGEMCP_QUEUE_MAX_ATTEMPTS", "7"),
    ];

    fn with(changes: &[(&'static str, Option<&'static str>)]) -> Result<WorkerSettings> {
        let mut vars: Vec<(&str, &str)> = [OWN, SHARED].concat();
        for (name, value) in changes {
            vars.retain(|(k, _)| k != name);
            if let Some(value) = value {
                vars.push((name, value));
            }
        }
        let vars = Recorder::new(&vars);
        WorkerSettings::from_vars(|n| vars.get(n))
    }

    #[test]
    fn every_documented_variable_lands_in_the_settings() {
        let vars = Recorder::new(&[OWN, SHARED].concat());
        assert_eq!(vars.names(), read_by("Worker"), "the test sets every one");
        let s = WorkerSettings::from_vars(|n| vars.get(n)).unwrap();
        assert_eq!(
            vars.asked(),
            read_by("Worker"),
            "and the Worker reads those"
        );

        assert_eq!(
            s.aws,
            AwsTarget {
                region: "eu-west-1".into(),
                dynamodb_endpoint: "http://127.0.0.1:5001".into(),
                s3_endpoint: "http://127.0.0.1:5002".into(),
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI".into(),
            }
        );
        assert_eq!(
            (s.table.as_str(), s.bucket.as_str()),
            ("images-table", "images-bucket")
        );
        assert_eq!(s.sse, Sse::Kms(Some("alias/images".into())));
        assert_eq!(s.queue_max_attempts, 7);

        assert_shared_landed(&s.app);
    }

    #[test]
    fn one_endpoint_serves_both_services_and_sse_s3_takes_no_key() {
        let s = with(&[
            ("AWS_ENDPOINT_URL_DYNAMODB", None),
            ("AWS_ENDPOINT_URL_S3", None),
            ("IMAGEMCP_SSE", Some("AES256")),
            ("IMAGEMCP_KMS_KEY_ID", None),
        ])
        .unwrap();
        assert_eq!(s.aws.dynamodb_endpoint, "http://127.0.0.1:5000");
        assert_eq!(s.aws.s3_endpoint, "http://127.0.0.1:5000");
        assert_eq!(s.sse, Sse::Aes256);
        let s = with(&[
            ("AWS_ENDPOINT_URL", None),
            ("AWS_ENDPOINT_URL_DYNAMODB", None),
            ("IMAGEMCP_SSE", None),
            ("IMAGEMCP_KMS_KEY_ID", None),
            ("IMAGEMCP_QUEUE_MAX_ATTEMPTS", None),
        ])
        .unwrap();
        assert_eq!(
            s.aws.dynamodb_endpoint,
            "https://dynamodb.eu-west-1.amazonaws.com"
        );
        assert_eq!(s.sse, Sse::Kms(None));
        assert_eq!(s.queue_max_attempts, DEFAULT_MAX_ATTEMPTS);
    }

    #[test]
    fn a_bad_or_missing_value_is_refused_naming_its_variable() {
        for (name, change) in [
            ("IMAGEMCP_KMS_KEY_ID", ("IMAGEMCP_SSE", Some("AES256"))),
            ("IMAGEMCP_SSE", ("IMAGEMCP_SSE", Some("aws:kms:dsse"))),
            (
                "IMAGEMCP_QUEUE_MAX_ATTEMPTS",
                ("IMAGEMCP_QUEUE_MAX_ATTEMPTS", Some("0")),
            ),
            ("IMAGEMCP_TABLE", ("IMAGEMCP_TABLE", None)),
            ("AWS_SECRET_ACCESS_KEY", ("AWS_SECRET_ACCESS_KEY", None)),
            ("IMAGEMCP_KEK", ("IMAGEMCP_KEK", None)),
            ("IMAGEMCP_PUBLIC_URL", ("IMAGEMCP_PUBLIC_URL", None)),
            (
                "IMAGEMCP_COST_CONFIRMATION_CENTS",
                ("IMAGEMCP_COST_CONFIRMATION_CENTS", Some("x")),
            ),
        ] {
            let changes: &[(&str, Option<&str>)] = if name == "IMAGEMCP_KEK" {
                // The id and previous KEKs alone are refused first: drop them too.
                &[
                    change,
                    ("IMAGEMCP_KEK_ID", None),
                    ("IMAGEMCP_KEK_PREVIOUS", None),
                ]
            } else {
                &[change]
            };
            match with(changes) {
                Err(Error::Invalid { field, .. }) => assert_eq!(field, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
