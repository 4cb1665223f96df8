//! What a SQL database must provide for the shared queries to run on it: the
//! [`Backend`] trait (connections, dialect, error mapping, bulk forms), and the
//! typed sqlx operations the queries need, stated once ([`SqlDb`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dynabill_app::store::StoreError;
use sqlx::database::HasStatementCache;
use sqlx::{Database, Encode, Executor, IntoArguments, Pool, QueryBuilder, Transaction, Type};

use crate::list_plans::QueryPlan;
use crate::query::Query;
use crate::rows::Decodes;
use crate::values::Value;

/// A future that owns what it needs, or borrows it for `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A connection (or transaction) of backend `B`.
pub type Conn<B> = <<B as Backend>::Db as Database>::Connection;
/// A result row of backend `B`.
pub type Row<B> = <<B as Backend>::Db as Database>::Row;
/// What backend `B` says a statement did.
pub type Done<B> = <<B as Backend>::Db as Database>::QueryResult;

/// The sqlx database of a backend, with the operations the shared queries run on
/// it. Implemented for every sqlx database that can bind the shared [`Value`]s,
/// run built queries on its connections and decode the shared row types.
pub trait SqlDb: Database<Row: Decodes> + HasStatementCache {
    fn bind(qb: &mut QueryBuilder<Self>, value: Value);
    fn fetch_all<'e>(
        conn: &'e mut Self::Connection,
        qb: &'e mut QueryBuilder<Self>,
        persistent: bool,
    ) -> BoxFuture<'e, Result<Vec<Self::Row>, sqlx::Error>>;
    /// Runs the query and decodes each row with `decode` as it arrives (so that
    /// rows are not held longer than it takes).
    fn fetch_decoded<'e, T: Send + 'e>(
        conn: &'e mut Self::Connection,
        qb: &'e mut QueryBuilder<Self>,
        persistent: bool,
        decode: fn(&Self::Row) -> Result<T, sqlx::Error>,
    ) -> BoxFuture<'e, Result<Vec<T>, sqlx::Error>>;
    fn execute<'e>(
        conn: &'e mut Self::Connection,
        qb: &'e mut QueryBuilder<Self>,
        persistent: bool,
    ) -> BoxFuture<'e, Result<Self::QueryResult, sqlx::Error>>;
}

impl<DB> SqlDb for DB
where
    DB: Database<Row: Decodes> + HasStatementCache,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> Option<bool>: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
{
    fn bind(qb: &mut QueryBuilder<Self>, value: Value) {
        match value {
            Value::Text(v) => qb.push_bind(v),
            Value::OptText(v) => qb.push_bind(v),
            Value::Int(v) => qb.push_bind(v),
            Value::OptInt(v) => qb.push_bind(v),
            Value::Bool(v) => qb.push_bind(v),
            Value::OptBool(v) => qb.push_bind(v),
            Value::Bytes(v) => qb.push_bind(v),
        };
    }

    fn fetch_all<'e>(
        conn: &'e mut Self::Connection,
        qb: &'e mut QueryBuilder<Self>,
        persistent: bool,
    ) -> BoxFuture<'e, Result<Vec<Self::Row>, sqlx::Error>> {
        Box::pin(async move { qb.build().persistent(persistent).fetch_all(conn).await })
    }

    fn fetch_decoded<'e, T: Send + 'e>(
        conn: &'e mut Self::Connection,
        qb: &'e mut QueryBuilder<Self>,
        persistent: bool,
        decode: fn(&Self::Row) -> Result<T, sqlx::Error>,
    ) -> BoxFuture<'e, Result<Vec<T>, sqlx::Error>> {
        Box::pin(async move {
            let mut rows = qb.build().persistent(persistent).fetch(conn);
            let mut decoded = Vec::new();
            while let Some(row) = std::future::poll_fn(|cx| rows.as_mut().poll_next(cx)).await {
                decoded.push(decode(&row?)?);
            }
            Ok(decoded)
        })
    }

    fn execute<'e>(
        conn: &'e mut Self::Connection,
        qb: &'e mut QueryBuilder<Self>,
        persistent: bool,
    ) -> BoxFuture<'e, Result<Self::QueryResult, sqlx::Error>> {
        Box::pin(async move { qb.build().persistent(persistent).execute(conn).await })
    }
}

/// How a value is stored where the backends' column types differ: PostgreSQL keeps
/// codes in small integers, dates as `DATE` and amounts as `NUMERIC`, and the
/// shared rows read them as BIGINT and text (as SQLite stores them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// The same type on both backends.
    Plain,
    /// A wire code or small count (read as BIGINT).
    Code,
    /// A calendar date (read and written as `YYYY-MM-DD` text).
    Date,
    /// An exact amount (read and written as decimal text).
    Amount,
}

