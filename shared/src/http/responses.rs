//! The response bodies of the API (API.md §3, §5), rendered from domain results.

use serde::Serialize;

use crate::domain::channel::{StoredChannel, VerificationStatus};
use crate::domain::{ChannelType, Strategy};
use crate::service::Sent;

/// The contact channel object (API.md §3).
#[derive(Debug, Serialize)]
pub struct ChannelBody {
    /// Channel id (UUID).
    pub id: String,
    /// The app's user id.
    pub user_id: String,
    /// Always `email`.
    #[serde(rename = "type")]
    pub kind: ChannelType,
    /// The normalized address.
    pub value: String,
    /// Whether it is the user's primary channel.
    pub is_primary: bool,
    /// Whether ownership was proven (or set by a server).
    pub is_verified: bool,
    /// Whether the address signs the user in.
    pub used_for_auth: bool,
    /// Creation time, ms since the epoch.
    pub created_at_millis: i64,
    /// The outstanding or last code or link.
    pub verification: VerificationBody,
}

/// `verification` of the channel object.
#[derive(Debug, Serialize)]
pub struct VerificationBody {
    /// `unverified`, `pending`, `expired`, `failed` or `verified`.
    pub status: VerificationStatus,
    /// Strategy of the outstanding or last code or link.
    pub strategy: Option<Strategy>,
    /// Wrong guesses so far.
    pub attempts: u32,
    /// When the outstanding or last code or link expires.
    pub expires_at_millis: Option<i64>,
}

impl ChannelBody {
    /// Renders a channel as seen at `now`, with codes burned after `max_attempts` guesses.
    pub fn render(channel: &StoredChannel, now: i64, max_attempts: u32) -> Self {
        let r = &channel.record;
        let v = r.verification.as_ref();
        ChannelBody {
            id: r.id.to_string(),
            user_id: r.user_id.as_str().to_owned(),
            kind: ChannelType::Email,
            value: r.value.as_str().to_owned(),
            is_primary: channel.is_primary,
            is_verified: r.is_verified,
            used_for_auth: r.used_for_auth,
            created_at_millis: r.created_at_millis,
            verification: VerificationBody {
                status: r.status(now, max_attempts),
                strategy: v.map(|v| v.strategy),
                attempts: v.map_or(0, |v| v.attempts),
                expires_at_millis: v.map(|v| v.expires_at_millis),
            },
        }
    }
}

/// `GET /contact-channels`.
#[derive(Debug, Serialize)]
pub struct ListBody {
    /// The channels, oldest first.
    pub items: Vec<ChannelBody>,
    /// Always false: a user has at most `MAX_CHANNELS_PER_USER` channels.
    pub is_paginated: bool,
}

/// `{"success": true}` (delete, verify).
#[derive(Debug, Serialize)]
pub struct SuccessBody {
    /// Always true.
    pub success: bool,
}

/// The answer of an accepted send.
#[derive(Debug, Serialize)]
pub struct SentBody {
    /// Always true.
    pub success: bool,
    /// The strategy of the mail sent.
    pub strategy: Strategy,
    /// When the code or link stops working.
    pub expires_at_millis: i64,
}

impl From<Sent> for SentBody {
    fn from(s: Sent) -> Self {
        SentBody {
            success: true,
            strategy: s.strategy,
            expires_at_millis: s.expires_at_millis,
        }
    }
}

/// `POST /contact-channels/verify/check-code`.
#[derive(Debug, Serialize)]
pub struct CheckBody {
    /// Always true (an invalid token is an error).
    pub is_code_valid: bool,
}
