//! The per-address daily cap on verification mails: a sliding 24-hour window of send times.

/// One day, the window of the daily cap.
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
