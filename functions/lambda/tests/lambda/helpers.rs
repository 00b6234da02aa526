//! An application on freshly provisioned AWS resources (moto), and SQS delivery the way Lambda's
//! event source mapping does it: receive, hand the batch to the `batch` handler as an `SqsEvent`,
//! delete what succeeded, release what failed.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use imagemcp_app::auth::KeySpec;
use imagemcp_app::{App, AppConfig};
use imagemcp_aws::testing::{Moto, stack};
use imagemcp_aws::{AwsSettings, Clients, SqsQueue};
use imagemcp_core::queue::{Delivery, PullQueue};
use imagemcp_offline::OfflineModel;
use serde_json::{Value, json};

/// How many deliveries the test queues allow before dead-lettering.
pub(crate) const MAX_ATTEMPTS: u32 = 3;

pub(crate) struct TestStack {
    pub(crate) app: App,
    pub(crate) clients: Clients,
    pub(crate) settings: AwsSettings,
}

impl TestStack {
    pub(crate) async fn new() -> TestStack {
        Self::with_config(AppConfig::local("https://imagemcp.example")).await
    }

    /// A stack whose application has `config` (e.g. the one `imagemcp_lambda::app_config` builds).
    pub(crate) async fn with_config(config: AppConfig) -> TestStack {
        let (clients, settings) = stack(Moto::shared(), MAX_ATTEMPTS).await;
        let keyring =
            imagemcp_app::crypto::Keyring::new(("test-1", [7; 32]), Vec::new()).expect("keyring");
        let ports = imagemcp_lambda::ports(
            &clients,
            &settings,
            Arc::new(OfflineModel::new()),
            Arc::new(keyring),
        );
        let app = App::new(ports, config);
        TestStack {
            app,
            clients,
            settings,
        }
    }

    pub(crate) fn queue(&self) -> SqsQueue {
        SqsQueue::new(
            self.clients.sqs.clone(),
            self.settings.queue_url.clone(),
            self.settings.dead_letter_queue_url.clone(),
            MAX_ATTEMPTS,
        )
    }

    /// An API key with every scope for the bootstrap administrator.
    pub(crate) async fn admin_key(&self) -> String {
        let (admin, org) = self.app.accounts().ensure_local_admin().await.unwrap();
        self.app
            .keys()
            .create(&admin.id, &org.id, KeySpec::full("test"))
            .await
            .unwrap()
            .secret
    }

    /// Receives one batch from SQS and returns it as the event Lambda would send.
    pub(crate) async fn receive_event(&self) -> (SqsEvent, Vec<Delivery>) {
        let got = self
            .queue()
            .receive(10, Duration::from_secs(30))
            .await
            .unwrap();
        (sqs_event(&got), got)
    }

    /// One round of the event source mapping: receive, invoke `handler`, delete the successes,
    /// make the failures visible again at once (Lambda waits for the visibility timeout).
    pub(crate) async fn deliver_with(&self, app: &App) -> (Vec<Delivery>, SqsBatchResponse) {
        let (event, got) = self.receive_event().await;
        let response = imagemcp_lambda::batch(app, MAX_ATTEMPTS, event).await;
        self.settle(&got, &response).await;
        (got, response)
    }

    /// What SQS does once the visibility timeout of deliveries nobody answered ends: they are
    /// delivered again (here at once).
    pub(crate) async fn redeliver(&self, got: &[Delivery]) {
        for d in got {
            self.queue()
                .retry(&d.receipt, Duration::ZERO)
                .await
                .unwrap();
        }
    }

    pub(crate) async fn settle(&self, got: &[Delivery], response: &SqsBatchResponse) {
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        for d in got {
            if failed.contains(&d.message_id.as_str()) {
                self.queue()
                    .retry(&d.receipt, Duration::ZERO)
                    .await
                    .unwrap();
            } else {
                self.queue().ack(&d.receipt).await.unwrap();
            }
        }
    }
}

/// The SQS event Lambda builds from received messages (the published record format).
pub(crate) fn sqs_event(deliveries: &[Delivery]) -> SqsEvent {
    let records: Vec<Value> = deliveries
        .iter()
        .map(|d| {
            json!({
                "messageId": d.message_id,
                "receiptHandle": d.receipt,
                "body": d.body.to_string(),
                "attributes": {"ApproximateReceiveCount": d.attempt.to_string(), "SentTimestamp": "1800000000000"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:imagemcp-jobs",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("an SQS event")
}

/// A fixture from `tests/lambda/fixtures`.
pub(crate) fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lambda/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture JSON")
}
