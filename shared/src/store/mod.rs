//! The storage port. Every write is one atomic `Change` checked against the version that was
//! read (optimistic concurrency) plus uniqueness claims, so that an implementation on
//! DynamoDB can express each change as a single conditional transaction.

use async_trait::async_trait;

use crate::domain::channel::{ChannelRecord, Digest, StoredChannel};
use crate::domain::{ChannelId, EmailAddress, UserId};
use crate::rules::send_limits::SendLimits;
use crate::rules::verification::LinkRefusal;

/// The store itself failed (I/O, network, corrupt data): a 500 for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store unavailable: {0}")]
pub struct StoreError(pub String);

impl StoreError {
    /// A store failure described by `cause` (an I/O, SDK or decoding error).
    pub fn new(cause: impl std::fmt::Display) -> Self {
        StoreError(cause.to_string())
    }
}

/// Why a change was not applied. Nothing of it was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The channel changed or vanished since it was read: read again and retry.
    #[error("the channel changed since it was read")]
    Stale,
    /// The user has a channel with this value already (invariant 1).
    #[error("value already exists for this user")]
    ValueExists,
    /// Another user's channel with this value is used for auth (invariant 2).
    #[error("value is used for auth by another user")]
    AuthTaken,
    /// The user is at `MAX_CHANNELS_PER_USER` (invariant 7).
    #[error("too many channels")]
    TooMany,
    /// The recipient's cooldown or 24-hour cap applies; the wait in whole seconds.
    #[error("send limit reached")]
    SendLimited(u64),
    #[error(transparent)]
    /// The store itself failed.
    Store(#[from] StoreError),
}

/// The user's primary channel as a change read it: the one that making another channel
/// primary demotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrimaryAsRead {
    /// The primary channel.
    pub id: ChannelId,
    /// Its version when read.
    pub version: u64,
}

/// What happens to the user's primary marker in a change (invariant 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimaryChange {
    /// The primary marker stays as it is.
    Keep,
    /// This channel becomes primary. `previous` is the primary that was read (None: the user
    /// had none); it is demoted in the same step, which is stale if the marker or that
    /// channel moved since.
    Set {
        /// The user's primary as read.
        previous: Option<PrimaryAsRead>,
    },
    /// This channel stops being primary (if it is); none is promoted.
    Clear,
}

/// A change to the per-address log of verification mails (the daily cap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendLogChange {
    /// Count one send at `at`, unless the address is in its cooldown or `limits.cap` sends
    /// were counted in the last 24 h (`rules::send_limits::admit_send`).
    Admit {
        /// The recipient.
        address: EmailAddress,
        /// When (ms since the epoch).
        at: i64,
        /// The cooldown and the daily cap.
        limits: SendLimits,
    },
    /// Take back the send counted at `at` (the mail service refused it).
    Release {
        /// The recipient.
        address: EmailAddress,
        /// The send to take back.
        at: i64,
    },
}

/// One atomic write. The store derives every uniqueness claim and index from the records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new channel, with its claims; `max_channels` is the per-user cap.
    Create {
        /// The channel to write (version 0: the store writes 1).
        record: ChannelRecord,
        /// `Set` makes it its user's primary; `Keep` and `Clear` both leave the marker alone
        /// (a new channel is not primary).
        primary: PrimaryChange,
        /// `MAX_CHANNELS_PER_USER`.
        max_channels: u32,
    },
    /// Applies only if the stored version still equals `before.version`. `was_primary` is
    /// what was read with `before`.
    Update {
        /// The channel as read.
        before: ChannelRecord,
        /// The channel as it must be written.
        after: ChannelRecord,
        /// What happens to the primary marker.
        primary: PrimaryChange,
        /// Whether it was primary when read.
        was_primary: bool,
        /// A change to the recipient's send log, in the same step.
        send_log: Option<SendLogChange>,
    },
    /// Removes the channel, its claims and its link index; only if unchanged since read.
    Delete {
        /// The channel as read.
        before: ChannelRecord,
        /// Whether it was primary when read.
        was_primary: bool,
    },
}

/// Redeeming a link token failed: refused by the rules, or the store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedeemError {
    #[error("link refused: {0:?}")]
    /// The rules refused the token.
    Refused(LinkRefusal),
    #[error(transparent)]
    /// The store failed.
    Store(#[from] StoreError),
}

impl From<WriteError> for RedeemError {
    /// Redeeming writes a change that the link check already allowed, so any refusal of that
    /// write (a concurrent change) is a store failure, not an answer about the link.
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Store(e) => RedeemError::Store(e),
            other => RedeemError::Store(StoreError::new(other)),
        }
    }
}

#[async_trait]
/// The storage port: what the service needs of a store, nothing more.
pub trait ChannelStore: Send + Sync {
    /// All channels of a user, in no particular order.
    async fn list(&self, user: &UserId) -> Result<Vec<StoredChannel>, StoreError>;

    /// One channel of a user.
    async fn get(&self, user: &UserId, id: ChannelId) -> Result<Option<StoredChannel>, StoreError>;

    /// Applies `change` atomically and returns the channel as written (None after a delete).
    async fn apply(&self, change: Change) -> Result<Option<StoredChannel>, WriteError>;

    /// The channel whose outstanding or used link has this digest, if any.
    async fn find_link(&self, digest: &Digest) -> Result<Option<(UserId, ChannelId)>, StoreError>;

    /// Checks the link with `rules::verification::check_link` and, if it passes, marks the channel verified
    /// by it (`rules::verification::redeemed`) in one atomic step.
    async fn redeem_link(&self, digest: &Digest, now: i64) -> Result<(), RedeemError>;

    /// Send times of the last 24 h for an address, oldest first (to answer `retry-after`).
    async fn send_log(&self, address: &EmailAddress) -> Result<Vec<i64>, StoreError>;
}

pub mod effects;
pub mod kv;
#[cfg(any(test, feature = "memory-store"))]
pub mod memory;
