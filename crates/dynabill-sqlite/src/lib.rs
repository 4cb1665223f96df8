//! dynabill-sqlite: the embedded SQLite backend.
//!
//! One writer connection (SQLite serialises writes anyway) and a pool of readers,
//! WAL with `synchronous=NORMAL`, a generous `busy_timeout`, and `BEGIN IMMEDIATE`
//! for write transactions, so that a second process on the same file (a bill run
//! beside `serve`) queues for the lock instead of failing.

mod accounts;
mod billing;
mod group;
mod idempotency;
mod items;
mod one_time;
mod plans;
mod tenants;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use dynabill_app::store::{Store, StoreError, StoreResult};
use dynabill_sql::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a writer waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request waits for a free connection before the store reports itself unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Creates, committed in groups through `writer`.
    group: group::GroupWriter,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at a `sqlite:` URL. The schema is
    /// not touched: call [`Store::migrate`].
    pub async fn connect(url: &str) -> StoreResult<SqliteStore> {
        let base = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("bad SQLite URL: {e}")))?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        // No ping before each acquire: a local file does not drop connections, and the
        // ping is a round trip to the connection's worker thread on every query.
        let writer = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(unavailable)?;
        // An in-memory database lives in its one connection: readers must share it.
        let reader = if in_memory {
            writer.clone()
        } else {
            let readers = std::thread::available_parallelism().map_or(4, |n| n.get() * 2) as u32;
            SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(readers)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(base.read_only(true))
                .await
                .map_err(unavailable)?
        };
        let group = group::GroupWriter::start(writer.clone());
        Ok(SqliteStore {
            writer,
            reader,
            group,
        })
    }

    /// A write transaction that holds the database's write lock from its first statement.
    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, Sqlite>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_error)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.writer).await.map_err(|e| {
            StoreError::Other(anyhow::Error::new(e).context("migrating the SQLite database"))
        })
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Translates a database error nobody expected into the store's terms.
pub(crate) fn db_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => unavailable(e),
        sqlx::Error::Database(db) if db.message().contains("database is locked") => unavailable(e),
        _ => StoreError::Other(anyhow::Error::new(e)),
    }
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

pub(crate) fn push_value(qb: &mut QueryBuilder<Sqlite>, value: Value) {
    match value {
        Value::Text(s) => qb.push_bind(s),
        Value::OptText(s) => qb.push_bind(s),
        Value::Int(i) => qb.push_bind(i),
        Value::OptInt(i) => qb.push_bind(i),
        Value::Bool(b) => qb.push_bind(b),
        Value::OptBool(b) => qb.push_bind(b),
    };
}

/// Binds one value inside a `push_values` row.
pub(crate) fn push_separated_value(
    row: &mut sqlx::query_builder::Separated<'_, Sqlite, &'static str>,
    value: Value,
) {
    match value {
        Value::Text(s) => row.push_bind(s),
        Value::OptText(s) => row.push_bind(s),
        Value::Int(i) => row.push_bind(i),
        Value::OptInt(i) => row.push_bind(i),
        Value::Bool(b) => row.push_bind(b),
        Value::OptBool(b) => row.push_bind(b),
    };
}

/// Appends `, c1, c2, ...` (column names).
pub(crate) fn push_columns(qb: &mut QueryBuilder<Sqlite>, columns: &[&str]) {
    for column in columns {
        qb.push(", ").push(*column);
    }
}

/// Appends `, c1 = ?, c2 = ?` for paired columns and values.
pub(crate) fn push_assignments(
    qb: &mut QueryBuilder<Sqlite>,
    columns: &[&str],
    values: Vec<Value>,
) {
    for (column, value) in columns.iter().zip(values) {
        qb.push(", ").push(*column).push(" = ");
        push_value(qb, value);
    }
}

/// Appends `, ?` for each value.
pub(crate) fn push_values(qb: &mut QueryBuilder<Sqlite>, values: Vec<Value>) {
    for value in values {
        qb.push(", ");
        push_value(qb, value);
    }
}
