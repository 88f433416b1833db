//! The per-address send log (cooldown and daily cap) inside a change's transaction. Admitting
//! a send is first tried as a blind append guarded by the log's size and by `last` (the time
//! of the latest send, kept beside the list because a condition cannot read a list's last
//! element), which is right whenever neither limit applies; otherwise the log comes back with
//! the cancellation and the shared rule decides: the wait, or (a full log of entries older
//! than 24 h) an exact replace of the pruned log.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use contact_channels::domain::EmailAddress;
use contact_channels::rules::send_limits::{DAY_MILLIS, SendLimits, admit_send, release_send};
use contact_channels::store::{SendLogChange, StoreError, WriteError};

use super::DynamoStore;
use super::codec::{n, sends_list, sends_of};
use super::keys::{Item, sends_key};
use super::tx::{Condition, Role, Tx};

/// How the send-log item is written.
pub(super) enum SendsWrite {
    /// Append `at` if fewer than `limits.cap` sends are logged and the last is older than
    /// the cooldown.
    Append {
        address: EmailAddress,
        at: i64,
        limits: SendLimits,
    },
    /// Replace the log `old` (absent if `!existed`) by `new`, if it is still `old`.
    Replace {
        address: EmailAddress,
        old: Vec<i64>,
        new: Vec<i64>,
        existed: bool,
    },
}

impl SendsWrite {
    /// The first attempt for `change`; a release reads the log (the refused-mail path only).
    pub async fn first(change: &SendLogChange, store: &DynamoStore) -> Result<Self, StoreError> {
        Ok(match change {
            SendLogChange::Admit {
                address,
                at,
                limits,
            } => SendsWrite::Append {
                address: address.clone(),
                at: *at,
                limits: *limits,
            },
            SendLogChange::Release { address, at } => {
                let item = store.read_sends(address).await?;
                let old = sends_of(item.as_ref());
                SendsWrite::Replace {
                    address: address.clone(),
                    new: release_send(&old, *at),
                    old,
                    existed: item.is_some(),
                }
            }
        })
    }

    /// The next attempt after the log's condition failed with `item` as the log was: prune
    /// and admit exactly, or refuse with the wait when the cap is really reached.
    pub fn after_full(&self, item: Item) -> Result<Self, WriteError> {
        let SendsWrite::Append {
            address,
            at,
            limits,
        } = self
        else {
            // An exact replace failed: the log changed under us.
            return Err(WriteError::Stale);
        };
        let old = sends_of(Some(&item));
        let new = admit_send(&old, *at, *limits).map_err(WriteError::SendLimited)?;
        Ok(SendsWrite::Replace {
            address: address.clone(),
            old,
            new,
            existed: !item.is_empty(),
        })
    }

    /// Adds the log's item to `tx`; its `ttl` is a day after the last send.
    pub fn push(&self, tx: &mut Tx) -> Result<(), StoreError> {
        let names: &[(&str, &str)] = &[("#sends", "sends"), ("#ttl", "ttl"), ("#last", "last")];
        match self {
            SendsWrite::Append {
                address,
                at,
                limits,
            } => {
                let values = HashMap::from([
                    (":now".to_owned(), AttributeValue::L(vec![n(*at)])),
                    (":at".to_owned(), n(*at)),
                    (":empty".to_owned(), AttributeValue::L(vec![])),
                    (":cap".to_owned(), n(limits.cap)),
                    (":since".to_owned(), n(at - limits.cooldown_millis)),
                    (":ttl".to_owned(), n((at + DAY_MILLIS) / 1000)),
                ]);
                let condition = "(attribute_not_exists(#sends) OR size(#sends) < :cap) \
                    AND (attribute_not_exists(#last) OR #last <= :since)";
                tx.update(
                    Role::Sends,
                    sends_key(address),
                    "SET #sends = list_append(if_not_exists(#sends, :empty), :now), \
                     #last = :at, #ttl = :ttl",
                    Condition::new(condition, names, values),
                )
            }
            SendsWrite::Replace {
                address,
                old,
                new,
                existed,
            } => {
                // A release may empty the log; `last` is then 0: no send to wait for.
                let last = new.iter().max().copied().unwrap_or(0);
                let mut values = HashMap::from([
                    (":new".to_owned(), sends_list(new)),
                    (":last".to_owned(), n(last)),
                    (":ttl".to_owned(), n((last + DAY_MILLIS) / 1000)),
                ]);
                let condition = if *existed {
                    values.insert(":old".into(), sends_list(old));
                    "#sends = :old"
                } else {
                    "attribute_not_exists(#sends)"
                };
                tx.update(
                    Role::Sends,
                    sends_key(address),
                    "SET #sends = :new, #last = :last, #ttl = :ttl",
                    Condition::new(condition, names, values),
                )
            }
        }
    }
}
