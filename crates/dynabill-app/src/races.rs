//! Optimistic concurrency: a write reads what it changes, decides, and writes only
//! if nothing changed meanwhile (the record's `version`); a lost race reads again.

use std::future::Future;
use std::time::Duration;

use crate::error::AppError;
use crate::store::{StoreError, StoreResult};

/// Writes retry this many times when a concurrent writer wins a race (an `ExtID`
/// inserted meanwhile, or a record changed since it was read).
pub(crate) const WRITE_RACE_RETRIES: u32 = 24;

/// What one attempt at a conditional write came to.
pub(crate) enum Attempt<T> {
    /// Written, or nothing left to write: the answer.
    Done(T),
    /// Another writer got there first: read again and decide again.
    Lost,
}

/// Runs `attempt` until it is done: each attempt reads, decides and writes at the
/// versions it read; after a lost race it waits a little (see [`backoff`]) and
/// runs again. After [`WRITE_RACE_RETRIES`] lost races the write is reported
/// unavailable, naming `what` is being changed.
pub(crate) async fn until_done<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, AppError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>, AppError>>,
{
    for n in 0..WRITE_RACE_RETRIES {
        backoff(n).await;
        if let Attempt::Done(done) = attempt().await? {
            return Ok(done);
        }
    }
    Err(AppError::Unavailable(format!(
        "the {what} is being changed concurrently; retry"
    )))
}

/// The outcome of a conditional store write: `Stale` is a lost race.
pub(crate) fn settle<T>(result: StoreResult<T>) -> Result<Attempt<T>, AppError> {
    match result {
        Ok(done) => Ok(Attempt::Done(done)),
        Err(StoreError::Stale) => Ok(Attempt::Lost),
        Err(e) => Err(e.into()),
    }
}

/// The outcome of a create-or-update's write. A taken `ExtID` is a lost race when
/// the call named no ID (a concurrent call created that record: the next attempt
/// updates it), and `taken()` when it named one (the record cannot take that `ExtID`).
pub(crate) fn settle_upsert<T>(
    result: StoreResult<T>,
    named_by_id: bool,
    taken: impl FnOnce() -> AppError,
) -> Result<Attempt<T>, AppError> {
    match result {
        Err(StoreError::ExtIdTaken) if named_by_id => Err(taken()),
        Err(StoreError::ExtIdTaken) => Ok(Attempt::Lost),
        result => settle(result),
    }
}

/// Waits a little before retrying a lost write race: a random delay that grows
/// with the attempt, so that racers spread out instead of colliding again.
pub(crate) async fn backoff(attempt: u32) {
    if attempt == 0 {
        return;
    }
    let mut bytes = [0u8; 2];
    let _ = getrandom::fill(&mut bytes);
    let ceiling_us = 100u64 << attempt.min(7);
    let delay = u64::from(u16::from_le_bytes(bytes)) % ceiling_us;
    tokio::time::sleep(Duration::from_micros(delay)).await;
}
