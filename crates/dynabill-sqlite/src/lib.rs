//! dynabill-sqlite: the embedded SQLite backend.
//!
//! One writer connection (SQLite serialises writes anyway) and a pool of readers,
//! WAL with `synchronous=NORMAL`, a generous `busy_timeout`, and `BEGIN IMMEDIATE`
//! for write transactions, so that a second process on the same file (a bill run
//! beside `serve`) queues for the lock instead of failing. The queries are
//! `dynabill-sql`'s; this crate holds what is SQLite's alone.

mod group;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use dynabill_app::store::{StoreError, StoreResult};
use dynabill_sql::{
    Backend, BoxFuture, Conn, Done, PoolWaits, Query, QueryPlan, Row, Shape, SqlStore, TableRead,
    Unique, Value, begin_detached,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, QueryBuilder, Sqlite, SqlitePool, Transaction};

/// A step of `EXPLAIN QUERY PLAN` that reads a table: `SCAN t [USING [COVERING]
/// INDEX i]` (all of it) or `SEARCH t USING … (condition)`.
fn table_read(detail: &str) -> Option<TableRead> {
    let (full, rest) = if let Some(rest) = detail.strip_prefix("SCAN ") {
        (true, rest)
    } else {
        (false, detail.strip_prefix("SEARCH ")?)
    };
    let table = rest.split_whitespace().next()?.to_owned();
    if table == "CONSTANT" {
        return None;
    }
    let index = rest.split_once(" USING ").map(|(_, using)| {
        let using = using.split(" (").next().unwrap_or(using);
        using
            .trim_start_matches("COVERING ")
            .trim_start_matches("INDEX ")
            .to_owned()
    });
    let condition = match (full, rest.find(" (")) {
        (false, Some(at)) => rest[at + 2..].trim_end_matches(')').to_owned(),
        _ => String::new(),
    };
    Some(TableRead {
        table,
        index,
        condition,
    })
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a writer waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request waits for a free connection before the store reports itself unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Values bound in one statement at most (SQLite's limit is 32,766).
const BIND_LIMIT: usize = 30_000;

/// The SQLite store: the shared store over [`SqliteBackend`].
pub type SqliteStore = SqlStore<SqliteBackend>;

#[derive(Clone)]
pub struct SqliteBackend {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Creates, committed in groups through `writer`.
    group: group::GroupWriter,
    waits: Arc<PoolWaits>,
}

impl SqliteBackend {
    /// Opens (creating if missing) the database at a `sqlite:` URL.
    async fn open(url: &str) -> StoreResult<SqliteBackend> {
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
        let waits = Arc::<PoolWaits>::default();
        let group = group::GroupWriter::start(writer.clone(), waits.clone());
        Ok(SqliteBackend {
            writer,
            reader,
            group,
            waits,
        })
    }
}

impl Backend for SqliteBackend {
    type Db = Sqlite;

    async fn connect(url: &str) -> StoreResult<Self> {
        SqliteBackend::open(url).await
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.writer).await.map_err(|e| {
            StoreError::Other(anyhow::Error::new(e).context("migrating the SQLite database"))
        })
    }

    async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    fn reader(&self) -> &Pool<Sqlite> {
        &self.reader
    }

    fn writer(&self) -> &Pool<Sqlite> {
        &self.writer
    }

    fn waits(&self) -> &Arc<PoolWaits> {
        &self.waits
    }

    /// Holds the database's write lock from its first statement, so that a second
    /// process on the same file queues for it instead of failing midway.
    async fn begin_write(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        begin_detached(&self.writer, Some("BEGIN IMMEDIATE"), &self.waits)
            .await
            .map_err(db_error)
    }

    async fn begin_read(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        begin_detached(&self.reader, None, &self.waits)
            .await
            .map_err(db_error)
    }

    /// Committed with the other creates waiting (see `group`).
    async fn create(&self, query: Query<Self>) -> Result<Vec<Row<Self>>, sqlx::Error> {
        self.group
            .write(move |conn| Box::pin(async move { query.fetch_rows(conn).await }))
            .await
    }

    fn error(e: sqlx::Error) -> StoreError {
        db_error(e)
    }

    fn violated(e: &sqlx::Error) -> Option<Unique> {
        violated(e)
    }

    fn lost_conflict(_: &sqlx::Error) -> bool {
        // One writer at a time: a write waits for the lock, it never deadlocks.
        false
    }

    fn rows_affected(done: &Done<Self>) -> u64 {
        done.rows_affected()
    }

    fn read_cast(_: Shape) -> &'static str {
        ""
    }

    fn write_cast(_: Shape) -> &'static str {
        ""
    }

    const GREATEST: &'static str = "MAX";
    const BYTE_ORDER: &'static str = "";
    /// The write transaction holds the whole database.
    const FOR_SHARE: &'static str = "";
    /// One writer: a claim never meets another claim midway.
    const SKIP_LOCKED: &'static str = "";
    /// SQLite keeps the order of the tables of a `CROSS JOIN`.
    const JOIN_IN_ORDER: &'static str = "CROSS JOIN";
    /// A unary `+` keeps SQLite's planner off the indexes on the column.
    const TENANT_ID_UNINDEXED: &'static str = "+tenant_id";
    const PREPARE_BATCH_STATEMENTS: bool = true;

    const EXPLAIN: &'static str = "EXPLAIN QUERY PLAN ";
    /// SQLite takes the key's index for a bounded window of keys in key order by
    /// itself (the plan tests check it).
    const KEY_ORDER: Option<(&'static str, &'static str)> = None;

    fn read_plan(rows: &[Row<Self>]) -> Result<QueryPlan, sqlx::Error> {
        let mut plan = QueryPlan::default();
        // Subqueries run as co-routines: a scan of one reads the rows it yields
        // (bounded by its own reads, listed on their own), not a table.
        let mut coroutines = Vec::new();
        for row in rows {
            let detail: String = sqlx::Row::try_get(row, "detail")?;
            plan.text.push_str(&detail);
            plan.text.push('\n');
            if let Some(name) = detail.strip_prefix("CO-ROUTINE ") {
                coroutines.push(name.trim().to_owned());
            }
            if let Some(read) = table_read(&detail)
                && !coroutines.contains(&read.table)
            {
                plan.reads.push(read);
            }
            plan.sorts |= detail.starts_with("USE TEMP B-TREE FOR") && detail.contains("ORDER BY");
        }
        Ok(plan)
    }

    fn push_in(qb: &mut QueryBuilder<Sqlite>, column: &str, ids: &[i64]) {
        qb.push(format_args!(" AND {column} IN ("));
        let mut list = qb.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        list.push_unseparated(")");
    }

    fn push_batch(qb: &mut QueryBuilder<Sqlite>, column: &str, ids: &[i64]) {
        Self::push_in(qb, column, ids);
    }

    fn lock_in_order<'e>(
        _: &'e mut Conn<Self>,
        _: &'static str,
        _: i64,
        _: &'e [i64],
    ) -> BoxFuture<'e, Result<(), sqlx::Error>> {
        // The write transaction holds the whole database already.
        Box::pin(async { Ok(()) })
    }

    /// SQLite checks references at each statement.
    const INVOICES_FIRST: bool = true;

    /// Given under the write lock, which the transaction holds from its start.
    fn invoice_ids<'e>(
        conn: &'e mut Conn<Self>,
        count: usize,
    ) -> BoxFuture<'e, Result<Vec<i64>, sqlx::Error>> {
        Box::pin(async move {
            let (first,): (i64,) =
                Query::<Self>::new("SELECT COALESCE(MAX(id), 0) + 1 FROM invoices")
                    .fetch_one(conn)
                    .await?;
            Ok((first..).take(count).collect())
        })
    }

    /// Multi-row `VALUES` lists, as many rows as SQLite binds in one statement.
    fn insert_rows<'e>(
        conn: &'e mut Conn<Self>,
        table: &'static str,
        columns: &'e [&'static str],
        rows: Vec<Vec<Value>>,
        _own_ids: bool,
    ) -> BoxFuture<'e, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let per_statement = BIND_LIMIT / columns.len().max(1);
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                let mut qb = QueryBuilder::<Sqlite>::new(format!(
                    "INSERT INTO {table} ({}) ",
                    columns.join(", ")
                ));
                qb.push_values(rows.by_ref().take(per_statement), |mut row, values| {
                    for value in values {
                        push_separated_value(&mut row, value);
                    }
                });
                qb.build().execute(&mut *conn).await?;
            }
            Ok(())
        })
    }

    const BINDS_PER_STATEMENT: usize = BIND_LIMIT;
    const PARALLEL_WRITES: bool = false;
    const NUMBERS_EVENTS_ON_READ: bool = false;

    fn push_pairs(qb: &mut QueryBuilder<Sqlite>, pairs: &[(i64, i64)]) {
        qb.push("(SELECT column1 AS id, column2 AS other FROM (");
        qb.push_values(pairs, |mut row, (id, other)| {
            row.push_bind(*id).push_bind(*other);
        });
        qb.push(")) AS v");
    }
}

