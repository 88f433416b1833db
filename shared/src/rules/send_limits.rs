//! The per-address limits on verification mails: a cooldown after each send and a daily cap
//! over a sliding 24-hour window of send times. Both protect the recipient's mailbox, so both
//! count sends to the address from every channel and every user.

/// One day, the window of the daily cap.
pub const DAY_MILLIS: i64 = 86_400_000;

/// Whole seconds to wait, rounded up, for a wait in milliseconds.
pub fn ceil_seconds(millis: i64) -> u64 {
    u64::try_from(millis.max(0))
        .unwrap_or(0)
        .div_ceil(1000)
        .max(1)
}

/// The two limits of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendLimits {
    /// `MAX_SENDS_PER_DAY`.
    pub cap: u32,
    /// `SEND_COOLDOWN_SECONDS`, in milliseconds (0 = none).
    pub cooldown_millis: i64,
}

/// Admits one more send to an address whose log of send times is `log`, or says how long to
/// wait: the longer wait when both limits apply. The log is kept to the sends of the last
/// 24 h, oldest first.
pub fn admit_send(log: &[i64], now: i64, limits: SendLimits) -> Result<Vec<i64>, u64> {
    let mut recent: Vec<i64> = log
        .iter()
        .copied()
        .filter(|t| *t > now - DAY_MILLIS)
        .collect();
    recent.sort_unstable();
    let cap = usize::try_from(limits.cap).unwrap_or(usize::MAX);
    // The send that must leave the window before one more is allowed.
    let daily = (recent.len() >= cap).then(|| recent[recent.len() - cap] + DAY_MILLIS);
    let cooldown = recent
        .last()
        .map(|last| last.saturating_add(limits.cooldown_millis))
        .filter(|until| now < *until);
    if let Some(until) = daily.max(cooldown) {
        return Err(ceil_seconds(until - now));
    }
    recent.push(now);
    Ok(recent)
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

    const CAP_3: SendLimits = SendLimits {
        cap: 3,
        cooldown_millis: 0,
    };

    #[test]
    fn daily_cap_counts_a_sliding_24_hour_window() {
        let now = 10 * DAY_MILLIS;
        let mut log = Vec::new();
        for i in 0..3 {
            log = admit_send(&log, now + i, CAP_3).unwrap();
        }
        assert_eq!(
            admit_send(&log, now + 10, CAP_3),
            Err(ceil_seconds(DAY_MILLIS - 10))
        );
        // Once the first send is 24 h old, one more is allowed.
        assert!(admit_send(&log, now + DAY_MILLIS, CAP_3).is_ok());
        assert_eq!(release_send(&log, now + 1), vec![now, now + 2]);
    }

    #[test]
    fn the_cooldown_runs_from_the_last_send_and_the_longer_wait_wins() {
        let limits = SendLimits {
            cap: 2,
            cooldown_millis: 30_000,
        };
        let log = admit_send(&[], 1_000, limits).unwrap();
        assert_eq!(admit_send(&log, 1_001, limits), Err(30));
        assert_eq!(admit_send(&log, 21_000, limits), Err(10));
        let log = admit_send(&log, 31_000, limits).unwrap();
        assert_eq!(log, vec![1_000, 31_000]);
        // Both apply: the cap's wait (a day from the first send) is the longer.
        assert_eq!(
            admit_send(&log, 31_500, limits),
            Err(ceil_seconds(1_000 + DAY_MILLIS - 31_500))
        );
        // No cooldown: back-to-back sends are fine.
        let none = SendLimits {
            cooldown_millis: 0,
            ..limits
        };
        assert!(admit_send(&[5], 5, none).is_ok());
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(ceil_seconds(1), 1);
        assert_eq!(ceil_seconds(1000), 1);
        assert_eq!(ceil_seconds(1001), 2);
    }
}
