//! The stored shape of a channel and the pure rules over it: verification status, link
//! redemption, the resend window. Stores apply these rules atomically; they never re-implement them.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::domain::{ChannelId, EmailAddress, Strategy, UserId};

/// A keyed hash (HMAC-SHA-256) of a code or token: the only form in which secrets are stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Digest(#[serde(with = "hex_bytes")] [u8; 32]);

impl Digest {
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

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Digest([redacted])")
    }
}

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
    pub strategy: Strategy,
    pub digest: Digest,
    pub expires_at_millis: i64,
    /// Wrong guesses so far (codes only).
    pub attempts: u32,
    /// True once this code or link verified the channel; it then works no more.
    pub used: bool,
}

/// A channel as stored. `version` increases with every write, for optimistic concurrency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRecord {
    pub id: ChannelId,
    pub user_id: UserId,
    pub value: EmailAddress,
    pub used_for_auth: bool,
    pub is_verified: bool,
    pub created_at_millis: i64,
    pub verification: Option<Verification>,
    /// When a verification mail was last accepted for this channel (cooldown).
    pub last_sent_at_millis: Option<i64>,
    pub version: u64,
}

/// A channel with what is stored beside it: whether it is its user's primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChannel {
    pub record: ChannelRecord,
    pub is_primary: bool,
}

/// What `verification.status` says (API.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationStatus {
    Unverified,
    Pending,
    Expired,
    Failed,
    Verified,
}

impl VerificationStatus {
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

impl StoredChannel {
    /// The channel object of API.md §3.
    pub fn to_json(&self, now: i64, max_attempts: u32) -> Value {
        let r = &self.record;
        let v = r.verification.as_ref();
        json!({
            "id": r.id.to_string(),
            "user_id": r.user_id.as_str(),
            "type": "email",
            "value": r.value.as_str(),
            "is_primary": self.is_primary,
            "is_verified": r.is_verified,
            "used_for_auth": r.used_for_auth,
            "created_at_millis": r.created_at_millis,
            "verification": {
                "status": r.status(now, max_attempts).as_str(),
                "strategy": v.map(|v| v.strategy.as_str()),
                "attempts": v.map_or(0, |v| v.attempts),
                "expires_at_millis": v.map(|v| v.expires_at_millis),
            },
        })
    }
}

/// Why a link token was refused (API.md §5.7); not-found is one answer whatever the cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    NotFound,
    Expired,
    AlreadyUsed,
}

/// Decides whether `digest` is the live link of `channel` at `now`.
pub fn check_link(
    channel: Option<&ChannelRecord>,
    digest: &Digest,
    now: i64,
) -> Result<(), LinkRefusal> {
    let v = channel
        .and_then(|c| c.verification.as_ref().map(|v| (c, v)))
        .filter(|(_, v)| v.strategy == Strategy::EmailLink && v.digest.matches(digest));
    let Some((channel, v)) = v else {
        return Err(LinkRefusal::NotFound);
    };
    if v.used && !channel.is_verified {
        return Err(LinkRefusal::NotFound);
    }
    if now >= v.expires_at_millis {
        return Err(LinkRefusal::Expired);
    }
    if v.used {
        return Err(LinkRefusal::AlreadyUsed);
    }
    Ok(())
}

/// The record after its live link verified it.
pub fn redeemed(channel: &ChannelRecord) -> ChannelRecord {
    let mut next = channel.clone();
    next.is_verified = true;
    if let Some(v) = next.verification.as_mut() {
        v.used = true;
    }
    next
}

pub const DAY_MILLIS: i64 = 86_400_000;

/// Whole seconds to wait, rounded up, for a wait in milliseconds.
pub fn ceil_seconds(millis: i64) -> u64 {
    u64::try_from(millis.max(0))
        .unwrap_or(0)
        .div_ceil(1000)
        .max(1)
}

/// Admits one more send to an address whose log of send times is `log`, or says how long
/// to wait. The log is kept to the sends of the last 24 h, oldest first.
pub fn admit_send(log: &[i64], now: i64, cap: u32) -> Result<Vec<i64>, u64> {
    let mut recent: Vec<i64> = log
        .iter()
        .copied()
        .filter(|t| *t > now - DAY_MILLIS)
        .collect();
    recent.sort_unstable();
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    if recent.len() >= cap {
        // The send that must leave the window before one more is allowed.
        let blocking = recent[recent.len() - cap];
        return Err(ceil_seconds(blocking + DAY_MILLIS - now));
    }
    recent.push(now);
    Ok(recent)
}

/// Wait in whole seconds that the cap imposes on `log` now, if any.
pub fn daily_wait(log: &[i64], now: i64, cap: u32) -> Option<u64> {
    admit_send(log, now, cap).err()
}

/// Takes back one send at `at` (the mail service refused it).
pub fn release_send(log: &[i64], at: i64) -> Vec<i64> {
    let mut out = log.to_vec();
    if let Some(pos) = out.iter().position(|t| *t == at) {
        out.remove(pos);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(verification: Option<Verification>, is_verified: bool) -> ChannelRecord {
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

    fn link(digest: u8, expires: i64, used: bool) -> Verification {
        Verification {
            strategy: Strategy::EmailLink,
            digest: Digest([digest; 32]),
            expires_at_millis: expires,
            attempts: 0,
            used,
        }
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

    #[test]
    fn link_checks_follow_the_contract_order() {
        let d = Digest([1; 32]);
        assert_eq!(check_link(None, &d, 0), Err(LinkRefusal::NotFound));
        let live = record(Some(link(1, 100, false)), false);
        assert_eq!(check_link(Some(&live), &d, 99), Ok(()));
        assert_eq!(check_link(Some(&live), &d, 100), Err(LinkRefusal::Expired));
        assert_eq!(
            check_link(Some(&live), &Digest([2; 32]), 0),
            Err(LinkRefusal::NotFound)
        );
        let used = redeemed(&live);
        assert_eq!(
            check_link(Some(&used), &d, 50),
            Err(LinkRefusal::AlreadyUsed)
        );
        assert_eq!(check_link(Some(&used), &d, 150), Err(LinkRefusal::Expired));
        let mut code = live.clone();
        if let Some(v) = code.verification.as_mut() {
            v.strategy = Strategy::EmailCode;
        }
        assert_eq!(check_link(Some(&code), &d, 0), Err(LinkRefusal::NotFound));
    }

    #[test]
    fn daily_cap_counts_a_sliding_24_hour_window() {
        let now = 10 * DAY_MILLIS;
        let mut log = Vec::new();
        for i in 0..3 {
            log = admit_send(&log, now + i, 3).unwrap();
        }
        assert_eq!(
            admit_send(&log, now + 10, 3),
            Err(ceil_seconds(DAY_MILLIS - 10))
        );
        // Once the first send is 24 h old, one more is allowed.
        assert!(admit_send(&log, now + DAY_MILLIS, 3).is_ok());
        assert_eq!(release_send(&log, now + 1), vec![now, now + 2]);
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(ceil_seconds(1), 1);
        assert_eq!(ceil_seconds(1000), 1);
        assert_eq!(ceil_seconds(1001), 2);
    }
}
