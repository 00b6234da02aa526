//! Secrets from AWS Secrets Manager: each secret is a JSON object of environment-style names
//! (`{"OPENAI_API_KEY": "…", "IMAGEMCP_KEK": "…"}`), read once per cold start. Values stay out of
//! the functions' environment and of Terraform state, and never appear in logs or errors.

use std::collections::HashMap;

use imagemcp_core::{Error, Result};
use serde_json::Value;

use crate::error::map_sdk;

/// Secret values by name. `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct Secrets(HashMap<String, String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort();
        f.debug_struct("Secrets")
            .field("names", &names)
            .field("values", &"[redacted]")
            .finish()
    }
}

impl Secrets {
    /// The value of `name`, if a secret holds it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Reads every secret in `arns` (later ones win on a repeated name).
    pub async fn load(client: &aws_sdk_secretsmanager::Client, arns: &[String]) -> Result<Self> {
        let mut values = HashMap::new();
        for arn in arns {
            let out = client
                .get_secret_value()
                .secret_id(arn)
                .send()
                .await
                .map_err(|e| map_sdk("Secrets Manager GetSecretValue", e))?;
            let text = out.secret_string().ok_or_else(|| {
                Error::invalid(
                    "secret",
                    format!("{arn} has no string value (put a JSON object)"),
                )
            })?;
            values.extend(parse(arn, text)?);
        }
        Ok(Self(values))
    }
}

/// Secrets from names and values (tests; deployments [`Secrets::load`] them).
impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Secrets {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// The names and values of one secret's JSON object; the error names the secret, never a value.
fn parse(arn: &str, text: &str) -> Result<HashMap<String, String>> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return Err(Error::invalid(
            "secret",
            format!("{arn} is not a JSON object"),
        ));
    };
    map.into_iter()
        .map(|(name, value)| match value {
            Value::String(s) => Ok((name, s)),
            _ => Err(Error::invalid(
                "secret",
                format!("{arn}: `{name}` is not a string"),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_json_objects_of_strings_and_errors_never_show_values() {
        let got = parse("arn:app", r#"{"OPENAI_API_KEY": "sk-very-secret"}"#).unwrap();
        assert_eq!(got["OPENAI_API_KEY"], "sk-very-secret");
        let err = parse("arn:app", r#"{"N": 12345678}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`N` is not a string") && !err.contains("12345678"),
            "{err}"
        );
        let err = parse("arn:app", "sk-very-secret").unwrap_err().to_string();
        assert!(!err.contains("sk-very-secret"), "{err}");
        let debug = format!("{:?}", Secrets(got));
        assert!(
            debug.contains("OPENAI_API_KEY") && !debug.contains("sk-very-secret"),
            "{debug}"
        );
    }
}
