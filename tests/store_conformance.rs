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

/// On DynamoDB each channel item carries its own `is_primary` for the table's stream: the
/// items' flags follow the marker through a create, a switch (which writes the demoted item)
/// and a clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_channel_items_carry_the_primary_flag() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use contact_channels::domain::channel::ChannelRecord;
    use contact_channels::domain::{ChannelId, EmailAddress, UserId, now_millis};
    use contact_channels::store::{Change, PrimaryAsRead, PrimaryChange};

    let moto = moto();
    let table = moto.new_table().await;
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let store = DynamoStore::new(client.clone(), table.clone());
    let user = UserId::parse("alice").unwrap();
    let record = |value: &str| ChannelRecord {
        id: ChannelId::new_random(),
        user_id: user.clone(),
        value: EmailAddress::parse(value).unwrap(),
        used_for_auth: false,
        is_verified: false,
        created_at_millis: now_millis(),
        verification: None,
        last_sent_at_millis: None,
        version: 0,
    };
    let item = |id: ChannelId| {
        let (client, table) = (client.clone(), table.clone());
        async move {
            let out = client
                .get_item()
                .table_name(table)
                .key("pk", AttributeValue::S("USER#alice".into()))
                .key("sk", AttributeValue::S(format!("CH#{id}")))
                .consistent_read(true)
                .send()
                .await
                .unwrap();
            let item = out.item().unwrap().clone();
            (
                item["is_primary"].as_bool().copied().unwrap(),
                item["version"].as_n().unwrap().parse::<u64>().unwrap(),
            )
        }
    };
    let create = |r: &ChannelRecord, primary| Change::Create {
        record: r.clone(),
        primary,
        max_channels: 10,
    };
    let a = store
        .apply(create(
            &record("a@example.com"),
            PrimaryChange::Set { previous: None },
        ))
        .await
        .unwrap()
        .unwrap()
        .record;
    let b = store
        .apply(create(&record("b@example.com"), PrimaryChange::Keep))
        .await
        .unwrap()
        .unwrap()
        .record;
    assert_eq!(
        (item(a.id).await, item(b.id).await),
        ((true, 1), (false, 1))
    );
    let unchanged = |r: &ChannelRecord, primary, was_primary| Change::Update {
        before: r.clone(),
        after: r.clone(),
        primary,
        was_primary,
        send_log: None,
    };
    let previous = Some(PrimaryAsRead {
        id: a.id,
        version: 1,
    });
    let set = PrimaryChange::Set { previous };
    let b = store.apply(unchanged(&b, set, false)).await.unwrap();
    let b = b.unwrap().record;
    assert_eq!(
        (item(a.id).await, item(b.id).await),
        ((false, 2), (true, 2))
    );
    let cleared = unchanged(&b, PrimaryChange::Clear, true);
    store.apply(cleared).await.unwrap();
    assert_eq!(
        (item(a.id).await, item(b.id).await),
        ((false, 2), (false, 3))
    );
}
