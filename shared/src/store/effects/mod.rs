//! What a [`Change`] does to the stored items, decided once for every store.
//!
//! The invariants of the contract (one channel per user and value, one auth channel per value,
//! at most one primary, a channel count, a link index that follows the outstanding link, the
//! per-address send log) live in items beside the channel. Which of those items a change claims,
//! releases, counts or moves is pure bookkeeping over the records, so it is derived here, tested
//! here, and each store only translates [`Effects`] into its own writes: DynamoDB into one
//! conditional transaction, the key-value stores (redb, memory) through [`super::kv`].
//!
//! Making a channel primary also writes the channel it demotes (its flag off, its version
//! bumped): the DynamoDB stream then shows every channel's `is_primary` on the channel item
//! itself, and a write of the demoted channel that read it as primary becomes stale instead of
//! writing the flag back.
//!
//! A store checks every condition before it writes anything. When several fail, the answer is
//! the first in this order (the contract's precedence): value claim (`ValueExists`), auth claim
//! (`AuthTaken`), count (`TooMany`), channel version, primary marker and auth release (`Stale`),
//! send log (`SendLimited`).

use super::{Change, PrimaryAsRead, PrimaryChange, SendLogChange};
use crate::domain::channel::{ChannelRecord, StoredChannel};
use crate::domain::{ChannelId, EmailAddress, UserId};

/// What the stored channel must look like for the change to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No channel with this id exists (a create).
    Absent,
    /// The stored channel still has this version (it was not changed since it was read).
    Version(u64),
}

/// The write to the channel item itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelWrite {
    /// Store `record` (its `version` already the next one) if the stored one is as expected.
    Put {
        /// The record as it must be stored.
        record: ChannelRecord,
        /// The condition on what is stored now.
        expect: Expect,
    },
    /// Remove the channel if it still has `version`.
    Delete {
        /// The version read.
        version: u64,
    },
}

/// The change to the user's channel count (invariant 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountChange {
    /// Unchanged.
    Keep,
    /// One more, refused with `TooMany` if the user has `max` already.
    Increment {
        /// `MAX_CHANNELS_PER_USER`.
        max: u32,
    },
    /// One fewer.
    Decrement,
}

/// The change to the user's primary marker (invariant 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimaryEffect {
    /// Unchanged, whatever it is.
    Keep,
    /// This channel becomes primary if the marker still names `previous` (None: no channel),
    /// else the read was stale; [`Effects::demote`] demotes that channel in the same write.
    Set {
        /// The primary as read.
        previous: Option<ChannelId>,
    },
    /// This channel is primary (else the read was stale) and stops being.
    Remove,
    /// This channel is not primary (else the read was stale); the marker stays.
    AssertNot,
}

/// An entry of the link index: a link token's digest → this channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEntry {
    /// Hex digest of the token.
    pub digest_hex: String,
    /// When the link expires (stores may keep the entry a while longer, then sweep it).
    pub expires_at_millis: i64,
}

/// Everything one change writes, derived by [`effects`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effects {
    /// The channel's owner.
    pub user: UserId,
    /// The channel.
    pub id: ChannelId,
    /// Claim (user, value) for this channel; refused if any channel holds it.
    pub claim_value: Option<EmailAddress>,
    /// Release the user's claim on this value.
    pub release_value: Option<EmailAddress>,
    /// Claim the value for auth; refused if another channel holds it.
    pub claim_auth: Option<EmailAddress>,
    /// Release the auth claim on this value, which must be free or held by this channel.
    pub release_auth: Option<EmailAddress>,
    /// The user's channel count.
    pub count: CountChange,
    /// The channel item.
    pub channel: ChannelWrite,
    /// The user's primary marker.
    pub primary: PrimaryEffect,
    /// The channel that stops being primary because this one becomes it: unless it still has
    /// this version (else the read was stale), it is written with its flag off and its version
    /// one higher.
    pub demote: Option<PrimaryAsRead>,
    /// Remove this digest from the link index.
    pub unindex_link: Option<String>,
    /// Add this entry to the link index.
    pub index_link: Option<LinkEntry>,
    /// Admit or release a send in the recipient's log.
    pub send_log: Option<SendLogChange>,
    /// The channel as the change writes it (None after a delete), with `is_primary` as the
    /// change leaves it. That is exact: every change of a channel's primary status writes the
    /// channel (set, clear, demotion), so a change that read it otherwise is stale.
    pub written: Option<StoredChannel>,
}

/// The value claim a record holds for its user (invariant 1).
fn value_of(record: Option<&ChannelRecord>) -> Option<&EmailAddress> {
    record.map(|r| &r.value)
}

/// The auth claim a record holds across users (invariant 2).
fn auth_of(record: Option<&ChannelRecord>) -> Option<&EmailAddress> {
    record.filter(|r| r.used_for_auth).map(|r| &r.value)
}