/// The unique constraints of the schema, named alike on both backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unique {
    /// `tenants (app_key)`.
    TenantAppKey,
    /// `api_users (tenant_id, user_name)`.
    ApiUserName,
    /// `accounts (tenant_id, ext_id)`.
    AccountExtId,
    /// `plans (tenant_id, ext_id)`.
    PlanExtId,
    /// `recurring_items (tenant_id, ext_id)`.
    RecurringItemExtId,
    /// `one_time_items (tenant_id, ext_id)`.
    OneTimeItemExtId,
    /// `invoices (tenant_id, invoice_number)`.
    InvoiceNumber,
    /// `billing_ledger (item_id, period_start, entry) WHERE NOT released`: billed once.
    LedgerOnce,
    /// `idempotency_keys (tenant_id, key)`.
    IdempotencyKey,
}

impl Unique {
    pub const ALL: [Unique; 9] = [
        Unique::TenantAppKey,
        Unique::ApiUserName,
        Unique::AccountExtId,
        Unique::PlanExtId,
        Unique::RecurringItemExtId,
        Unique::OneTimeItemExtId,
        Unique::InvoiceNumber,
        Unique::LedgerOnce,
        Unique::IdempotencyKey,
    ];

    /// The table and the columns the constraint makes unique.
    pub fn columns(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Unique::TenantAppKey => ("tenants", &["app_key"]),
            Unique::ApiUserName => ("api_users", &["tenant_id", "user_name"]),
            Unique::AccountExtId => ("accounts", &["tenant_id", "ext_id"]),
            Unique::PlanExtId => ("plans", &["tenant_id", "ext_id"]),
            Unique::RecurringItemExtId => ("recurring_items", &["tenant_id", "ext_id"]),
            Unique::OneTimeItemExtId => ("one_time_items", &["tenant_id", "ext_id"]),
            Unique::InvoiceNumber => ("invoices", &["tenant_id", "invoice_number"]),
            Unique::LedgerOnce => ("billing_ledger", &["item_id", "period_start", "entry"]),
            Unique::IdempotencyKey => ("idempotency_keys", &["tenant_id", "key"]),
        }
    }

    /// What the store reports when a write violates the constraint.
    pub fn error(self) -> StoreError {
        match self {
            Unique::TenantAppKey => StoreError::AppKeyTaken,
            Unique::ApiUserName => StoreError::UserNameTaken,
            Unique::AccountExtId
            | Unique::PlanExtId
            | Unique::RecurringItemExtId
            | Unique::OneTimeItemExtId => StoreError::ExtIdTaken,
            // Another bill run billed the piece first: read again and bill what is left.
            Unique::LedgerOnce => StoreError::Stale,
            // Numbers come from the tenant's sequence and keys are claimed with an
            // upsert: neither is ever refused unless something is broken.
            Unique::InvoiceNumber | Unique::IdempotencyKey => StoreError::Other(anyhow::anyhow!(
                "unexpected violation of the unique constraint {self:?}"
            )),
        }
    }
}

