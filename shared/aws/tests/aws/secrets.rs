//! Secrets from Secrets Manager (moto): JSON objects merged in order, and a missing secret is an
//! error naming it rather than an empty configuration.

use imagemcp_aws::Secrets;

use crate::helpers::{Moto, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_read_and_merged_in_order() {
    let clients = Moto::shared().clients().await;
    let mut arns = Vec::new();
    for value in [
        r#"{"OPENAI_API_KEY": "sk-one", "IMAGEMCP_KEK": "k1"}"#,
        r#"{"IMAGEMCP_KEK": "k2"}"#,
    ] {
        let out = clients
            .secrets
            .create_secret()
            .name(unique("secret"))
            .secret_string(value)
            .send()
            .await
            .unwrap();
        arns.push(out.arn.unwrap());
    }
    let secrets = Secrets::load(&clients.secrets, &arns).await.unwrap();
    assert_eq!(secrets.get("OPENAI_API_KEY"), Some("sk-one"));
    assert_eq!(
        secrets.get("IMAGEMCP_KEK"),
        Some("k2"),
        "a later secret wins"
    );
    assert_eq!(secrets.get("MISSING"), None);

    let missing = Secrets::load(
        &clients.secrets,
        &[unique(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope",
        )],
    )
    .await;
    assert!(
        missing.is_err(),
        "a missing secret must stop the cold start: {missing:?}"
    );
}
