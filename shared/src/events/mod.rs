//! Lifecycle events (docs/events.md): a pure mapping from what one committed write did to a
//! channel, or to a user's primary marker, to the events it means. The DynamoDB Streams consumer
//! (`cc-events`) and the local server (`/_dev/events`) both call it, so both publish the same
//! events for the same change.
//!
//! `contact_channel.primary_changed` is derived from the user's primary marker before/after
//! ([`primary_events`]): only it knows the previous primary. Every other event comes from the
//! channel's before/after ([`channel_events`]), whose `is_primary` is the channel's own flag,
//! written by the same transaction as the marker. Making B primary also writes the demoted A
//! (flag off, version up); that write changes no public field but `is_primary`, so it makes
//! no event of its own: `primary_changed` already says it.

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::domain::channel::StoredChannel;
use crate::domain::{ChannelId, Strategy, UserId};
use crate::http::responses::ChannelBody;

/// The `source` of every event on the bus.
pub const SOURCE: &str = "contact-channels";

/// The kinds of event, by their `detail-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // Each variant is the detail-type its `as_str` names.
pub enum EventType {
    Created,
    Updated,
    Verified,
    Unverified,
    PrimaryChanged,
    Deleted,
    VerificationSent,
    VerificationFailed,
}

impl EventType {
    /// Every type, in catalogue order.
    pub const ALL: [EventType; 8] = [
        EventType::Created,
        EventType::Updated,
        EventType::Verified,
        EventType::Unverified,
        EventType::PrimaryChanged,
        EventType::Deleted,
        EventType::VerificationSent,
        EventType::VerificationFailed,
    ];

    /// The `detail-type` (and `detail.type`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "contact_channel.created",
            EventType::Updated => "contact_channel.updated",
            EventType::Verified => "contact_channel.verified",
            EventType::Unverified => "contact_channel.unverified",
            EventType::PrimaryChanged => "contact_channel.primary_changed",
            EventType::Deleted => "contact_channel.deleted",
            EventType::VerificationSent => "verification.sent",
            EventType::VerificationFailed => "verification.failed",
        }
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Where and when the write happened: the same for every event of one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Identifies the committed write for good: the stream record's sequence number (the same
    /// on every redelivery), or the local server's commit number. Seeds `event_id`.
    pub id: String,
    /// When it was committed, ms since the epoch.
    pub at_millis: i64,
    /// `MAX_CODE_ATTEMPTS`: when a code is burned (`verification.failed`, status `failed`).
    pub max_attempts: u32,
}

impl Commit {
    /// A stable id for the event of `kind` about `subject` in this commit (UUID-shaped hex of
    /// a SHA-256), the consumers' de-duplication key.
    fn event_id(&self, kind: EventType, subject: &str) -> String {
        let hash = Sha256::digest(format!("{}\n{}\n{}", self.id, subject, kind.as_str()));
        let h = hex::encode(&hash[..16]);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

/// Values before the change, for the fields it changed.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Previous {
    /// The address before a value change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `used_for_auth` before it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_for_auth: Option<bool>,
    /// `is_verified` before it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_verified: Option<bool>,
    /// The primary before a primary change: `Some(None)` (JSON `null`) when there was none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_contact_channel_id: Option<Option<String>>,
}

impl Previous {
    fn is_empty(&self) -> bool {
        *self == Previous::default()
    }
}

/// What a `verification.*` event says of the code or link: never the code, token or hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerificationFacts {
    /// `email_link` or `email_code`.
    pub strategy: Strategy,
    /// When it stops (or stopped) working.
    pub expires_at_millis: i64,
    /// Wrong guesses so far.
    pub attempts: u32,
}

/// The `detail` of an event.
#[derive(Debug, Serialize)]
pub struct Detail {
    /// Stable across redelivery: de-duplicate on it.
    pub event_id: String,
    /// The detail-type again, so a stored or forwarded detail says what it is.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The user.
    pub user_id: String,
    /// The channel the event is about; for `primary_changed` the new primary (`null`: none).
    pub contact_channel_id: Option<String>,
    /// When the change was committed, ms since the epoch.
    pub occurred_at_millis: i64,
    /// The channel after the change in its public JSON shape (docs/api.md §3); for `deleted`, as it
    /// was last. Absent on `primary_changed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<ChannelBody>,
    /// `updated`: the public fields that changed (`value`, `used_for_auth`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed_fields: Vec<&'static str>,
    /// The values before the change, where they changed.
    #[serde(skip_serializing_if = "Previous::is_empty")]
    pub previous: Previous,
    /// `verification.sent` / `verification.failed`: the code or link concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationFacts>,
}

/// One event: its type (the bus's `detail-type`) and its detail.
#[derive(Debug, Serialize)]
pub struct Event {
    /// `detail-type`.
    pub detail_type: EventType,
    /// `detail`.
    pub detail: Detail,
}

impl Event {
    fn about(kind: EventType, commit: &Commit, user: &UserId, channel: Option<String>) -> Self {
        let subject = format!("{user}/{}", channel.as_deref().unwrap_or("-"));
        Event {
            detail_type: kind,
            detail: Detail {
                event_id: commit.event_id(kind, &subject),
                kind,
                user_id: user.as_str().to_owned(),
                contact_channel_id: channel,
                occurred_at_millis: commit.at_millis,
                channel: None,
                changed_fields: Vec::new(),
                previous: Previous::default(),
                verification: None,
            },
        }
    }

