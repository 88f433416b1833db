//! The response bodies of the API (docs/api.md §3, §5), rendered from domain results.

use serde::Serialize;

use crate::domain::channel::{StoredChannel, VerificationStatus};
use crate::domain::{ChannelType, Strategy};
use crate::error::ErrorDetails;
use crate::service::Sent;

// Every body here is serialize-only: `deny_unknown_fields` changes nothing at run time but
// closes its OpenAPI schema (`additionalProperties: false`), so a field the document does not
// name fails the fuzzer's response check.

/// A contact channel: one email address of a user.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChannelBody {
    /// Channel id (UUID).
    #[cfg_attr(feature = "openapi", schema(format = Uuid))]
    pub id: String,
    /// The app's user id (never `me`).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub user_id: String,
    /// Always `email`.
    #[serde(rename = "type")]
    pub kind: ChannelType,
    /// The address as stored: trimmed, lower-cased, its domain in ASCII (punycode) form.
    #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254))]
    pub value: String,
    /// Whether it is the user's primary channel.
    pub is_primary: bool,
    /// Whether ownership was proven (or set by a server); true exactly when
    /// `verification.status` is `verified`.
    pub is_verified: bool,
    /// Whether the address signs the user in.
    pub used_for_auth: bool,
    /// Creation time, ms since the epoch.
    pub created_at_millis: i64,
    /// The outstanding or last code or link.
    pub verification: VerificationBody,
}

/// The state of the channel's verification: its outstanding or last code or link.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VerificationBody {
    /// `unverified`, `pending`, `expired`, `failed` or `verified`.
    pub status: VerificationStatus,
    /// Strategy of the outstanding or last code or link; `null` when there is none.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub strategy: Option<Strategy>,
    /// Wrong guesses at the outstanding or last code so far.
    pub attempts: u32,
    /// When the outstanding or last code or link stops working, ms since the epoch; `null`
    /// when there is none.
    #[cfg_attr(feature = "openapi", schema(required = true))]
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

/// The answer of `GET /api/v1/contact-channels`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ListBody {
    /// The channels, oldest first.
    pub items: Vec<ChannelBody>,
    /// Always false: a user has at most `MAX_CHANNELS_PER_USER` channels.
    pub is_paginated: bool,
}

/// `{"success": true}`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SuccessBody {
    /// Always true.
    pub success: bool,
}

/// The answer of an accepted send.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
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

/// The answer of `POST /api/v1/contact-channels/verify/check-code`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    /// Always true (an invalid token is an error).
    pub is_code_valid: bool,
}

/// The body of every error; its `code` is also sent as the `x-known-error` header.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// What went wrong, in UPPER_SNAKE_CASE: the stable value to branch on.
    pub code: &'static str,
    /// A sentence for a person (it names the offending field of a `SCHEMA_ERROR`); its wording
    /// may change.
    pub error: String,
    /// Present only with the codes that carry more to act on.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub details: Option<ErrorDetails>,
}