/// A SQL database as the shared store uses it: its connections, the few places
/// where its SQL differs, how it reports errors, and its forms of bulk writes.
pub trait Backend: Send + Sync + Sized + 'static {
    type Db: SqlDb;

    // Connections.

    /// Connects to the database at `url`; the schema is not touched.
    fn connect(url: &str) -> impl Future<Output = Result<Self, StoreError>> + Send;
    /// Applies pending migrations.
    fn migrate(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Waits for in-flight work and closes the connections.
    fn close(&self) -> impl Future<Output = ()> + Send;
    /// The connections reads use.
    fn reader(&self) -> &Pool<Self::Db>;
    /// The connections writes use.
    fn writer(&self) -> &Pool<Self::Db>;
    /// The count of this backend's waits for connections.
    fn waits(&self) -> &Arc<PoolWaits>;
    /// The pools, by the name metrics show them under (one when reads and
    /// writes share a pool).
    fn pools(&self) -> Vec<(&'static str, &Pool<Self::Db>)> {
        vec![("writer", self.writer()), ("reader", self.reader())]
    }
    /// A write transaction, ready to hold the locks its writes need.
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, StoreError>> + Send;
    /// A read-only transaction on one snapshot, so that a page and its total count
    /// the same rows, and a record and its children agree.
    fn begin_read(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, StoreError>> + Send;
    /// A read-only transaction on one snapshot for a list whose page walks its
    /// index in key order (see `PageOrder::Key`).
    fn begin_key_order_read(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, StoreError>> + Send {
        self.begin_read()
    }
    /// Runs a create (one `INSERT ... RETURNING`) on its own and returns its rows once
    /// committed. SQLite commits the creates that wait meanwhile together.
    fn create(
        &self,
        query: Query<Self>,
    ) -> impl Future<Output = Result<Vec<Row<Self>>, sqlx::Error>> + Send {
        async move {
            let mut conn = self.waits().timed(self.writer().acquire()).await?;
            query.fetch_rows(&mut conn).await
        }
    }

    // Errors.

    /// Translates a database error nobody expected into the store's terms.
    fn error(e: sqlx::Error) -> StoreError;
    /// The unique constraint `e` says a write violated, if it says so.
    fn violated(e: &sqlx::Error) -> Option<Unique>;
    /// Whether `e` says the transaction lost a lock conflict (a deadlock) and was
    /// rolled back: for a conditional write, a concurrent writer changed its records.
    fn lost_conflict(e: &sqlx::Error) -> bool;
    fn rows_affected(done: &Done<Self>) -> u64;

    // Dialect.

    /// The cast that reads a column of `shape` into the shared row types.
    fn read_cast(shape: Shape) -> &'static str;
    /// The cast that writes a bound value (text for dates and amounts) into a column of `shape`.
    fn write_cast(shape: Shape) -> &'static str;
    /// The larger of two values: `GREATEST` or SQLite's two-argument `MAX`.
    const GREATEST: &'static str;
    /// Makes a text comparison follow byte order (what a prefix range needs):
    /// PostgreSQL's `COLLATE "C"`; SQLite compares bytes already.
    const BYTE_ORDER: &'static str;
    /// The locking clause of a read whose row a write depends on (the live account
    /// of a new plan, the live plan of a new item), so that a concurrent delete waits
    /// for the write (and then sees its row) or wins (and the write finds nothing).
    const FOR_SHARE: &'static str;
    /// The locking clause of a claim's read: rows another transaction is claiming
    /// are passed over rather than waited for.
    const SKIP_LOCKED: &'static str;
    /// A join that also fixes the join order (driving a read from its first table).
    const JOIN_IN_ORDER: &'static str;
    /// `tenant_id` where it must not lead the planner to an index on it.
    const TENANT_ID_UNINDEXED: &'static str;
    /// Whether the statements a bill run sends once per batch are kept prepared.
    const PREPARE_BATCH_STATEMENTS: bool;
    /// `AND column IN (ids)`, for a short list.
    fn push_in(qb: &mut QueryBuilder<Self::Db>, column: &str, ids: &[i64]);
    /// `AND column IN (ids)`, for a batch of IDs read together (which must not be empty).
    fn push_batch(qb: &mut QueryBuilder<Self::Db>, column: &str, ids: &[i64]);
    /// Locks the rows of `table` with `ids` (of the tenant) in ID order, where rows
    /// are locked one by one, so that transactions writing the same rows queue
    /// instead of deadlocking.
    fn lock_in_order<'e>(
        conn: &'e mut Conn<Self>,
        table: &'static str,
        tenant: i64,
        ids: &'e [i64],
    ) -> BoxFuture<'e, Result<(), sqlx::Error>>;

    // Bulk writes (bill runs).

    /// Whether a bill's invoices are written before their lines, ledger entries and
    /// one-time items (which reference them). PostgreSQL checks those references at
    /// commit and writes the invoices last, so that the tenant's invoice sequence
    /// (taken just before) stays locked only for the end of the transaction.
    const INVOICES_FIRST: bool;
    /// `count` new invoice IDs, in ascending order, in the caller's transaction.
    fn invoice_ids<'e>(
        conn: &'e mut Conn<Self>,
        count: usize,
    ) -> BoxFuture<'e, Result<Vec<i64>, sqlx::Error>>;
    /// Inserts `rows` (each a value per column of `columns`, in order) into `table`.
    /// `own_ids`: the rows bring their identity (`id` among the columns).
    fn insert_rows<'e>(
        conn: &'e mut Conn<Self>,
        table: &'static str,
        columns: &'e [&'static str],
        rows: Vec<Vec<Value>>,
        own_ids: bool,
    ) -> BoxFuture<'e, Result<(), sqlx::Error>>;
    /// How many values a statement binds at most (for the lists of IDs and pairs
    /// written in bulk; arrays count as one).
    const BINDS_PER_STATEMENT: usize;
    /// Whether several transactions of one process can write at once (not
    /// SQLite's single writer): a bill run then bills batches in parallel.
    const PARALLEL_WRITES: bool;
    /// Whether events are written unnumbered and numbered after their commit by
    /// whoever reads the log next (`number_events(tenant)`, PostgreSQL: writers
    /// then never queue on the tenant's sequence), rather than by the trigger
    /// that writes them (SQLite's one writer).
    const NUMBERS_EVENTS_ON_READ: bool;
    /// A table `v (id, other)` of the pairs, for `... FROM <it> WHERE t.id = v.id`.
    fn push_pairs(qb: &mut QueryBuilder<Self::Db>, pairs: &[(i64, i64)]);
    /// Told when a new bill run starts (before its first batch is claimed).
    fn bill_run_starting(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
    // Plans (the test that every list filter is served by an index).

    /// What precedes a statement to have its plan returned instead of its rows.
    const EXPLAIN: &'static str;
    /// The statements, if the backend needs them, that make the statements run
    /// between them in a read transaction walk an index in key order rather
    /// than sort (the first read of `PageOrder::Probe`), and that end that.
    const KEY_ORDER: Option<(&'static str, &'static str)>;
    /// Reads the rows an [`EXPLAIN`](Backend::EXPLAIN) returned.
    fn read_plan(rows: &[Row<Self>]) -> Result<QueryPlan, sqlx::Error>;

    /// Told after a bill commit wrote `ledger_rows` ledger entries.
    fn bills_committed(&self, ledger_rows: u64) -> impl Future<Output = ()> + Send {
        let _ = ledger_rows;
        async {}
    }
}

