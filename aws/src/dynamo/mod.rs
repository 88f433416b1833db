//! The DynamoDB store: one table, key `pk`/`sk` (both strings), TTL attribute `ttl`.
//!
//! | item | pk | sk | what it holds |
//! |---|---|---|---|
//! | channel | `USER#<user>` | `CH#<id>` | the record, with its code/link inline under `ver`, `version`, and `is_primary` (a copy of the marker, for the stream) |
//! | user meta | `USER#<user>` | `META` | `count` of channels (invariant 7) and `primary` id (invariant 3) |
//! | value claim | `VALUE#<user>#<value>` | `VALUE` | one per (user, value): invariant 1 |
//! | auth claim | `AUTH#<value>` | `AUTH` | one per value across users: invariant 2 |
//! | link index | `LINK#<hex digest>` | `LINK` | user and channel of a link token; `ttl` a week past expiry |
//! | send log | `SENDS#<address>` | `SENDS` | send times of the last 24 h (daily cap); `ttl` a day after the last |
//!
//! A user's channels and meta share a partition, so list is one Query and read one
//! TransactGet. What a change writes is decided once, by `store::effects`; here `tx`
//! translates those effects, `send_log` adds the daily cap, `keys` and `codec` say how items
//! look. Every `Change` is one TransactWriteItems whose conditions (`attribute_not_exists`
//! on claims, `version = :v` on the channel, a compare-and-swap on the meta's `primary`) enforce
//! the invariants; a cancellation is mapped to a domain error by the position of the failed
//! item. Making a channel primary also clears the flag of the one it demotes and bumps that
//! one's version, in the same transaction, so the stream shows every channel's `is_primary`
//! exactly. Nothing here ever Scans.

mod codec;
mod image;
mod keys;
mod send_log;
mod tx;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Get, KeySchemaElement, KeyType, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TimeToLiveSpecification,
    TransactGetItem,
};

use contact_channels::domain::channel::{Digest, StoredChannel};
use contact_channels::domain::{ChannelId, EmailAddress, Strategy, UserId};
use contact_channels::rules::verification::{LinkRefusal, check_link};
use contact_channels::store::effects::effects;
use contact_channels::store::{Change, ChannelStore, RedeemError, StoreError, WriteError};

pub use image::{ItemImage, KeyKind, decode_image, key_kind};

use codec::{channel_of, get_s, item_to_record, n, s, sdk_failed, sends_of};
use keys::{Item, META_SK, channel_key, link_key, meta_key, sends_key, user_pk};
use send_log::SendsWrite;
use tx::{Cancelled, Tx, classify, transaction};

/// The DynamoDB store.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// The store over `table`, through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    /// Creates the table (on-demand, TTL on `ttl`). For local endpoints and tests; in AWS
    /// the SAM template owns the table.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let schema = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk").map_err(StoreError::new)?)
            .attribute_definitions(attr("sk").map_err(StoreError::new)?)
            .key_schema(schema("pk", KeyType::Hash).map_err(StoreError::new)?)
            .key_schema(schema("sk", KeyType::Range).map_err(StoreError::new)?)
            .send()
            .await
            .map_err(sdk_failed)?;
        let ttl = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name("ttl")
            .build()
            .map_err(StoreError::new)?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(sdk_failed)?;
        Ok(())
    }

    async fn read_sends(&self, address: &EmailAddress) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(sends_key(address)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_failed)?;
        Ok(out.item().cloned())
    }

    /// Runs a transaction; on cancellation, says which role failed first and the old item
    /// of the send log if that item was in it.
    async fn run(&self, tx: Tx<'_>) -> Result<(), Cancelled> {
        let roles = tx.roles;
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(tx.items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(classify(&roles, e)),
        }
    }
}

