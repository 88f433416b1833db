//! [`Effects`] applied to a key-value store inside one serializable transaction: the whole of
//! `ChannelStore::apply` and `redeem_link` for any store that can offer the tables of
//! [`KvTables`] (the embedded redb store, the in-memory store). Such a store implements plain
//! gets and sets; every check and every write of the invariants is here, once.

use serde::{Deserialize, Serialize};

use super::effects::{ChannelWrite, CountChange, Effects, Expect, PrimaryEffect, effects};
use super::{Change, PrimaryChange, RedeemError, SendLogChange, StoreError, WriteError};
use crate::domain::channel::{ChannelRecord, Digest, StoredChannel};
use crate::domain::{ChannelId, EmailAddress, UserId};
use crate::rules::send_limits::{admit_send, release_send};
use crate::rules::verification::{LinkRefusal, check_link, redeemed};

/// The per-user record: channel count (invariant 7) and primary (invariant 3).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMeta {
    /// How many channels the user has.
    pub count: u32,
    /// The primary channel, if any (absent when none, as in [`ChannelRecord`]'s optional
    /// fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<ChannelId>,
}

/// A channel's full key.
pub type ChannelKey = (UserId, ChannelId);

/// The tables of a key-value store, as seen inside one transaction. Setting `None` removes.
#[allow(missing_docs)] // Each pair is a get and a set of the table its name says.
pub trait KvTables {
    fn channel(&self, user: &UserId, id: ChannelId) -> Result<Option<ChannelRecord>, StoreError>;
    fn put_channel(&mut self, record: &ChannelRecord) -> Result<(), StoreError>;
    fn remove_channel(&mut self, user: &UserId, id: ChannelId) -> Result<(), StoreError>;
    /// Invariant 1: (user, value) → channel.
    fn value_claim(
        &self,
        user: &UserId,
        value: &EmailAddress,
    ) -> Result<Option<ChannelId>, StoreError>;
    fn set_value_claim(
        &mut self,
        user: &UserId,
        value: &EmailAddress,
        holder: Option<ChannelId>,
    ) -> Result<(), StoreError>;
    /// Invariant 2: value → the channel that uses it for auth.
    fn auth_claim(&self, value: &EmailAddress) -> Result<Option<ChannelKey>, StoreError>;
    fn set_auth_claim(
        &mut self,
        value: &EmailAddress,
        holder: Option<&ChannelKey>,
    ) -> Result<(), StoreError>;
    fn user_meta(&self, user: &UserId) -> Result<UserMeta, StoreError>;
    /// Setting the default (no channel, no primary) removes: a user who deleted every channel
    /// leaves nothing behind.
    fn set_user_meta(&mut self, user: &UserId, meta: &UserMeta) -> Result<(), StoreError>;
    /// Hex digest of a link token → its channel.
    fn link(&self, digest_hex: &str) -> Result<Option<ChannelKey>, StoreError>;
    fn set_link(&mut self, digest_hex: &str, holder: Option<&ChannelKey>)
    -> Result<(), StoreError>;
    /// Address → send times of the last 24 h.
    fn send_log(&self, address: &EmailAddress) -> Result<Vec<i64>, StoreError>;
    fn set_send_log(&mut self, address: &EmailAddress, log: &[i64]) -> Result<(), StoreError>;
}

/// Applies `change`: checks every condition (in the precedence of [`super::effects`]), then
/// writes. A refused change writes nothing; after a store error the caller must abort.
pub fn apply(
    tables: &mut impl KvTables,
    change: &Change,
) -> Result<Option<StoredChannel>, WriteError> {
    let e = effects(change);
    let checked = check(tables, &e)?;
    write(tables, e, checked)
}

/// What the checks read that the writes need: the user's meta, the channel to demote and the
/// next send log.
struct Checked {
    meta: UserMeta,
    demoted: Option<ChannelRecord>,
    next_log: Option<(EmailAddress, Vec<i64>)>,
}

