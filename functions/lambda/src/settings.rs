//! What a function reads, in two steps: from its environment, the resources and the Secrets Manager
//! secrets to read ([`Bootstrap`]); then, from those secrets over the environment, the settings
//! every runtime shares ([`shared`], parsed by `imagemcp_app::settings`). `docs/settings.md` lists
//! the variables (its Lambda column); the tests below check this module reads exactly those.

use imagemcp_app::settings::{Defaults, Settings};
use imagemcp_aws::{AwsSettings, Secrets};

/// A variable of the process environment, empty meaning unset.
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// What a function needs before it can reach Secrets Manager: read from the environment only.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    /// Table, bucket, queues, encryption (`imagemcp_aws::AwsSettings`).
    pub aws: AwsSettings,
    /// `IMAGEMCP_SECRET_ARNS`: the secrets to read, comma-separated; none is fine.
    pub secret_arns: Vec<String>,
}

impl Bootstrap {
    pub fn from_vars(env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let secret_arns = env("IMAGEMCP_SECRET_ARNS")
            .map(|v| {
                v.split(',')
                    .map(|a| a.trim().to_owned())
                    .filter(|a| !a.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            aws: AwsSettings::from_lookup(&env)?,
            secret_arns,
        })
    }
}

/// The value of `name`: a secret's when one holds it, the environment's (`env`) otherwise.
pub fn lookup(
    secrets: &Secrets,
    env: impl Fn(&str) -> Option<String>,
) -> impl Fn(&str) -> Option<String> {
    move |name| match secrets.get(name) {
        Some(v) if !v.is_empty() => Some(v.to_owned()),
        _ => env(name),
    }
}

/// The shared settings of a deployment: `IMAGEMCP_PUBLIC_URL` required, download links short-lived.
pub fn shared(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Settings> {
    Settings::from_vars(var, &Defaults::deployment()).map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use imagemcp_app::settings::documented::{
        KEK, Recorder, SHARED, assert_shared_landed, read_by,
    };

    use super::*;

    /// The functions' own variables, none at its default.
    const OWN: &[(&str, &str)] = &[
        ("IMAGEMCP_TABLE", "images-table"),
        ("IMAGEMCP_BUCKET", "images-bucket"),
        (
            "IMAGEMCP_QUEUE_URL",
            "https://sqs.eu-west-1.amazonaws.com/1/jobs",
        ),
        (
            "IMAGEMCP_DLQ_URL",
            "https://sqs.eu-west-1.amazonaws.com/1/jobs-dlq",
        ),
        ("IMAGEMCP_QUEUE_MAX_ATTEMPTS", "7"),
        ("IMAGEMCP_S3_KMS_KEY_ID", "alias/images"),
        ("IMAGEMCP_S3_FORCE_PATH_STYLE", "false"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5001"),
        ("IMAGEMCP_SECRET_ARNS", "arn:app, arn:stripe"),
    ];

    #[test]
    fn every_documented_variable_lands_in_the_settings_and_the_app_config() {
        let env = Recorder::new(&[OWN, SHARED].concat());
        assert_eq!(env.names(), read_by("Lambda"), "the test sets every one");
        let boot = Bootstrap::from_vars(|n| env.get(n)).unwrap();
        let app = shared(|n| env.get(n)).unwrap();
        assert_eq!(
            env.asked(),
            read_by("Lambda"),
            "and the functions read those"
        );

        let aws = &boot.aws;
        assert_eq!(
            (aws.table.as_str(), aws.bucket.as_str()),
            ("images-table", "images-bucket")
        );
        assert_eq!(aws.queue_url, "https://sqs.eu-west-1.amazonaws.com/1/jobs");
        assert_eq!(
            aws.dead_letter_queue_url.as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/1/jobs-dlq")
        );
        assert_eq!(aws.queue_max_attempts, 7);
        assert_eq!(
            aws.sse,
            imagemcp_aws::blob::Sse::Kms(Some("alias/images".into()))
        );
        assert!(!aws.force_path_style, "the setting wins over the endpoints");
        assert_eq!(boot.secret_arns, ["arn:app", "arn:stripe"]);

        assert_shared_landed(&app);

        // The application's configuration as the functions build it.
        let config = crate::app_config_of(&app).unwrap();
        assert_eq!(config.public_url, "https://images.example.com");
        assert_eq!(config.cost_confirmation_cents, 250);
        assert_eq!(config.download_url_ttl, Duration::from_secs(120));
        assert_eq!(config.allowed_origins, app.allowed_origins);
        assert!(config.token_keys.is_some() && config.billing.is_some());
        assert_eq!(
            config.client_metadata.unwrap().test_allow_origins,
            ["http://127.0.0.1:4567"]
        );
    }

    #[test]
    fn an_emulator_endpoint_means_path_style_s3() {
        for endpoint in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"] {
            let env = Recorder::new(&[
                ("IMAGEMCP_TABLE", "t"),
                ("IMAGEMCP_BUCKET", "b"),
                ("IMAGEMCP_QUEUE_URL", "https://sqs/q"),
                (endpoint, "http://127.0.0.1:5000"),
            ]);
            assert!(
                Bootstrap::from_vars(|n| env.get(n))
                    .unwrap()
                    .aws
                    .force_path_style
            );
        }
    }

    #[test]
    fn a_secret_wins_over_the_environment() {
        let env = |name: &str| match name {
            "IMAGEMCP_PUBLIC_URL" => Some("https://from.env".to_owned()),
            "IMAGEMCP_KEK_ID" => Some("env-kek".to_owned()),
            _ => None,
        };
        let secrets: Secrets = [("IMAGEMCP_KEK_ID", "secret-kek"), ("IMAGEMCP_KEK", KEK)]
            .into_iter()
            .collect();
        let app = shared(lookup(&secrets, env)).unwrap();
        assert_eq!(app.kek.unwrap().id, "secret-kek");
        assert_eq!(app.public_url, "https://from.env");
    }
}
