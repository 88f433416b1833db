//! The DynamoDB store: one table, key `pk`/`sk` (both strings), TTL attribute `ttl`.
//!
//! | item | pk | sk | what it holds |
//! |---|---|---|---|
//! | channel | `USER#<user>` | `CH#<id>` | the record, with its code/link inline under `ver`, and `version` |
//! | user meta | `USER#<user>` | `META` | `count` of channels (invariant 7) and `primary` id (invariant 3) |
//! | value claim | `VALUE#<user>#<value>` | `VALUE` | one per (user, value): invariant 1 |
//! | auth claim | `AUTH#<value>` | `AUTH` | one per value across users: invariant 2 |
//! | link index | `LINK#<hex digest>` | `LINK` | user and channel of a link token; `ttl` a week past expiry |
//! | send log | `SENDS#<address>` | `SENDS` | send times of the last 24 h (daily cap); `ttl` a day after the last |
//!
//! A user's channels and meta share a partition, so list is one Query and read one
//! TransactGet. Every `Change` is one TransactWriteItems whose conditions (`attribute_not_exists`
//! on claims, `version = :v` on the channel) enforce the invariants; a cancellation is mapped to
//! a domain error by the position of the failed item. Nothing here ever Scans.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, Delete, Get,
    KeySchemaElement, KeyType, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TimeToLiveSpecification, TransactGetItem, TransactWriteItem, Update,
};

use contact_channels::domain::channel::{ChannelRecord, Digest, StoredChannel, Verification};
use contact_channels::domain::{ChannelId, EmailAddress, Strategy, UserId};
use contact_channels::rules::send_limits::{DAY_MILLIS, admit_send, release_send};
use contact_channels::rules::verification::{LinkRefusal, check_link};
use contact_channels::store::{
    Change, ChannelStore, PrimaryChange, RedeemError, SendLogChange, StoreError, WriteError,
};

type Item = HashMap<String, AttributeValue>;

/// Link index items outlive their token by this much, so a late click still answers
/// "expired" rather than "not found"; after that DynamoDB's TTL sweeps them.
const LINK_GRACE_MILLIS: i64 = 7 * DAY_MILLIS;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// Formats an SDK error with its cause chain (the top level only says "service error").
fn sdk_failed<E: std::error::Error + 'static>(e: E) -> StoreError {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    StoreError(text)
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn user_pk(user: &UserId) -> String {
    format!("USER#{user}")
}

fn channel_key(user: &UserId, id: ChannelId) -> Item {
    key(user_pk(user), &format!("CH#{id}"))
}

fn meta_key(user: &UserId) -> Item {
    key(user_pk(user), "META")
}

fn value_key(user: &UserId, value: &EmailAddress) -> Item {
    key(format!("VALUE#{user}#{value}"), "VALUE")
}

fn auth_key(value: &EmailAddress) -> Item {
    key(format!("AUTH#{value}"), "AUTH")
}

fn link_key(digest: &str) -> Item {
    key(format!("LINK#{digest}"), "LINK")
}

fn sends_key(address: &EmailAddress) -> Item {
    key(format!("SENDS#{address}"), "SENDS")
}

fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| failed(format!("item lacks {name}")))
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| failed(format!("item lacks number {name}")))
}