/// Copies the database at the `sqlite:` URL `url` into a new file `to` while other
/// connections (a running `serve`, a bill run) go on reading and writing it: one
/// read transaction's snapshot, written by SQLite's `VACUUM INTO` (compacted, the
/// WAL folded in), first under a temporary name and renamed when complete, so a
/// file at `to` is always a whole backup. Never overwrites; opens the source read
/// only.
pub async fn backup(url: &str, to: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    use sqlx::ConnectOptions;

    anyhow::ensure!(
        !to.exists(),
        "{} already exists; a backup never overwrites a file",
        to.display()
    );
    let mut partial = to.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let target = partial
        .to_str()
        .with_context(|| format!("{} is not a UTF-8 path", to.display()))?;
    let mut source = SqliteConnectOptions::from_str(url)
        .context("bad SQLite URL")?
        .read_only(true)
        .busy_timeout(BUSY_TIMEOUT)
        .connect()
        .await
        .with_context(|| format!("opening {url}"))?;
    let _ = std::fs::remove_file(&partial);
    let copied = sqlx::query("VACUUM INTO ?1")
        .bind(target)
        .execute(&mut source)
        .await
        .with_context(|| format!("copying {url} into {}", partial.display()));
    let _ = sqlx::Connection::close(source).await;
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, to)
        .with_context(|| format!("renaming {} to {}", partial.display(), to.display()))
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

/// The unique constraint a write violated, read from SQLite's message, which names
/// the constraint's columns: `UNIQUE constraint failed: accounts.tenant_id, accounts.ext_id`.
fn violated(e: &sqlx::Error) -> Option<Unique> {
    let sqlx::Error::Database(db) = e else {
        return None;
    };
    if !db.is_unique_violation() {
        return None;
    }
    let columns = db.message().strip_prefix("UNIQUE constraint failed: ")?;
    Unique::ALL
        .into_iter()
        .find(|unique| columns == failed_columns(*unique))
}

/// How SQLite names the columns of `unique` when a write violates it.
fn failed_columns(unique: Unique) -> String {
    let (table, columns) = unique.columns();
    let named: Vec<String> = columns.iter().map(|c| format!("{table}.{c}")).collect();
    named.join(", ")
}

/// Binds one value inside a `push_values` row.
fn push_separated_value(
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
        Value::Bytes(b) => row.push_bind(b),
    };
}
