//! Group commit for independent one-statement writes (creates).
//!
//! SQLite has one writer, and a commit costs more than a small insert: it appends
//! every page the transaction touched to the WAL. Writes that arrive while another
//! group is being written wait in a queue; the next group runs them all in one
//! transaction and commits once. Each write is still its own statement: SQLite
//! undoes a statement that fails on a constraint (a taken `ExtID`) and leaves the
//! transaction and the other writes as they were. A caller hears its result only
//! after the commit, so what it is told has been written is on disk (as far as
//! `synchronous=NORMAL` promises).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use dynabill_sql::PoolWaits;
use sqlx::{Connection, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

/// Writes run together at most.
const MAX_GROUP: usize = 128;

type BoxFuture<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// Tells a write's caller its outcome, given why the group was not written (if it was not).
type Deliver = Box<dyn FnOnce(Option<&str>) + Send>;

/// What a write hands back once it ran: whether it failed beyond its statement,
/// and how to tell its caller the outcome once the group's commit is known.
struct Ran {
    failed_badly: bool,
    deliver: Deliver,
}

/// A queued write: given the group's connection it runs, given `Err(why)` it is
/// refused without running.
type Job =
    Box<dyn for<'c> FnOnce(Result<&'c mut SqliteConnection, &'c str>) -> BoxFuture<'c, Ran> + Send>;

/// The queue in front of the writer connection.
#[derive(Clone)]
pub(crate) struct GroupWriter {
    queue: mpsc::UnboundedSender<Job>,
}

impl GroupWriter {
    /// Starts the task that writes queued groups through `writer`. It ends when
    /// every `GroupWriter` is dropped.
    pub(crate) fn start(writer: SqlitePool, waits: Arc<PoolWaits>) -> GroupWriter {
        let (queue, jobs) = mpsc::unbounded_channel();
        tokio::spawn(write_groups(writer, jobs, waits));
        GroupWriter { queue }
    }

    /// Runs `write` (one statement) in the next group, and answers once the group
    /// committed: the write's own result, or the commit's failure.
    pub(crate) async fn write<T, W>(&self, write: W) -> Result<T, sqlx::Error>
    where
        T: Send + 'static,
        W: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>
            + Send
            + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = match conn {
                    Ok(conn) => write(conn).await,
                    Err(why) => Err(not_written(why)),
                };
                let failed_badly = matches!(&result, Err(e) if !is_constraint(e));
                Ran {
                    failed_badly,
                    deliver: Box::new(move |group_failed: Option<&str>| {
                        let outcome = match group_failed {
                            Some(why) => Err(not_written(why)),
                            None => result,
                        };
                        let _ = answer.send(outcome);
                    }),
                }
            })
        });
        self.queue.send(job).map_err(|_| sqlx::Error::PoolClosed)?;
        answered.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

/// The error of a write that was not written because of its group: an I/O error,
/// which the store reports as unavailable (nothing changed; try again).
fn not_written(why: &str) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(format!("not written: {why}")))
}

/// A failure SQLite confines to its statement.
fn is_constraint(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation()
        || db.is_foreign_key_violation()
        || db.is_check_violation())
}

async fn write_groups(
    writer: SqlitePool,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    waits: Arc<PoolWaits>,
) {
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        write_group(&writer, group, &waits).await;
    }
}

async fn write_group(writer: &SqlitePool, group: Vec<Job>, waits: &PoolWaits) {
    let mut conn = match waits.timed(writer.acquire()).await {
        Ok(conn) => conn,
        Err(e) => return refuse(group, &e.to_string()).await,
    };
    let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => return refuse(group, &e.to_string()).await,
    };
    let mut ran = Vec::with_capacity(group.len());
    let mut jobs = group.into_iter();
    for job in jobs.by_ref() {
        let outcome = job(Ok(&mut tx)).await;
        let stop = outcome.failed_badly;
        ran.push(outcome);
        // Anything but a constraint may have ended the transaction: none of the
        // group is written, and the writes not yet run are refused with it.
        if stop {
            break;
        }
    }
    let rest: Vec<Job> = jobs.collect();
    let stopped = ran.last().is_some_and(|r| r.failed_badly);
    let failure = if stopped {
        let _ = tx.rollback().await;
        Some("a write of the group failed; nothing of the group was written".to_owned())
    } else {
        tx.commit().await.err().map(|e| e.to_string())
    };
    let count = ran.len();
    for (n, outcome) in ran.into_iter().enumerate() {
        // The write that failed hears its own error; the others why they were undone.
        let own = stopped && n + 1 == count;
        (outcome.deliver)(if own { None } else { failure.as_deref() });
    }
    refuse(
        rest,
        "a write of the group failed; nothing of the group was written",
    )
    .await;
}

/// Tells every caller of `group`, without running its write, that it was not written.
async fn refuse(group: Vec<Job>, why: &str) {
    for job in group {
        let outcome = job(Err(why)).await;
        (outcome.deliver)(Some(why));
    }
}
