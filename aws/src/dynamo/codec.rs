//! Attribute values to and from domain types. A stored item that does not decode is a store
//! failure (500), never a panic.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use contact_channels::domain::channel::{ChannelRecord, Digest, StoredChannel, Verification};
use contact_channels::domain::{ChannelId, EmailAddress, Strategy, UserId};
use contact_channels::store::StoreError;

use super::keys::{Item, channel_key};

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Formats an SDK error with its cause chain (the top level only says "service error").
pub(super) fn sdk_failed<E: std::error::Error + 'static>(e: E) -> StoreError {
    StoreError(crate::sdk::error_chain(&e))
}

pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::new(format!("item lacks {name}")))
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::new(format!("item lacks number {name}")))
}

fn get_bool(item: &Item, name: &str) -> Result<bool, StoreError> {
    item.get(name)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .ok_or_else(|| StoreError::new(format!("item lacks bool {name}")))
}

/// The `user_id` and `channel` attributes of a claim or link item.
pub(super) fn channel_of(item: &Item) -> Result<(UserId, ChannelId), StoreError> {
    let user = UserId::parse(get_s(item, "user_id")?).map_err(StoreError::new)?;
    let id = ChannelId::parse(get_s(item, "channel")?).map_err(StoreError::new)?;
    Ok((user, id))
}

/// A channel item's copy of its user's primary marker (the meta item's `primary` stays the
/// source of truth for reads and for the one-primary condition). The stream shows only the
/// item, so every write of a channel puts it and a demotion clears it, in the same transaction
/// as the marker.
pub(super) const IS_PRIMARY: &str = "is_primary";

/// The channel item of `c`, its flag included.
pub(super) fn stored_to_item(c: &StoredChannel) -> Item {
    let mut item = record_to_item(&c.record);
    item.insert(IS_PRIMARY.into(), AttributeValue::Bool(c.is_primary));
    item
}

fn record_to_item(r: &ChannelRecord) -> Item {
    let mut item = channel_key(&r.user_id, r.id);
    item.insert("id".into(), s(r.id.to_string()));
    item.insert("user_id".into(), s(r.user_id.as_str()));
    item.insert("value".into(), s(r.value.as_str()));
    item.insert(
        "used_for_auth".into(),
        AttributeValue::Bool(r.used_for_auth),
    );
    item.insert("is_verified".into(), AttributeValue::Bool(r.is_verified));
    item.insert("created_at".into(), n(r.created_at_millis));
    item.insert("version".into(), n(r.version));
    if let Some(t) = r.last_sent_at_millis {
        item.insert("last_sent_at".into(), n(t));
    }
    if let Some(v) = &r.verification {
        let ver = HashMap::from([
            ("strategy".to_owned(), s(v.strategy.as_str())),
            ("digest".to_owned(), s(v.digest.to_hex())),
            ("expires".to_owned(), n(v.expires_at_millis)),
            ("attempts".to_owned(), n(v.attempts)),
            ("used".to_owned(), AttributeValue::Bool(v.used)),
        ]);
        item.insert("ver".into(), AttributeValue::M(ver));
    }
    item
}

fn item_to_verification(ver: &Item) -> Result<Verification, StoreError> {
    let digest: [u8; 32] = hex::decode(get_s(ver, "digest")?)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreError::new("bad digest"))?;
    Ok(Verification {
        strategy: Strategy::parse(get_s(ver, "strategy")?)
            .ok_or_else(|| StoreError::new("bad strategy"))?,
        digest: Digest::from_bytes(digest),
        expires_at_millis: get_n(ver, "expires")?,
        attempts: get_n(ver, "attempts")?,
        used: get_bool(ver, "used")?,
    })
}

pub(super) fn item_to_record(item: &Item) -> Result<ChannelRecord, StoreError> {
    let verification = match item.get("ver").and_then(|v| v.as_m().ok()) {
        Some(ver) => Some(item_to_verification(ver)?),
        None => None,
    };
    Ok(ChannelRecord {
        id: ChannelId::parse(get_s(item, "id")?).map_err(StoreError::new)?,
        user_id: UserId::parse(get_s(item, "user_id")?).map_err(StoreError::new)?,
        value: EmailAddress::parse(get_s(item, "value")?).map_err(StoreError::new)?,
        used_for_auth: get_bool(item, "used_for_auth")?,
        is_verified: get_bool(item, "is_verified")?,
        created_at_millis: get_n(item, "created_at")?,
        verification,
        last_sent_at_millis: match item.get("last_sent_at") {
            Some(_) => Some(get_n(item, "last_sent_at")?),
            None => None,
        },
        version: get_n(item, "version")?,
    })
}

/// A channel item with its flag. An item without one (written before channel items carried
/// it) is not primary.
pub(super) fn item_to_stored(item: &Item) -> Result<StoredChannel, StoreError> {
    let is_primary = match item.get(IS_PRIMARY) {
        Some(_) => get_bool(item, IS_PRIMARY)?,
        None => false,
    };
    Ok(StoredChannel {
        record: item_to_record(item)?,
        is_primary,
    })
}

/// The send times of a send-log item (empty when there is none).
pub(super) fn sends_of(item: Option<&Item>) -> Vec<i64> {
    item.and_then(|i| i.get("sends"))
        .and_then(|v| v.as_l().ok())
        .map(|l| {
            l.iter()
                .filter_map(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn sends_list(log: &[i64]) -> AttributeValue {
    AttributeValue::L(log.iter().map(|t| n(*t)).collect())
}
