//! Encryption at rest on DynamoDB (moto): the canary prompt, written through every path of the
//! application that stores a prompt (`imagemcp_app::testing`), is in no item of the table in
//! clear, the cache's entries (binary values) included.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use imagemcp_app::App;
use imagemcp_app::testing::{find_canary, write_canary_everywhere};
use imagemcp_core::ids::{OrgId, TeamId, UserId};
use imagemcp_core::rbac::{Role, Scope};

use crate::helpers::TestStack;

/// Every string, number and binary value of an attribute, appended to `out`.
fn attr_bytes(value: &AttributeValue, out: &mut Vec<u8>) {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => out.extend_from_slice(s.as_bytes()),
        AttributeValue::B(b) => out.extend_from_slice(b.as_ref()),
        AttributeValue::Ss(list) | AttributeValue::Ns(list) => list
            .iter()
            .for_each(|s| out.extend_from_slice(s.as_bytes())),
        AttributeValue::Bs(list) => list.iter().for_each(|b| out.extend_from_slice(b.as_ref())),
        AttributeValue::L(list) => list.iter().for_each(|v| attr_bytes(v, out)),
        AttributeValue::M(map) => map.iter().for_each(|(k, v)| {
            out.extend_from_slice(k.as_bytes());
            attr_bytes(v, out);
        }),
        _ => {}
    }
    out.push(b'\n');
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_prompt_is_in_no_dynamodb_item_in_clear() {
    let stack = TestStack::new().await;
    let fake = fake_openai::spawn(fake_openai::FakeConfig::local())
        .await
        .unwrap();
    let mut config =
        imagemcp_openai::OpenAiConfig::new(imagemcp_openai::ApiKey::new("sk-test").unwrap());
    config.base_url = fake.base_url();
    let mut ports = stack.app.ports.clone();
    ports.model = Arc::new(imagemcp_openai::OpenAiModel::new(config).unwrap());
    let app = App::new(ports, (*stack.app.config).clone());
    let caller = imagemcp_app::auth::Caller {
        user: UserId::parse("usr_canary").unwrap(),
        org: OrgId::parse("org_canary").unwrap(),
        team: TeamId::parse("team_canary").unwrap(),
        role: Role::Admin,
        scopes: vec![Scope::Admin],
        credential: "key_canary".into(),
    };
    let written = write_canary_everywhere(&app, &caller, &stack.queue())
        .await
        .unwrap();
    assert_eq!(written.images, 8, "{written:?}");

    let mut raw = Vec::new();
    let mut items = 0;
    let mut start = None;
    loop {
        let page = stack
            .clients
            .dynamodb
            .scan()
            .table_name(&stack.settings.table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            items += 1;
            for (name, value) in item {
                raw.extend_from_slice(name.as_bytes());
                attr_bytes(value, &mut raw);
            }
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(items > 30, "{items} items scanned");
    for expected in ["enc1:", "JOB#", "CACHE#", "MRTRSTATE#", "REPLY#"] {
        assert!(text.contains(expected), "no {expected} item was scanned");
    }
    assert_eq!(find_canary(&raw), None, "in the DynamoDB table");
}
