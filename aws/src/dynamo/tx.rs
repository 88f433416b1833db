//! One `Change` as one TransactWriteItems: [`Effects`] translated into conditional items, and a
//! cancellation translated back into the domain error of the first failed condition.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Delete, Put,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use contact_channels::domain::channel::StoredChannel;
use contact_channels::rules::send_limits::DAY_MILLIS;
use contact_channels::store::effects::{
    ChannelWrite, CountChange, Effects, Expect, LinkEntry, PrimaryEffect,
};
use contact_channels::store::{StoreError, WriteError};

use super::codec::{IS_PRIMARY, n, s, sdk_failed, stored_to_item};
use super::keys::{Item, auth_key, channel_key, link_key, meta_key, value_key};

/// Link index items outlive their token by this much, so a late click still answers
/// "expired" rather than "not found"; after that DynamoDB's TTL sweeps them.
const LINK_GRACE_MILLIS: i64 = 7 * DAY_MILLIS;

const ABSENT: &str = "attribute_not_exists(pk)";
/// An auth claim may be taken or released only if it is free or already this channel's.
const FREE_OR_THIS: &str = "attribute_not_exists(pk) OR #channel = :id";

/// What a cancelled item of a transaction means for the domain.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) enum Role {
    // Ordered by the contract's precedence (see `store::effects`): the lowest failed role is
    // the answer, wherever its item sits in the transaction.
    Value,
    Auth,
    /// The meta item when a create counts on it: its condition is the cap's, and the primary
    /// marker's too when the create sets it; the item as it was says which failed.
    Count {
        max: u32,
    },
    Channel,
    Primary,
    Sends,
    Other,
}

impl Role {
    /// The error of a failed condition, whose item was `old`; `None` for the send log, whose
    /// failure the caller resolves by reading the log (see `send_log`).
    fn error(self, old: Option<&Item>) -> Option<WriteError> {
        match self {
            Role::Value => Some(WriteError::ValueExists),
            Role::Auth => Some(WriteError::AuthTaken),
            Role::Count { max } => {
                let count = old
                    .and_then(|item| item.get("count")?.as_n().ok()?.parse::<u32>().ok())
                    .unwrap_or(0);
                Some(match count >= max {
                    true => WriteError::TooMany,
                    false => WriteError::Stale,
                })
            }
            Role::Channel | Role::Primary | Role::Other => Some(WriteError::Stale),
            Role::Sends => None,
        }
    }
}

/// A condition with its attribute names and values.
#[derive(Default)]
pub(super) struct Condition<'a> {
    pub expression: Option<&'a str>,
    pub names: &'a [(&'a str, &'a str)],
    pub values: Item,
}

impl<'a> Condition<'a> {
    pub fn new(expression: &'a str, names: &'a [(&'a str, &'a str)], values: Item) -> Self {
        Condition {
            expression: Some(expression),
            names,
            values,
        }
    }
}

/// Adds a condition to a Put, Delete, Update or ConditionCheck builder (four types with the
/// same methods).
macro_rules! with_condition {
    ($builder:expr, $condition:expr) => {{
        let c = $condition;
        let mut b = $builder.set_condition_expression(c.expression.map(str::to_owned));
        for (k, v) in c.names {
            b = b.expression_attribute_names(*k, *v);
        }
        if !c.values.is_empty() {
            b = b.set_expression_attribute_values(Some(c.values));
        }
        b
    }};
}

/// A transaction under construction: items plus the role of each, by position.
pub(super) struct Tx<'t> {
    table: &'t str,
    pub items: Vec<TransactWriteItem>,
    pub roles: Vec<Role>,
}

impl<'t> Tx<'t> {
    pub fn new(table: &'t str) -> Self {
        Tx {
            table,
            items: Vec::new(),
            roles: Vec::new(),
        }
    }

    fn push(&mut self, role: Role, item: TransactWriteItem) {
        self.items.push(item);
        self.roles.push(role);
    }

    pub fn put(&mut self, role: Role, item: Item, c: Condition) -> Result<(), StoreError> {
        let b = Put::builder()
            .table_name(self.table)
            .set_item(Some(item))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let put = with_condition!(b, c).build().map_err(StoreError::new)?;
        self.push(role, TransactWriteItem::builder().put(put).build());
        Ok(())
    }

