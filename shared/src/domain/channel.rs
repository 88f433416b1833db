//! The stored shape of a channel: its record, its outstanding code or link (as a keyed hash
//! only), and the verification status derived from them (docs/api.md §3).

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::domain::{ChannelId, EmailAddress, Strategy, UserId};

/// A keyed hash (HMAC-SHA-256) of a code or token: the only form in which secrets are stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Digest(#[serde(with = "hex_bytes")] [u8; 32]);

impl Digest {
    /// Wraps the 32 bytes of an HMAC-SHA-256.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    /// Constant-time, so the time a guess takes says nothing about how close it was.
    pub fn matches(&self, other: &Digest) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// Hex form, used as a lookup key for link tokens.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

redacted_debug!(Digest);

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let raw = String::deserialize(d)?;
        let bytes = hex::decode(raw).map_err(D::Error::custom)?;
        <[u8; 32]>::try_from(bytes).map_err(|_| D::Error::custom("digest must be 32 bytes"))
    }
}

/// The outstanding (or last) code or link of a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Link or code.
    pub strategy: Strategy,
    /// Its keyed hash.
    pub digest: Digest,
    /// When it stops working.
    pub expires_at_millis: i64,
    /// Wrong guesses so far (codes only).
    pub attempts: u32,
    /// True once this code or link verified the channel; it then works no more.
    pub used: bool,
}

/// A channel as stored. `version` increases with every write, for optimistic concurrency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRecord {
    /// Channel id.
    pub id: ChannelId,
    /// Owner.
    pub user_id: UserId,
    /// The normalized address.
    pub value: EmailAddress,
    /// Whether the address signs the user in.
    pub used_for_auth: bool,
    /// Whether ownership is proven (or was set by a server).
    pub is_verified: bool,
    /// Creation time, ms since the epoch.
    pub created_at_millis: i64,
    /// The outstanding or last code or link.
    // Absent rather than `null` when unset: the embedded store keeps records as JSON, and most
    // channels never had a code (issue 13: the data directory per live channel). Records that
    // hold `null` still read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// When a verification mail was last accepted for this channel. The cooldown is kept per
    /// address in the send log; this tells a send from the rollback of a refused one in the
    /// table's change stream (lifecycle events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent_at_millis: Option<i64>,
    /// Increases with every write.
    pub version: u64,
}

/// A channel with what is stored beside it: whether it is its user's primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChannel {
    /// The channel.
    pub record: ChannelRecord,
    /// Whether it is its user's primary.
    pub is_primary: bool,
}

/// `verification.status`: `verified` exactly when `is_verified`; otherwise `unverified` (no
/// code or link outstanding), `pending`, `expired` or `failed` (its guesses ran out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // The variants are the contract's words.
pub enum VerificationStatus {
    Unverified,
    Pending,
    Expired,
    Failed,
    Verified,
}

impl VerificationStatus {
    /// The wire word.
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationStatus::Unverified => "unverified",
            VerificationStatus::Pending => "pending",
            VerificationStatus::Expired => "expired",
            VerificationStatus::Failed => "failed",
            VerificationStatus::Verified => "verified",
        }
    }
}

impl ChannelRecord {
    /// The hex digest of the channel's link (outstanding or used), by which the link index
    /// finds it; None when its last verification was a code, or there was none.
    pub fn link_digest_hex(&self) -> Option<String> {
        self.verification
            .as_ref()
            .filter(|v| v.strategy == Strategy::EmailLink)
            .map(|v| v.digest.to_hex())
    }

    /// The status at `now`; a code with `max_attempts` wrong guesses is burned (`failed`).
    pub fn status(&self, now: i64, max_attempts: u32) -> VerificationStatus {
        if self.is_verified {
            return VerificationStatus::Verified;
        }
        match &self.verification {
            None => VerificationStatus::Unverified,
            Some(v) if v.attempts >= max_attempts => VerificationStatus::Failed,
            Some(v) if now >= v.expires_at_millis => VerificationStatus::Expired,
            Some(_) => VerificationStatus::Pending,
        }
    }
}

/// Records for the unit tests of the rules.
#[cfg(test)]
pub(crate) mod test_support {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::{ChannelId, EmailAddress, Strategy, UserId};

    pub fn record(verification: Option<Verification>, is_verified: bool) -> ChannelRecord {
        ChannelRecord {
            id: ChannelId::new_random(),
            user_id: UserId::parse("u").unwrap(),
            value: EmailAddress::parse("a@example.com").unwrap(),
            used_for_auth: false,
            is_verified,
            created_at_millis: 0,
            verification,
            last_sent_at_millis: None,
            version: 1,
        }
    }

    pub fn link(digest: u8, expires: i64, used: bool) -> Verification {
        Verification {
            strategy: Strategy::EmailLink,
            digest: Digest([digest; 32]),
            expires_at_millis: expires,
            attempts: 0,
            used,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use test_support::{link, record};

    #[test]
    fn a_record_stores_no_null_fields_and_reads_them_back() {
        let bare = record(None, false);
        let json = serde_json::to_string(&bare).unwrap();
        assert!(!json.contains("null"), "{json}");
        assert_eq!(serde_json::from_str::<ChannelRecord>(&json).unwrap(), bare);
        // As records were written before.
        let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
        old["verification"] = serde_json::Value::Null;
        old["last_sent_at_millis"] = serde_json::Value::Null;
        assert_eq!(serde_json::from_value::<ChannelRecord>(old).unwrap(), bare);
        let mut sent = record(Some(link(1, 100, false)), false);
        sent.last_sent_at_millis = Some(7);
        let json = serde_json::to_string(&sent).unwrap();
        assert_eq!(serde_json::from_str::<ChannelRecord>(&json).unwrap(), sent);
    }

    #[test]
    fn status_failed_wins_over_expired() {
        let mut v = link(1, 100, false);
        v.strategy = Strategy::EmailCode;
        v.attempts = 5;
        assert_eq!(
            record(Some(v.clone()), false).status(200, 5),
            VerificationStatus::Failed
        );
        v.attempts = 4;
        assert_eq!(
            record(Some(v.clone()), false).status(200, 5),
            VerificationStatus::Expired
        );
        assert_eq!(
            record(Some(v), false).status(99, 5),
            VerificationStatus::Pending
        );
        assert_eq!(
            record(None, false).status(0, 5),
            VerificationStatus::Unverified
        );
        assert_eq!(
            record(None, true).status(0, 5),
            VerificationStatus::Verified
        );
    }
}