    /// The detail as the JSON text the bus carries.
    pub fn detail_json(&self) -> String {
        // A struct of strings, numbers and bools always serializes.
        serde_json::to_string(&self.detail).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// One item a committed write changed, before and after: what a DynamoDB stream record or the
/// embedded store's report says, and what events are made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// A channel item; `is_primary` as it stood before and after the write.
    Channel {
        /// As it was (None: created).
        before: Option<Box<StoredChannel>>,
        /// As it is (None: deleted).
        after: Option<Box<StoredChannel>>,
    },
    /// The user's primary marker.
    Primary {
        /// The user.
        user: UserId,
        /// The primary before.
        before: Option<ChannelId>,
        /// The primary after.
        after: Option<ChannelId>,
    },
}

impl Written {
    /// The events of this write: [`channel_events`] or [`primary_events`].
    pub fn events(&self, commit: &Commit) -> Vec<Event> {
        match self {
            Written::Channel { before, after } => {
                channel_events(before.as_deref(), after.as_deref(), commit)
            }
            Written::Primary {
                user,
                before,
                after,
            } => primary_events(user, *before, *after, commit),
        }
    }
}

/// The events of one committed write of a channel item: `before`/`after` are the item as it
/// was and as it is (None: absent). Primary changes are [`primary_events`]': a change of
/// `is_primary` alone (a promotion, or the demotion that goes with it) is no event here.
pub fn channel_events(
    before: Option<&StoredChannel>,
    after: Option<&StoredChannel>,
    commit: &Commit,
) -> Vec<Event> {
    let Some(subject) = after.or(before) else {
        return Vec::new();
    };
    let user = &subject.record.user_id;
    let id = subject.record.id.to_string();
    let render = |c: &StoredChannel| ChannelBody::render(c, commit.at_millis, commit.max_attempts);
    let event = |kind: EventType, shown: &StoredChannel| {
        let mut e = Event::about(kind, commit, user, Some(id.clone()));
        e.detail.channel = Some(render(shown));
        e
    };
    let (before, after) = match (before, after) {
        (None, Some(after)) => return vec![event(EventType::Created, after)],
        (Some(before), None) => return vec![event(EventType::Deleted, before)],
        (Some(before), Some(after)) => (&before.record, after),
        (None, None) => return Vec::new(),
    };
    let now = &after.record;
    let mut events = Vec::new();

    // Built only when a field changed: most writes (a send, an attempt) change none, and an
    // event costs its id's hash and the channel's rendering.
    let value_changed = before.value != now.value;
    let auth_changed = before.used_for_auth != now.used_for_auth;
    if value_changed || auth_changed {
        let mut updated = event(EventType::Updated, after);
        if value_changed {
            updated.detail.changed_fields.push("value");
            updated.detail.previous.value = Some(before.value.as_str().to_owned());
        }
        if auth_changed {
            updated.detail.changed_fields.push("used_for_auth");
            updated.detail.previous.used_for_auth = Some(before.used_for_auth);
        }
        events.push(updated);
    }

    if before.is_verified != now.is_verified {
        let kind = if now.is_verified {
            EventType::Verified
        } else {
            EventType::Unverified
        };
        let mut e = event(kind, after);
        e.detail.previous.is_verified = Some(before.is_verified);
        events.push(e);
    }

    if let Some(v) = &now.verification {
        let facts = VerificationFacts {
            strategy: v.strategy,
            expires_at_millis: v.expires_at_millis,
            attempts: v.attempts,
        };
        let same_code = before
            .verification
            .as_ref()
            .is_some_and(|b| b.digest.matches(&v.digest));
        // A send stamps `last_sent_at` forward; the compensation of a refused mail puts it
        // back, which is no send.
        let sent = !same_code && now.last_sent_at_millis > before.last_sent_at_millis;
        let burned = same_code
            && before
                .verification
                .as_ref()
                .is_some_and(|b| b.attempts < commit.max_attempts)
            && v.attempts >= commit.max_attempts;
        let kind = match (sent, burned) {
            (true, _) => Some(EventType::VerificationSent),
            (false, true) => Some(EventType::VerificationFailed),
            (false, false) => None,
        };
        if let Some(kind) = kind {
            let mut e = event(kind, after);
            e.detail.verification = Some(facts);
            events.push(e);
        }
    }
    events
}

/// The events of one committed write of a user's primary marker (the meta item's `primary`):
/// `contact_channel.primary_changed` when it moved, none otherwise.
pub fn primary_events(
    user: &UserId,
    before: Option<ChannelId>,
    after: Option<ChannelId>,
    commit: &Commit,
) -> Vec<Event> {
    if before == after {
        return Vec::new();
    }
    let mut e = Event::about(
        EventType::PrimaryChanged,
        commit,
        user,
        after.map(|id| id.to_string()),
    );
    e.detail.previous.primary_contact_channel_id = Some(before.map(|id| id.to_string()));
    vec![e]
}

#[cfg(test)]
mod tests;
