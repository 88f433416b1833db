//! Optimistic writes that lost a race are read again and retried, a bounded number of times,
//! with jitter so that racers spread out.

use std::time::Duration;

use crate::domain::channel::StoredChannel;
use crate::error::ApiError;
use crate::store::WriteError;

/// How often a write that lost a race re-reads and tries again before giving up with a 500.
const MAX_RETRIES: u32 = 64;

/// Waits a little before retrying a lost race, with jitter so racers spread out.
async fn backoff(attempt: u32) {
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
