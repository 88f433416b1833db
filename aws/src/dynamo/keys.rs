//! Item keys: which `pk`/`sk` each kind of item has (the table in the module docs).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use contact_channels::domain::{ChannelId, EmailAddress, UserId};

/// A DynamoDB item, or a key.
pub(super) type Item = HashMap<String, AttributeValue>;

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

/// The partition of a user's channels and meta item starts with this.
pub(super) const USER_PK_PREFIX: &str = "USER#";

/// A channel item's sort key starts with this (the template's stream filter says it again).
pub(super) const CHANNEL_SK_PREFIX: &str = "CH#";

/// The partition of a user's channels and meta item.
pub(super) fn user_pk(user: &UserId) -> String {
    format!("{USER_PK_PREFIX}{user}")
}

/// The sort key of the user's meta item (count and primary).
pub(super) const META_SK: &str = "META";

pub(super) fn channel_key(user: &UserId, id: ChannelId) -> Item {
    key(user_pk(user), &format!("{CHANNEL_SK_PREFIX}{id}"))
}

pub(super) fn meta_key(user: &UserId) -> Item {
    key(user_pk(user), META_SK)
}

pub(super) fn value_key(user: &UserId, value: &EmailAddress) -> Item {
    key(format!("VALUE#{user}#{value}"), "VALUE")
}

pub(super) fn auth_key(value: &EmailAddress) -> Item {
    key(format!("AUTH#{value}"), "AUTH")
}

pub(super) fn link_key(digest_hex: &str) -> Item {
    key(format!("LINK#{digest_hex}"), "LINK")
}

pub(super) fn sends_key(address: &EmailAddress) -> Item {
    key(format!("SENDS#{address}"), "SENDS")
}