#[async_trait]
impl ChannelStore for DynamoStore {
    // Reads take `is_primary` from the meta's marker, not from the items' flags: the marker is
    // what the one-primary condition checks, the key-value stores have only it, and an item
    // written before items carried the flag still reads right.
    async fn list(&self, user: &UserId) -> Result<Vec<StoredChannel>, StoreError> {
        let mut records = Vec::new();
        let mut primary = None;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(user_pk(user)))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_failed)?;
            for item in out.items() {
                match get_s(item, "sk")? {
                    META_SK => primary = item.get("primary").and_then(|v| v.as_s().ok()).cloned(),
                    _ => records.push(item_to_record(item)?),
                }
            }
            match out.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => break,
            }
        }
        Ok(records
            .into_iter()
            .map(|record| {
                let is_primary = primary.as_deref() == Some(record.id.to_string().as_str());
                StoredChannel { record, is_primary }
            })
            .collect())
    }

    async fn get(&self, user: &UserId, id: ChannelId) -> Result<Option<StoredChannel>, StoreError> {
        let get = |key: Item| -> Result<TransactGetItem, StoreError> {
            let get = Get::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .build()
                .map_err(StoreError::new)?;
            Ok(TransactGetItem::builder().get(get).build())
        };
        let out = self
            .client
            .transact_get_items()
            .transact_items(get(channel_key(user, id))?)
            .transact_items(get(meta_key(user))?)
            .send()
            .await
            .map_err(sdk_failed)?;
        let responses = out.responses();
        let Some(item) = responses.first().and_then(|r| r.item()) else {
            return Ok(None);
        };
        let record = item_to_record(item)?;
        let primary = responses
            .get(1)
            .and_then(|r| r.item())
            .and_then(|m| m.get("primary"))
            .and_then(|v| v.as_s().ok());
        let is_primary = primary.map(String::as_str) == Some(id.to_string().as_str());
        Ok(Some(StoredChannel { record, is_primary }))
    }

    async fn apply(&self, change: Change) -> Result<Option<StoredChannel>, WriteError> {
        let effects = effects(&change);
        let mut sends = match &effects.send_log {
            Some(log) => Some(SendsWrite::first(log, self).await?),
            None => None,
        };
        // At most one extra round: when the log is full of entries older than 24 h.
        for _ in 0..3 {
            let mut tx = transaction(&self.table, &effects)?;
            if let Some(write) = &sends {
                write.push(&mut tx)?;
            }
            match self.run(tx).await {
                Ok(()) => return Ok(effects.written),
                Err(Cancelled::Refused(error)) => return Err(error),
                Err(Cancelled::Conflict) => return Err(WriteError::Stale),
                Err(Cancelled::Error(e)) => return Err(e.into()),
                Err(Cancelled::SendLogFull(item)) => {
                    let Some(write) = &sends else {
                        return Err(WriteError::Stale);
                    };
                    sends = Some(write.after_full(item)?);
                }
            }
        }
        Err(WriteError::Stale)
    }

    async fn find_link(&self, digest: &Digest) -> Result<Option<(UserId, ChannelId)>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(link_key(&digest.to_hex())))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_failed)?;
        out.item().map(channel_of).transpose()
    }

    async fn redeem_link(&self, digest: &Digest, now: i64) -> Result<(), RedeemError> {
        let Some((user, id)) = self.find_link(digest).await? else {
            return Err(RedeemError::Refused(LinkRefusal::NotFound));
        };
        // One conditional update does the check and the write; when the condition fails the
        // old item comes back and the shared rule says why (not found, expired or used).
        // When DynamoDB applied the update but its answer was lost, the SDK's retry fails the
        // condition on our own write: the per-call marker (`ver.by`) says it was ours.
        let marker = ChannelId::new_random().to_string();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(channel_key(&user, id)))
            .update_expression(
                "SET #verified = :t, #ver.#used = :t, #ver.#by = :marker, #version = #version + :one",
            )
            .condition_expression(
                "attribute_exists(pk) AND #ver.#strategy = :link AND #ver.#digest = :digest AND #ver.#used = :f AND #ver.#expires > :now",
            )
            .expression_attribute_names("#verified", "is_verified")
            .expression_attribute_names("#ver", "ver")
            .expression_attribute_names("#used", "used")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#by", "by")
            .expression_attribute_names("#strategy", "strategy")
            .expression_attribute_names("#digest", "digest")
            .expression_attribute_names("#expires", "expires")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":link", s(Strategy::EmailLink.as_str()))
            .expression_attribute_values(":digest", s(digest.to_hex()))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":marker", s(marker.as_str()))
            .return_values(ReturnValue::None)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    let ours = failed
                        .item()
                        .and_then(|item| item.get("ver")?.as_m().ok()?.get("by")?.as_s().ok())
                        .is_some_and(|by| *by == marker);
                    if ours {
                        return Ok(());
                    }
                    let old = failed.item().map(item_to_record).transpose()?;
                    let refusal = check_link(old.as_ref(), digest, now)
                        .err()
                        .unwrap_or(LinkRefusal::NotFound);
                    Err(RedeemError::Refused(refusal))
                }
                _ => Err(RedeemError::Store(sdk_failed(e))),
            },
        }
    }

    async fn send_log(&self, address: &EmailAddress) -> Result<Vec<i64>, StoreError> {
        Ok(sends_of(self.read_sends(address).await?.as_ref()))
    }
}