/// A transaction begun with `statement` (or a plain `BEGIN`) on a connection of
/// `pool`, on a task of its own. sqlx 0.9 counts a transaction on its connection
/// only once the begin completes (PostgreSQL: once the server answered `BEGIN`;
/// SQLite: on the connection's worker, whether or not anyone still waits): a
/// caller dropped during the begin (a request whose client went away) would give
/// the connection back to the pool inside a transaction nobody ends (a read-only
/// snapshot the next write fails in, or SQLite's write lock). On its own task the
/// begin always finishes; a transaction nobody takes is then dropped, and so
/// rolled back.
pub async fn begin_detached<DB: Database>(
    pool: &Pool<DB>,
    statement: Option<&'static str>,
    waits: &Arc<PoolWaits>,
) -> Result<Transaction<'static, DB>, sqlx::Error> {
    let (pool, waits) = (pool.clone(), Arc::clone(waits));
    tokio::spawn(async move {
        waits
            .timed(async {
                match statement {
                    Some(statement) => pool.begin_with(statement).await,
                    None => pool.begin().await,
                }
            })
            .await
    })
    .await
    .map_err(|e| {
        sqlx::Error::Io(std::io::Error::other(format!(
            "beginning a transaction: {e}"
        )))
    })?
}

/// How long the store's requests waited for connections: counted where a
/// connection is taken from a pool (with its `BEGIN`, for a transaction), shown
/// by `/metrics`.
#[derive(Debug, Default)]
pub struct PoolWaits {
    acquired: AtomicU64,
    waited_us: AtomicU64,
    failed: AtomicU64,
}

impl PoolWaits {
    /// Runs `acquire`, counting it and the time it took.
    pub async fn timed<T>(
        &self,
        acquire: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        let started = std::time::Instant::now();
        let got = acquire.await;
        let waited = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.waited_us.fetch_add(waited, Ordering::Relaxed);
        match &got {
            Ok(_) => self.acquired.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
        got
    }

    /// (acquired, microseconds waited, failed) so far.
    pub fn totals(&self) -> (u64, u64, u64) {
        (
            self.acquired.load(Ordering::Relaxed),
            self.waited_us.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// An error of a read, or of a write nothing else is expected of.
pub(crate) fn failed<B: Backend>(e: sqlx::Error) -> StoreError {
    B::error(e)
}

/// An error of a write that a unique constraint may refuse.
pub(crate) fn refused<B: Backend>(e: sqlx::Error) -> StoreError {
    match B::violated(&e) {
        Some(unique) => unique.error(),
        None => B::error(e),
    }
}

/// An error of a conditional write: a refusal, or a lost lock conflict (`Stale`:
/// the caller reads again and retries).
pub(crate) fn conflicted<B: Backend>(e: sqlx::Error) -> StoreError {
    if B::lost_conflict(&e) {
        return StoreError::Stale;
    }
    refused::<B>(e)
}