/// Every condition of `e`, in the precedence of [`super::effects`].
fn check(tables: &impl KvTables, e: &Effects) -> Result<Checked, WriteError> {
    let this: ChannelKey = (e.user.clone(), e.id);

    if let Some(value) = &e.claim_value
        && tables.value_claim(&e.user, value)?.is_some()
    {
        return Err(WriteError::ValueExists);
    }
    let held_by_other = |holder: Option<ChannelKey>| holder.is_some_and(|holder| holder != this);
    if let Some(value) = &e.claim_auth
        && held_by_other(tables.auth_claim(value)?)
    {
        return Err(WriteError::AuthTaken);
    }
    let meta = tables.user_meta(&e.user)?;
    if let CountChange::Increment { max } = e.count
        && meta.count >= max
    {
        return Err(WriteError::TooMany);
    }
    let stored = tables.channel(&e.user, e.id)?.map(|r| r.version);
    let as_read = match &e.channel {
        ChannelWrite::Put {
            expect: Expect::Absent,
            ..
        } => stored.is_none(),
        ChannelWrite::Put {
            expect: Expect::Version(version),
            ..
        }
        | ChannelWrite::Delete { version } => stored == Some(*version),
    };
    let is_primary = meta.primary == Some(e.id);
    let primary_as_read = match e.primary {
        PrimaryEffect::Remove => is_primary,
        PrimaryEffect::AssertNot => !is_primary,
        PrimaryEffect::Set { previous } => meta.primary == previous,
        PrimaryEffect::Keep => true,
    };
    let demoted = match &e.demote {
        Some(d) => match tables.channel(&e.user, d.id)? {
            Some(record) if record.version == d.version => Some(record),
            _ => return Err(WriteError::Stale),
        },
        None => None,
    };
    let auth_releasable = match &e.release_auth {
        Some(value) => !held_by_other(tables.auth_claim(value)?),
        None => true,
    };
    if !(as_read && primary_as_read && auth_releasable) {
        return Err(WriteError::Stale);
    }
    let next_log = match &e.send_log {
        Some(SendLogChange::Admit {
            address,
            at,
            limits,
        }) => Some((
            address.clone(),
            admit_send(&tables.send_log(address)?, *at, *limits)
                .map_err(WriteError::SendLimited)?,
        )),
        Some(SendLogChange::Release { address, at }) => Some((
            address.clone(),
            release_send(&tables.send_log(address)?, *at),
        )),
        None => None,
    };
    Ok(Checked {
        meta,
        demoted,
        next_log,
    })
}

/// Writes `e`, whose conditions hold.
fn write(
    tables: &mut impl KvTables,
    e: Effects,
    checked: Checked,
) -> Result<Option<StoredChannel>, WriteError> {
    let Checked {
        mut meta,
        demoted,
        next_log,
    } = checked;
    let this: ChannelKey = (e.user.clone(), e.id);
    let meta_as_read = meta.clone();
    if let Some(value) = &e.release_value {
        tables.set_value_claim(&e.user, value, None)?;
    }
    if let Some(value) = &e.claim_value {
        tables.set_value_claim(&e.user, value, Some(e.id))?;
    }
    if let Some(value) = &e.release_auth {
        tables.set_auth_claim(value, None)?;
    }
    if let Some(value) = &e.claim_auth {
        tables.set_auth_claim(value, Some(&this))?;
    }
    match e.count {
        CountChange::Keep => {}
        CountChange::Increment { .. } => meta.count += 1,
        CountChange::Decrement => meta.count = meta.count.saturating_sub(1),
    }
    match e.primary {
        PrimaryEffect::Set { .. } => meta.primary = Some(e.id),
        PrimaryEffect::Remove => meta.primary = None,
        PrimaryEffect::Keep | PrimaryEffect::AssertNot => {}
    }
    // Most changes (an update, a send, an attempt) leave the count and the primary alone: the
    // meta row is then not rewritten, one write fewer in the transaction.
    if meta != meta_as_read {
        tables.set_user_meta(&e.user, &meta)?;
    }
    // These items keep no flag (reads and local events take it from the meta), but the
    // version moves as on DynamoDB, so a write that read the demoted channel as primary is
    // stale on every store.
    if let Some(mut record) = demoted {
        record.version += 1;
        tables.put_channel(&record)?;
    }
    if let Some(digest) = &e.unindex_link {
        tables.set_link(digest, None)?;
    }
    if let Some(entry) = &e.index_link {
        tables.set_link(&entry.digest_hex, Some(&this))?;
    }
    if let Some((address, log)) = next_log {
        tables.set_send_log(&address, &log)?;
    }
    match e.channel {
        ChannelWrite::Put { record, .. } => {
            tables.put_channel(&record)?;
            let is_primary = meta.primary == Some(e.id);
            Ok(Some(StoredChannel { record, is_primary }))
        }
        ChannelWrite::Delete { .. } => {
            tables.remove_channel(&e.user, e.id)?;
            Ok(None)
        }
    }
}

/// Checks the link with `check_link` and, if it passes, marks its channel verified, in the
/// same transaction.
pub fn redeem_link(
    tables: &mut impl KvTables,
    digest: &Digest,
    now: i64,
) -> Result<(), RedeemError> {
    let record = match tables.link(&digest.to_hex())? {
        Some((user, id)) => tables.channel(&user, id)?,
        None => None,
    };
    check_link(record.as_ref(), digest, now).map_err(RedeemError::Refused)?;
    let Some(before) = record else {
        return Err(RedeemError::Refused(LinkRefusal::NotFound));
    };
    let change = Change::Update {
        after: redeemed(&before),
        before,
        primary: PrimaryChange::Keep,
        was_primary: false,
        send_log: None,
    };
    apply(tables, &change)?;
    Ok(())
}
