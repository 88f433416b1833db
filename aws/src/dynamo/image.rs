//! Table items as the DynamoDB stream shows them (`OldImage` / `NewImage`), decoded with the
//! same codec as the store's own reads, so an event describes exactly what was written.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use contact_channels::domain::channel::StoredChannel;
use contact_channels::domain::{ChannelId, UserId};
use contact_channels::store::StoreError;

use super::codec::{get_s, item_to_stored};
use super::keys::{CHANNEL_SK_PREFIX, META_SK, USER_PK_PREFIX};

/// One image of an item the lifecycle events are made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemImage {
    /// A channel item (`USER#<user>` / `CH#<id>`), with its `is_primary` flag (absent: false).
    Channel(StoredChannel),
    /// A user's meta item (`USER#<user>` / `META`): only its primary marker matters here.
    Meta {
        /// The user.
        user: UserId,
        /// The primary channel, if any.
        primary: Option<ChannelId>,
    },
}

/// What an item's key says it is: `Ok(None)` for the items events are not made from (claims,
/// link index, send log).
pub fn key_kind(keys: &HashMap<String, AttributeValue>) -> Result<Option<KeyKind>, StoreError> {
    let sk = get_s(keys, "sk")?;
    if !get_s(keys, "pk")?.starts_with(USER_PK_PREFIX) {
        return Ok(None);
    }
    Ok(if sk.starts_with(CHANNEL_SK_PREFIX) {
        Some(KeyKind::Channel)
    } else if sk == META_SK {
        Some(KeyKind::Meta)
    } else {
        None
    })
}

/// The two kinds of item events are made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `CH#<id>`.
    Channel,
    /// `META`.
    Meta,
}

/// Decodes an image of an item of `kind`. An image that does not decode is an error (the
/// stream consumer reports its record as failed), never a panic.
pub fn decode_image(
    kind: KeyKind,
    item: &HashMap<String, AttributeValue>,
) -> Result<ItemImage, StoreError> {
    match kind {
        KeyKind::Channel => item_to_stored(item).map(ItemImage::Channel),
        KeyKind::Meta => {
            let pk = get_s(item, "pk")?;
            let user = pk
                .strip_prefix(USER_PK_PREFIX)
                .ok_or_else(|| StoreError::new("meta item outside a user partition"))?;
            let user = UserId::parse(user).map_err(StoreError::new)?;
            let primary = match item.get("primary") {
                None | Some(AttributeValue::Null(_)) => None,
                Some(_) => {
                    Some(ChannelId::parse(get_s(item, "primary")?).map_err(StoreError::new)?)
                }
            };
            Ok(ItemImage::Meta { user, primary })
        }
    }
}