fn get_bool(item: &Item, name: &str) -> Result<bool, StoreError> {
    item.get(name)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .ok_or_else(|| failed(format!("item lacks bool {name}")))
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

fn item_to_record(item: &Item) -> Result<ChannelRecord, StoreError> {
    let verification = match item.get("ver").and_then(|v| v.as_m().ok()) {
        None => None,
        Some(ver) => {
            let digest: [u8; 32] = hex::decode(get_s(ver, "digest")?)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| failed("bad digest"))?;
            Some(Verification {
                strategy: Strategy::parse(get_s(ver, "strategy")?)
                    .ok_or_else(|| failed("bad strategy"))?,
                digest: Digest::from_bytes(digest),
                expires_at_millis: get_n(ver, "expires")?,
                attempts: get_n(ver, "attempts")?,
                used: get_bool(ver, "used")?,
            })
        }
    };
    Ok(ChannelRecord {
        id: ChannelId::parse(get_s(item, "id")?).map_err(failed)?,
        user_id: UserId::parse(get_s(item, "user_id")?).map_err(failed)?,
        value: EmailAddress::parse(get_s(item, "value")?).map_err(failed)?,
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

fn link_of(r: Option<&ChannelRecord>) -> Option<String> {
    r.and_then(|r| r.verification.as_ref())
        .filter(|v| v.strategy == Strategy::EmailLink)
        .map(|v| v.digest.to_hex())
}

fn sends_of(item: Option<&Item>) -> Vec<i64> {
    item.and_then(|i| i.get("sends"))
        .and_then(|v| v.as_l().ok())
        .map(|l| {
            l.iter()
                .filter_map(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

fn sends_list(log: &[i64]) -> AttributeValue {
    AttributeValue::L(log.iter().map(|t| n(*t)).collect())
}

/// What a cancelled item of a transaction means for the domain.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Role {
    // Ordered by the contract's precedence: the lowest failed role is the answer.
    Value,
    Auth,
    Count,
    Channel,
    Primary,
    Sends,
    Other,
}

/// A transaction under construction: items plus the role of each, by position.
#[derive(Default)]
struct Tx {
    items: Vec<TransactWriteItem>,
    roles: Vec<Role>,
}

impl Tx {
    fn push(&mut self, role: Role, item: TransactWriteItem) {
        self.items.push(item);
        self.roles.push(role);
    }
}

/// Adds a condition, its attribute names and values to a Put, Delete or Update builder
/// (three types with the same methods).
macro_rules! with_condition {
    ($builder:expr, $condition:expr, $names:expr, $values:expr) => {{
        let mut b = $builder;
        if let Some(c) = $condition {
            b = b.condition_expression(c);
        }
        for (k, v) in $names {
            b = b.expression_attribute_names(*k, *v);
        }
        if !$values.is_empty() {
            b = b.set_expression_attribute_values(Some($values));
        }
        b
    }};
}

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

/// How a send-log admission is written: optimistically appended, or replaced exactly.
enum SendsWrite {
    Append {
        address: EmailAddress,
        at: i64,
        cap: u32,
    },
    Replace {
        address: EmailAddress,
        old: Vec<i64>,
        new: Vec<i64>,
        existed: bool,
    },
}

impl DynamoStore {
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
            .attribute_definitions(attr("pk").map_err(failed)?)
            .attribute_definitions(attr("sk").map_err(failed)?)
            .key_schema(schema("pk", KeyType::Hash).map_err(failed)?)
            .key_schema(schema("sk", KeyType::Range).map_err(failed)?)
            .send()
            .await
            .map_err(sdk_failed)?;
        let ttl = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name("ttl")
            .build()
            .map_err(failed)?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(sdk_failed)?;
        Ok(())
    }

    fn put(
        &self,
        item: Item,
        condition: Option<&str>,
        names: &[(&str, &str)],
        values: Item,
    ) -> Result<TransactWriteItem, StoreError> {
        let b = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let b = with_condition!(b, condition, names, values);
        Ok(TransactWriteItem::builder()
            .put(b.build().map_err(failed)?)
            .build())
    }

    fn delete(
        &self,
        key: Item,
        condition: Option<&str>,
        names: &[(&str, &str)],
        values: Item,
    ) -> Result<TransactWriteItem, StoreError> {
        let b = Delete::builder().table_name(&self.table).set_key(Some(key));
        let b = with_condition!(b, condition, names, values);
        Ok(TransactWriteItem::builder()
            .delete(b.build().map_err(failed)?)
            .build())
    }

    fn update(
        &self,
        key: Item,
        expression: &str,
        condition: Option<&str>,
        names: &[(&str, &str)],
        values: Item,
    ) -> Result<TransactWriteItem, StoreError> {
        let b = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(expression)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let b = with_condition!(b, condition, names, values);
        Ok(TransactWriteItem::builder()
            .update(b.build().map_err(failed)?)
            .build())
    }

    /// Builds the transaction for a change (without its send-log item).
    fn transaction(&self, change: &Change) -> Result<Tx, StoreError> {
        let mut tx = Tx::default();
        let no_values = Item::new;
        match change {
            Change::Create {
                record,
                make_primary,
                max_channels,
            } => {
                let id = record.id.to_string();
                // Claims first: a cancellation names the failed items by position, and the
                // contract's order is value, then auth, then the count.
                let claim = HashMap::from([("channel".to_owned(), s(&id))]);
                let mut item = value_key(&record.user_id, &record.value);
                item.extend(claim.clone());
                tx.push(
                    Role::Value,
                    self.put(item, Some("attribute_not_exists(pk)"), &[], no_values())?,
                );
                if record.used_for_auth {
                    let mut item = auth_key(&record.value);
                    item.extend(claim);
                    item.insert("user_id".into(), s(record.user_id.as_str()));
                    tx.push(
                        Role::Auth,
                        self.put(item, Some("attribute_not_exists(pk)"), &[], no_values())?,
                    );
                }
                let mut values = HashMap::from([
                    (":zero".to_owned(), n(0)),
                    (":one".to_owned(), n(1)),
                    (":max".to_owned(), n(*max_channels)),
                ]);
                let mut expression = "SET #count = if_not_exists(#count, :zero) + :one".to_owned();
                let mut names = vec![("#count", "count")];
                if *make_primary {
                    expression.push_str(", #primary = :id");
                    names.push(("#primary", "primary"));
                    values.insert(":id".into(), s(&id));
                }
                tx.push(
                    Role::Count,
                    self.update(
                        meta_key(&record.user_id),
                        &expression,
                        Some("attribute_not_exists(#count) OR #count < :max"),
                        &names,
                        values,
                    )?,
                );
                let mut written = record.clone();
                written.version = 1;
                tx.push(
                    Role::Channel,
                    self.put(
                        record_to_item(&written),
                        Some("attribute_not_exists(pk)"),
                        &[],
                        no_values(),
                    )?,
                );
            }
            Change::Update {
                before,
                after,
                primary,
                was_primary,
                ..
            } => {
                let user = &before.user_id;
                let id = before.id.to_string();
                let this = HashMap::from([(":id".to_owned(), s(&id))]);
                if before.value != after.value {
                    let mut item = value_key(user, &after.value);
                    item.insert("channel".into(), s(&id));
                    tx.push(
                        Role::Value,
                        self.put(item, Some("attribute_not_exists(pk)"), &[], no_values())?,
                    );
                    tx.push(
                        Role::Other,
                        self.delete(value_key(user, &before.value), None, &[], no_values())?,
                    );
                }
                let old_auth = before.used_for_auth.then_some(&before.value);
                let new_auth = after.used_for_auth.then_some(&after.value);
                if old_auth != new_auth {
                    if let Some(value) = new_auth {
                        let mut item = auth_key(value);
                        item.insert("channel".into(), s(&id));
                        item.insert("user_id".into(), s(user.as_str()));
                        let cond = "attribute_not_exists(pk) OR #channel = :id";
                        tx.push(
                            Role::Auth,
                            self.put(item, Some(cond), &[("#channel", "channel")], this.clone())?,
                        );
                    }
                    if let Some(value) = old_auth {
                        let cond = "attribute_not_exists(pk) OR #channel = :id";
                        tx.push(
                            Role::Other,
                            self.delete(
                                auth_key(value),
                                Some(cond),
                                &[("#channel", "channel")],
                                this.clone(),
                            )?,
                        );
                    }
                }
                match primary {
                    PrimaryChange::Keep => {}
                    PrimaryChange::Set => tx.push(
                        Role::Primary,
                        self.update(
                            meta_key(user),
                            "SET #primary = :id",
                            None,
                            &[("#primary", "primary")],
                            this.clone(),
                        )?,
                    ),
                    PrimaryChange::Clear if *was_primary => tx.push(
                        Role::Primary,
                        self.update(
                            meta_key(user),
                            "REMOVE #primary",
                            Some("#primary = :id"),
                            &[("#primary", "primary")],
                            this.clone(),
                        )?,
                    ),
                    PrimaryChange::Clear => {}
                }
                self.push_links(&mut tx, Some(before), Some(after))?;
                let mut written = after.clone();
                written.version = before.version + 1;
                let values = HashMap::from([(":v".to_owned(), n(before.version))]);
                tx.push(
                    Role::Channel,
                    self.put(
                        record_to_item(&written),
                        Some("#version = :v"),
                        &[("#version", "version")],
                        values,
                    )?,
                );
            }
            Change::Delete {
                before,
                was_primary,
            } => {
                let user = &before.user_id;
                let id = before.id.to_string();
                let this = HashMap::from([(":id".to_owned(), s(&id))]);
                tx.push(
                    Role::Other,
                    self.delete(value_key(user, &before.value), None, &[], no_values())?,
                );
                if before.used_for_auth {
                    let cond = "attribute_not_exists(pk) OR #channel = :id";
                    tx.push(
                        Role::Other,
                        self.delete(
                            auth_key(&before.value),
                            Some(cond),
                            &[("#channel", "channel")],
                            this.clone(),
                        )?,
                    );
                }
                let mut values = this;
                values.insert(":one".into(), n(1));
                let names = [("#count", "count"), ("#primary", "primary")];
                // The primary marker is removed only if it is this channel, and kept only if it
                // is not: either way a concurrent primary switch makes this a stale write.
                let (expression, condition) = if *was_primary {
                    (
                        "SET #count = #count - :one REMOVE #primary",
                        "#primary = :id",
                    )
                } else {
                    (
                        "SET #count = #count - :one",
                        "attribute_not_exists(#primary) OR #primary <> :id",
                    )
                };
                tx.push(
                    Role::Primary,
                    self.update(meta_key(user), expression, Some(condition), &names, values)?,
                );
                self.push_links(&mut tx, Some(before), None)?;
                let values = HashMap::from([(":v".to_owned(), n(before.version))]);
                tx.push(
                    Role::Channel,
                    self.delete(
                        channel_key(user, before.id),
                        Some("#version = :v"),
                        &[("#version", "version")],
                        values,
                    )?,
                );
            }
        }
        Ok(tx)
    }

    fn push_links(
        &self,
        tx: &mut Tx,
        before: Option<&ChannelRecord>,
        after: Option<&ChannelRecord>,
    ) -> Result<(), StoreError> {
        let (old, new) = (link_of(before), link_of(after));
        if old == new {
            return Ok(());
        }
        if let Some(old) = old {
            tx.push(
                Role::Other,
                self.delete(link_key(&old), None, &[], Item::new())?,
            );
        }
        if let (Some(new), Some(after)) = (new, after) {
            let expires = after
                .verification
                .as_ref()
                .map_or(0, |v| v.expires_at_millis);
            let mut item = link_key(&new);
            item.insert("user_id".into(), s(after.user_id.as_str()));
            item.insert("channel".into(), s(after.id.to_string()));
            item.insert("ttl".into(), n((expires + LINK_GRACE_MILLIS) / 1000));
            tx.push(Role::Other, self.put(item, None, &[], Item::new())?);
        }
        Ok(())
    }

    fn push_sends(&self, tx: &mut Tx, write: &SendsWrite) -> Result<(), StoreError> {
        let names = [("#sends", "sends"), ("#ttl", "ttl")];
        match write {
            SendsWrite::Append { address, at, cap } => {
                let values = HashMap::from([
                    (":now".to_owned(), AttributeValue::L(vec![n(*at)])),
                    (":empty".to_owned(), AttributeValue::L(vec![])),
                    (":cap".to_owned(), n(*cap)),
                    (":ttl".to_owned(), n((at + DAY_MILLIS) / 1000)),
                ]);
                // Appending is right while the log holds fewer than `cap` entries; a full log
                // fails the condition, and the caller prunes it from the returned old item.
                tx.push(
                    Role::Sends,
                    self.update(
                        sends_key(address),
                        "SET #sends = list_append(if_not_exists(#sends, :empty), :now), #ttl = :ttl",
                        Some("attribute_not_exists(#sends) OR size(#sends) < :cap"),
                        &names,
                        values,
                    )?,
                );
            }
            SendsWrite::Replace {
                address,
                old,
                new,
                existed,
            } => {
                let last = new.iter().max().copied().unwrap_or(0);
                let mut values = HashMap::from([
                    (":new".to_owned(), sends_list(new)),
                    (":ttl".to_owned(), n((last + DAY_MILLIS) / 1000)),
                ]);
                let condition = if *existed {
                    values.insert(":old".into(), sends_list(old));
                    "#sends = :old"
                } else {
                    "attribute_not_exists(#sends)"
                };
                tx.push(
                    Role::Sends,
                    self.update(
                        sends_key(address),
                        "SET #sends = :new, #ttl = :ttl",
                        Some(condition),
                        &names,
                        values,
                    )?,
                );
            }
        }
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
    async fn run(&self, tx: Tx) -> Result<(), Cancelled> {
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

/// Why a transaction did not commit.
enum Cancelled {
    /// The conditions of these roles failed (the send log's old item, if it failed).
    Conditions {
        failed: Vec<Role>,
        sends_item: Option<Item>,
    },
    /// Another transaction touched the same items at the same time: retry.
    Conflict,
    Error(StoreError),
}

fn classify(roles: &[Role], e: SdkError<TransactWriteItemsError>) -> Cancelled {
    let reasons: Option<&[CancellationReason]> = match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
            Some(c.cancellation_reasons())
        }
        _ => None,
    };
    let Some(reasons) = reasons else {
        return Cancelled::Error(sdk_failed(e));
    };
    let mut failed = Vec::new();
    let mut sends_item = None;
    let mut conflict = false;
    for (role, reason) in roles.iter().zip(reasons) {
        match reason.code() {
            Some("ConditionalCheckFailed") => {
                failed.push(*role);
                if *role == Role::Sends {
                    sends_item = Some(reason.item().cloned().unwrap_or_default());
                }
            }
            Some("TransactionConflict") => conflict = true,
            _ => {}
        }
    }
    if failed.is_empty() {
        if conflict {
            return Cancelled::Conflict;
        }
        return Cancelled::Error(sdk_failed(e));
    }
    failed.sort();
    Cancelled::Conditions { failed, sends_item }
}

#[async_trait]
impl ChannelStore for DynamoStore {
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
                    "META" => primary = item.get("primary").and_then(|v| v.as_s().ok()).cloned(),
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
                .map_err(failed)?;
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
        let mut sends = match &change {
            Change::Update {
                send_log: Some(SendLogChange::Admit { address, at, cap }),
                ..
            } => Some(SendsWrite::Append {
                address: address.clone(),
                at: *at,
                cap: *cap,
            }),
            Change::Update {
                send_log: Some(SendLogChange::Release { address, at }),
                ..
            } => {
                // Taking one entry out needs the list: read it (the refused-mail path only).
                let item = self.read_sends(address).await?;
                let old = sends_of(item.as_ref());
                let new = release_send(&old, *at);
                Some(SendsWrite::Replace {
                    address: address.clone(),
                    old,
                    new,
                    existed: item.is_some(),
                })
            }
            _ => None,
        };
        // At most one extra round: when the log is full of entries older than 24 h.
        for _ in 0..3 {
            let mut tx = self.transaction(&change)?;
            if let Some(write) = &sends {
                self.push_sends(&mut tx, write)?;
            }
            match self.run(tx).await {
                Ok(()) => return Ok(written(&change)),
                Err(Cancelled::Conflict) => return Err(WriteError::Stale),
                Err(Cancelled::Error(e)) => return Err(e.into()),
                Err(Cancelled::Conditions { failed, sends_item }) => {
                    let first = failed.first().copied().unwrap_or(Role::Other);
                    match first {
                        Role::Value => return Err(WriteError::ValueExists),
                        Role::Auth => return Err(WriteError::AuthTaken),
                        Role::Count => return Err(WriteError::TooMany),
                        Role::Channel | Role::Primary | Role::Other => {
                            return Err(WriteError::Stale);
                        }
                        Role::Sends => {}
                    }
                    let (Some(SendsWrite::Append { address, at, cap }), Some(item)) =
                        (&sends, sends_item)
                    else {
                        return Err(WriteError::Stale);
                    };
                    let existed = !item.is_empty();
                    let old = sends_of(Some(&item));
                    let new = admit_send(&old, *at, *cap).map_err(WriteError::DailyCap)?;
                    sends = Some(SendsWrite::Replace {
                        address: address.clone(),
                        old,
                        new,
                        existed,
                    });
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
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let user = UserId::parse(get_s(item, "user_id")?).map_err(failed)?;
        let id = ChannelId::parse(get_s(item, "channel")?).map_err(failed)?;
        Ok(Some((user, id)))
    }

    async fn redeem_link(&self, digest: &Digest, now: i64) -> Result<(), RedeemError> {
        let Some((user, id)) = self.find_link(digest).await? else {
            return Err(RedeemError::Refused(LinkRefusal::NotFound));
        };
        // One conditional update does the check and the write; when the condition fails the
        // old item comes back and the shared rule says why (not found, expired or used).
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(channel_key(&user, id)))
            .update_expression("SET #verified = :t, #ver.#used = :t, #version = #version + :one")
            .condition_expression(
                "attribute_exists(pk) AND #ver.#strategy = :link AND #ver.#digest = :digest AND #ver.#used = :f AND #ver.#expires > :now",
            )
            .expression_attribute_names("#verified", "is_verified")
            .expression_attribute_names("#ver", "ver")
            .expression_attribute_names("#used", "used")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#strategy", "strategy")
            .expression_attribute_names("#digest", "digest")
            .expression_attribute_names("#expires", "expires")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":link", s(Strategy::EmailLink.as_str()))
            .expression_attribute_values(":digest", s(digest.to_hex()))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::None)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(err) if err.is_conditional_check_failed_exception() => {
                    let old = match err {
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => {
                            c.item().map(item_to_record).transpose()?
                        }
                        _ => None,
                    };
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

/// The channel as a successful change wrote it.
fn written(change: &Change) -> Option<StoredChannel> {
    match change {
        Change::Create {
            record,
            make_primary,
            ..
        } => {
            let mut record = record.clone();
            record.version = 1;
            Some(StoredChannel {
                record,
                is_primary: *make_primary,
            })
        }
        Change::Update {
            before,
            after,
            primary,
            was_primary,
            ..
        } => {
            let mut record = after.clone();
            record.version = before.version + 1;
            let is_primary = match primary {
                PrimaryChange::Set => true,
                PrimaryChange::Clear => false,
                PrimaryChange::Keep => *was_primary,
            };
            Some(StoredChannel { record, is_primary })
        }
        Change::Delete { .. } => None,
    }
}