/// The link index entry a record needs: its outstanding or used link, if it has one.
fn link_of(record: Option<&ChannelRecord>) -> Option<LinkEntry> {
    let record = record?;
    Some(LinkEntry {
        digest_hex: record.link_digest_hex()?,
        expires_at_millis: record.verification.as_ref()?.expires_at_millis,
    })
}

/// `new` if it differs from `old`: what must be claimed or indexed.
fn gained<T: PartialEq + Clone>(old: Option<&T>, new: Option<&T>) -> Option<T> {
    new.filter(|n| Some(*n) != old).cloned()
}

/// A change's records and what it does to the user's meta item.
struct Parts<'c> {
    /// The record the change is about: `after`, or for a delete `before`.
    subject: &'c ChannelRecord,
    before: Option<&'c ChannelRecord>,
    after: Option<&'c ChannelRecord>,
    count: CountChange,
    primary: PrimaryEffect,
    /// The primary a `Set` replaces, as read.
    previous: Option<PrimaryAsRead>,
    was_primary: bool,
    send_log: Option<SendLogChange>,
}

/// The marker effect of `change`, and the primary it replaces (only for a `Set`).
fn primary_of(change: PrimaryChange, was_primary: bool) -> (PrimaryEffect, Option<PrimaryAsRead>) {
    match (change, was_primary) {
        (PrimaryChange::Keep, _) | (PrimaryChange::Clear, false) => (PrimaryEffect::Keep, None),
        (PrimaryChange::Set { previous }, _) => (
            PrimaryEffect::Set {
                previous: previous.map(|p| p.id),
            },
            previous,
        ),
        (PrimaryChange::Clear, true) => (PrimaryEffect::Remove, None),
    }
}

fn parts(change: &Change) -> Parts<'_> {
    match change {
        Change::Create {
            record,
            primary,
            max_channels,
        } => {
            let (primary, previous) = primary_of(*primary, false);
            Parts {
                subject: record,
                before: None,
                after: Some(record),
                count: CountChange::Increment { max: *max_channels },
                primary,
                previous,
                was_primary: false,
                send_log: None,
            }
        }
        Change::Update {
            before,
            after,
            primary,
            was_primary,
            send_log,
        } => {
            let (primary, previous) = primary_of(*primary, *was_primary);
            Parts {
                subject: after,
                before: Some(before),
                after: Some(after),
                count: CountChange::Keep,
                primary,
                previous,
                was_primary: *was_primary,
                send_log: send_log.clone(),
            }
        }
        // A concurrent primary switch must make a delete stale either way: the marker is removed
        // only if it is this channel, and kept only if it is not.
        Change::Delete {
            before,
            was_primary,
        } => Parts {
            subject: before,
            before: Some(before),
            after: None,
            count: CountChange::Decrement,
            primary: if *was_primary {
                PrimaryEffect::Remove
            } else {
                PrimaryEffect::AssertNot
            },
            previous: None,
            was_primary: *was_primary,
            send_log: None,
        },
    }
}

/// The effects of `change`: claims and releases from the difference between the records
/// before and after, the count and primary from the kind of change.
pub fn effects(change: &Change) -> Effects {
    let Parts {
        subject,
        before,
        after,
        count,
        primary,
        previous,
        was_primary,
        send_log,
    } = parts(change);
    let (old_link, new_link) = (link_of(before), link_of(after));
    let link_moved =
        old_link.as_ref().map(|l| &l.digest_hex) != new_link.as_ref().map(|l| &l.digest_hex);
    let channel = match after {
        Some(after) => {
            let mut record = after.clone();
            record.version = before.map_or(1, |b| b.version + 1);
            ChannelWrite::Put {
                record,
                expect: before.map_or(Expect::Absent, |b| Expect::Version(b.version)),
            }
        }
        // Only a delete has no record after it; its subject is the record read.
        None => ChannelWrite::Delete {
            version: subject.version,
        },
    };
    let written = match &channel {
        ChannelWrite::Put { record, .. } => Some(StoredChannel {
            record: record.clone(),
            is_primary: match primary {
                PrimaryEffect::Set { .. } => true,
                PrimaryEffect::Remove | PrimaryEffect::AssertNot => false,
                PrimaryEffect::Keep => was_primary,
            },
        }),
        ChannelWrite::Delete { .. } => None,
    };
    Effects {
        user: subject.user_id.clone(),
        id: subject.id,
        claim_value: gained(value_of(before), value_of(after)),
        release_value: gained(value_of(after), value_of(before)),
        claim_auth: gained(auth_of(before), auth_of(after)),
        release_auth: gained(auth_of(after), auth_of(before)),
        count,
        channel,
        primary,
        // A channel read as primary already has the marker: there is nothing to demote, and a
        // transaction may not write one item twice.
        demote: previous.filter(|p| p.id != subject.id),
        unindex_link: old_link.filter(|_| link_moved).map(|l| l.digest_hex),
        index_link: new_link.filter(|_| link_moved),
        send_log,
        written,
    }
}

#[cfg(test)]
mod tests;
