//! The port contract suites of `imagemcp-core`, run against DynamoDB, S3 and SQS on moto.

use std::sync::Arc;
use std::time::Duration;

use imagemcp_aws::{DynamoCache, DynamoTable, S3BlobStore, SqsQueue, Sse, provision};
use imagemcp_core::clock::{Clock, ManualClock};
use imagemcp_core::contract;
use imagemcp_core::queue::{Delivery, PullQueue, Queue};
use imagemcp_core::{Result, async_trait};
use serde_json::Value;

use crate::helpers::{Moto, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_table_meets_the_contract() {
    let clients = Moto::shared().clients().await;
    // One table for the whole run: the suite's checks use disjoint partitions.
    let name = unique("contract-table");
    provision::create_table(&clients, &name).await.unwrap();
    contract::table_suite(async |clock| {
        DynamoTable::new(clients.dynamodb.clone(), name.clone(), clock)
    })
    .await;
}

/// 50 concurrent reservations at the edge of a quota, on DynamoDB's conditional `UpdateItem`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_table_meets_the_quota_contract() {
    let clients = Moto::shared().clients().await;
    let name = unique("contract-quota");
    provision::create_table(&clients, &name).await.unwrap();
    contract::quota_suite(async |clock| {
        DynamoTable::new(clients.dynamodb.clone(), name.clone(), clock)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_cache_meets_the_contract() {
    let clients = Moto::shared().clients().await;
    let name = unique("contract-cache");
    provision::create_table(&clients, &name).await.unwrap();
    contract::cache_suite(async |clock| {
        DynamoCache::new(clients.dynamodb.clone(), name.clone(), clock)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_blob_store_meets_the_contract() {
    let clients = Moto::shared().clients().await;
    let bucket = unique("contract-bucket");
    provision::create_bucket(&clients, &bucket).await.unwrap();
    contract::blob_store_suite(async |_clock| {
        S3BlobStore::new(clients.s3.clone(), bucket.clone(), Sse::Aes256)
    })
    .await;
}

/// An SQS queue on the clocked moto, whose clock is set from the suite's manual clock before
/// every call: SQS keeps time itself, so this is how visibility timeouts and delays follow the
/// suite's clock.
struct ClockedQueue {
    queue: SqsQueue,
    clock: Arc<ManualClock>,
    moto: &'static Moto,
}

impl ClockedQueue {
    async fn sync(&self) {
        self.moto.set_clock(self.clock.now_ms()).await;
    }
}

#[async_trait]
impl Queue for ClockedQueue {
    async fn send(&self, body: Value, delay: Duration) -> Result<String> {
        self.sync().await;
        self.queue.send(body, delay).await
    }
}

#[async_trait]
impl PullQueue for ClockedQueue {
    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Delivery>> {
        self.sync().await;
        self.queue.receive(max, visibility).await
    }
    async fn ack(&self, receipt: &str) -> Result<()> {
        self.sync().await;
        self.queue.ack(receipt).await
    }
    async fn retry(&self, receipt: &str, delay: Duration) -> Result<()> {
        self.sync().await;
        self.queue.retry(receipt, delay).await
    }
    async fn dead_letters(&self, max: usize) -> Result<Vec<Delivery>> {
        self.sync().await;
        self.queue.dead_letters(max).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_queue_meets_the_contract() {
    let moto = Moto::clocked();
    let clients = moto.clients().await;
    contract::pull_queue_suite(async |clock, max_attempts| {
        moto.set_clock(clock.now_ms()).await;
        let urls = provision::create_queues(
            &clients,
            &unique("contract-queue"),
            max_attempts,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        ClockedQueue {
            queue: SqsQueue::new(
                clients.sqs.clone(),
                urls.queue,
                Some(urls.dead_letters),
                max_attempts,
            ),
            clock,
            moto,
        }
    })
    .await;
}