    pub fn delete(&mut self, role: Role, key: Item, c: Condition) -> Result<(), StoreError> {
        let b = Delete::builder().table_name(self.table).set_key(Some(key));
        let delete = with_condition!(b, c).build().map_err(StoreError::new)?;
        self.push(role, TransactWriteItem::builder().delete(delete).build());
        Ok(())
    }

    pub fn update(
        &mut self,
        role: Role,
        key: Item,
        expression: &str,
        c: Condition,
    ) -> Result<(), StoreError> {
        let b = Update::builder()
            .table_name(self.table)
            .set_key(Some(key))
            .update_expression(expression)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let update = with_condition!(b, c).build().map_err(StoreError::new)?;
        self.push(role, TransactWriteItem::builder().update(update).build());
        Ok(())
    }

    fn check(&mut self, role: Role, key: Item, c: Condition) -> Result<(), StoreError> {
        let b = ConditionCheck::builder()
            .table_name(self.table)
            .set_key(Some(key));
        let check = with_condition!(b, c).build().map_err(StoreError::new)?;
        self.push(
            role,
            TransactWriteItem::builder().condition_check(check).build(),
        );
        Ok(())
    }
}

/// The transaction of a change, without its send-log item.
pub(super) fn transaction<'t>(table: &'t str, e: &Effects) -> Result<Tx<'t>, StoreError> {
    let mut tx = Tx::new(table);
    let this = || HashMap::from([(":id".to_owned(), s(e.id.to_string()))]);
    let channel_names: &[(&str, &str)] = &[("#channel", "channel")];
    let claim = |mut item: Item| {
        item.insert("channel".into(), s(e.id.to_string()));
        item.insert("user_id".into(), s(e.user.as_str()));
        item
    };
    if let Some(value) = &e.claim_value {
        let item = claim(value_key(&e.user, value));
        tx.put(Role::Value, item, Condition::new(ABSENT, &[], Item::new()))?;
    }
    if let Some(value) = &e.release_value {
        tx.delete(Role::Other, value_key(&e.user, value), Condition::default())?;
    }
    if let Some(value) = &e.claim_auth {
        let condition = Condition::new(FREE_OR_THIS, channel_names, this());
        tx.put(Role::Auth, claim(auth_key(value)), condition)?;
    }
    if let Some(value) = &e.release_auth {
        let condition = Condition::new(FREE_OR_THIS, channel_names, this());
        tx.delete(Role::Other, auth_key(value), condition)?;
    }
    push_meta(&mut tx, e)?;
    if let Some(demoted) = &e.demote {
        let names: &[(&str, &str)] = &[("#version", "version"), ("#flag", IS_PRIMARY)];
        let values = HashMap::from([
            (":v".to_owned(), n(demoted.version)),
            (":one".to_owned(), n(1)),
            (":f".to_owned(), AttributeValue::Bool(false)),
        ]);
        tx.update(
            Role::Primary,
            channel_key(&e.user, demoted.id),
            "SET #flag = :f, #version = #version + :one",
            Condition::new("#version = :v", names, values),
        )?;
    }
    if let Some(digest) = &e.unindex_link {
        tx.delete(Role::Other, link_key(digest), Condition::default())?;
    }
    if let Some(entry) = &e.index_link {
        tx.put(Role::Other, link_item(e, entry), Condition::default())?;
    }
    let version_names: &[(&str, &str)] = &[("#version", "version")];
    let read_version = |version: u64| HashMap::from([(":v".to_owned(), n(version))]);
    match &e.channel {
        ChannelWrite::Put { record, expect } => {
            let condition = match expect {
                Expect::Absent => Condition::new(ABSENT, &[], Item::new()),
                Expect::Version(v) => {
                    Condition::new("#version = :v", version_names, read_version(*v))
                }
            };
            let stored = StoredChannel {
                record: record.clone(),
                is_primary: e.written.as_ref().is_some_and(|w| w.is_primary),
            };
            tx.put(Role::Channel, stored_to_item(&stored), condition)?;
        }
        ChannelWrite::Delete { version } => {
            let condition = Condition::new("#version = :v", version_names, read_version(*version));
            tx.delete(Role::Channel, channel_key(&e.user, e.id), condition)?;
        }
    }
    Ok(tx)
}

fn link_item(e: &Effects, entry: &LinkEntry) -> Item {
    let mut item = link_key(&entry.digest_hex);
    item.insert("user_id".into(), s(e.user.as_str()));
    item.insert("channel".into(), s(e.id.to_string()));
    let ttl = (entry.expires_at_millis + LINK_GRACE_MILLIS) / 1000;
    item.insert("ttl".into(), n(ttl));
    item
}

