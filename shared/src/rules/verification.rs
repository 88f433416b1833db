//! Link redemption (docs/api.md §5.7): whether a token is the live link of its channel, and the
//! record once it verified it. Both stores apply this inside their atomic write.

use crate::domain::Strategy;
use crate::domain::channel::{ChannelRecord, Digest};

/// Why a link token was refused (docs/api.md §5.7); not-found is one answer whatever the cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    /// Unknown, replaced, or no longer the channel's link.
    NotFound,
    /// Past its lifetime.
    Expired,
    /// It already verified its channel.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::channel::test_support::{link, record};

    #[test]
    fn link_checks_follow_the_contract_order() {
        let d = Digest::from_bytes([1; 32]);
        assert_eq!(check_link(None, &d, 0), Err(LinkRefusal::NotFound));
        let live = record(Some(link(1, 100, false)), false);
        assert_eq!(check_link(Some(&live), &d, 99), Ok(()));
        assert_eq!(check_link(Some(&live), &d, 100), Err(LinkRefusal::Expired));
        assert_eq!(
            check_link(Some(&live), &Digest::from_bytes([2; 32]), 0),
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
}
