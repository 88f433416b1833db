//! The store conformance suite on every implementation: the embedded store, the DynamoDB
//! store through the real AWS SDK over HTTP against moto, and the in-memory store of the unit
//! tests (so that a service test on it means what it says).

// Tests: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use cc_aws::dynamo::DynamoStore;
use cc_local::embedded::EmbeddedStore;
use cc_tests::conformance_suite;
use cc_tests::moto::moto;
use contact_channels::store::ChannelStore;
use contact_channels::store::memory::MemoryStore;

async fn embedded() -> Arc<dyn ChannelStore> {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    // The open file outlives the directory entry (POSIX unlink semantics).
    drop(dir);
    Arc::new(store)
}

async fn dynamodb() -> Arc<dyn ChannelStore> {
    let moto = moto();
    let table = moto.new_table().await;
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    Arc::new(DynamoStore::new(client, table))
}

async fn memory() -> Arc<dyn ChannelStore> {
    Arc::new(MemoryStore::new())
}

conformance_suite!(on_embedded, embedded());
conformance_suite!(on_memory, memory());
conformance_suite!(on_dynamodb, dynamodb());