/// The count and the primary marker share the user's meta item, so their effects become one
/// update (a transaction may touch an item once).
fn push_meta(tx: &mut Tx, e: &Effects) -> Result<(), StoreError> {
    let mut set = Vec::new();
    let mut remove = None;
    let mut conditions = Vec::new();
    let mut values = HashMap::from([(":id".to_owned(), s(e.id.to_string()))]);
    let mut role = Role::Primary;
    match e.count {
        CountChange::Keep => {}
        CountChange::Increment { max } => {
            set.push("#count = if_not_exists(#count, :zero) + :one");
            values.extend([
                (":zero".to_owned(), n(0)),
                (":one".to_owned(), n(1)),
                (":max".to_owned(), n(max)),
            ]);
            conditions.push("attribute_not_exists(#count) OR #count < :max");
            role = Role::Count { max };
        }
        CountChange::Decrement => {
            set.push("#count = #count - :one");
            values.insert(":one".to_owned(), n(1));
        }
    }
    match e.primary {
        PrimaryEffect::Keep => {}
        PrimaryEffect::Set { previous } => {
            set.push("#primary = :id");
            // Compare-and-swap on the primary as read: two racing switches cannot both pass,
            // so no two channel items are left flagged.
            match previous {
                Some(previous) => {
                    values.insert(":previous".to_owned(), s(previous.to_string()));
                    conditions.push("#primary = :previous");
                }
                None => conditions.push("attribute_not_exists(#primary)"),
            }
        }
        PrimaryEffect::Remove => {
            remove = Some("#primary");
            conditions.push("#primary = :id");
        }
        PrimaryEffect::AssertNot => {
            conditions.push("attribute_not_exists(#primary) OR #primary <> :id");
        }
    }
    let mut expression = String::new();
    if !set.is_empty() {
        expression = format!("SET {}", set.join(", "));
    }
    if let Some(attribute) = remove {
        expression = format!("{expression} REMOVE {attribute}");
    }
    let condition = match conditions.as_slice() {
        [] => None,
        [one] => Some((*one).to_owned()),
        all => Some(format!("({})", all.join(") AND ("))),
    };
    // Only the names the expressions use: DynamoDB refuses unused ones.
    let used = format!("{expression} {}", condition.as_deref().unwrap_or(""));
    let names: Vec<(&str, &str)> = [("#count", "count"), ("#primary", "primary")]
        .into_iter()
        .filter(|(name, _)| used.contains(name))
        .collect();
    values.retain(|name, _| used.contains(name.as_str()));
    let c = Condition {
        expression: condition.as_deref(),
        names: &names,
        values,
    };
    match (expression.trim(), &condition) {
        ("", None) => Ok(()),
        ("", Some(_)) => tx.check(role, meta_key(&e.user), c),
        (expression, _) => tx.update(role, meta_key(&e.user), expression, c),
    }
}

/// Why a transaction did not commit.
pub(super) enum Cancelled {
    /// A condition failed: the domain error of the lowest failed role.
    Refused(WriteError),
    /// Only the send log's condition failed; its item as it was (empty if there was none).
    SendLogFull(Item),
    /// Another transaction touched the same items at the same time: read again and retry.
    Conflict,
    /// The call failed.
    Error(StoreError),
}

/// Reads a cancellation by the position of each failed item.
pub(super) fn classify(roles: &[Role], e: SdkError<TransactWriteItemsError>) -> Cancelled {
    let reasons: &[CancellationReason] = match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(c)) => c.cancellation_reasons(),
        _ => return Cancelled::Error(sdk_failed(e)),
    };
    let mut failed: Option<(Role, &CancellationReason)> = None;
    let mut conflict = false;
    for (role, reason) in roles.iter().zip(reasons) {
        match reason.code() {
            Some("ConditionalCheckFailed") if failed.is_none_or(|(f, _)| *role < f) => {
                failed = Some((*role, reason));
            }
            Some("TransactionConflict") => conflict = true,
            _ => {}
        }
    }
    match failed {
        Some((role, reason)) => match role.error(reason.item()) {
            Some(error) => Cancelled::Refused(error),
            None => Cancelled::SendLogFull(reason.item().cloned().unwrap_or_default()),
        },
        None if conflict => Cancelled::Conflict,
        None => Cancelled::Error(sdk_failed(e)),
    }
}
