//! Optimistic writes that lost a race are read again and retried, a bounded number of times,
//! with jitter so that racers spread out; and writes that must not be lost (a rollback) are
//! retried after store failures too, with doubling waits, within a time budget.

use std::fmt::Display;
use std::time::{Duration, Instant};

use crate::domain::channel::StoredChannel;
use crate::error::ApiError;
use crate::store::WriteError;

/// How often a write that lost a race re-reads and tries again before giving up with a 500.
const MAX_RETRIES: u32 = 64;

/// Waits a little before retrying a lost race, with jitter so racers spread out.
pub(crate) async fn backoff(attempt: u32) {
    let mut b = [0u8; 1];
    let jitter = getrandom::fill(&mut b)
        .map(|_| u64::from(b[0] % 8))
        .unwrap_or(3);
    let base = u64::from(attempt.min(5));
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

/// Runs an optimistic read-check-write step until it stops losing races: the step answers
/// `Ok(None)` when its write was stale, and is then run again (reading afresh) after a
/// jittered wait, at most `MAX_RETRIES` times.
pub(crate) async fn retrying<T, Fut>(mut step: impl FnMut() -> Fut) -> Result<T, ApiError>
where
    Fut: Future<Output = Result<Option<T>, ApiError>>,
{
    for attempt in 0..MAX_RETRIES {
        if let Some(done) = step().await? {
            return Ok(done);
        }
        crate::telemetry::count(crate::telemetry::Metric::ConflictRetries);
        backoff(attempt).await;
    }
    Err(WriteError::Stale.into())
}

/// A write's result as `retrying` steps use it: `None` if it was stale (try again).
pub(crate) fn settled<T>(result: Result<T, WriteError>) -> Result<Option<T>, ApiError> {
    match result {
        Ok(written) => Ok(Some(written)),
        Err(WriteError::Stale) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The channel a create or update wrote (a store answers `None` only after a delete).
pub(crate) fn written(stored: Option<StoredChannel>) -> Result<StoredChannel, ApiError> {
    stored.ok_or_else(|| {
        tracing::error!("the store wrote a channel but returned none");
        ApiError::Internal
    })
}

/// How hard to press on with a write that must not be lost when the store fails.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Persistence {
    /// Runs of the operation in all, the first included.
    pub attempts: u32,
    /// The wait after the first failure; it doubles after each further one.
    pub first_wait: Duration,
    /// Everything (runs and waits) ends within this; a run still going then is abandoned.
    pub budget: Duration,
}

/// Runs `op` until it succeeds, again after each failure that `transient` accepts (throttling,
/// a dropped connection: the store said nothing about the write itself), with doubling waits,
/// as long as `policy` allows. `None` when it gave up; each failure is logged as `what`.
pub(crate) async fn persisting<T, E: Display, Fut>(
    policy: Persistence,
    what: &str,
    transient: impl Fn(&E) -> bool,
    mut op: impl FnMut() -> Fut,
) -> Option<T>
where
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let mut wait = policy.first_wait;
    for attempt in 1..=policy.attempts {
        let left = policy.budget.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, op()).await {
            Ok(Ok(done)) => return Some(done),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, attempt, "{what} failed");
                if !transient(&e) {
                    return None;
                }
            }
            Err(_) => {
                tracing::warn!(attempt, "{what} ran out of time");
                return None;
            }
        }
        if attempt == policy.attempts || started.elapsed() + wait >= policy.budget {
            return None;
        }
        tokio::time::sleep(wait).await;
        wait = wait.saturating_mul(2);
    }
    None
}
