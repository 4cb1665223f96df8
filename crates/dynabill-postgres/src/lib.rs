//! dynabill-postgres: the PostgreSQL backend, for several servers sharing one book.
//!
//! One pool per process. Races between servers are settled by the database, never by
//! code that reads and then writes: unique constraints for `ExtID`s, conditional
//! updates on `version`, `INSERT ... ON CONFLICT` plus row locks for idempotency keys.
//! Columns keep their natural PostgreSQL types; the selects cast them to the shapes
//! `dynabill-sql`'s row types share with SQLite (dates as text, codes as BIGINT).
//! The queries are `dynabill-sql`'s; this crate holds what is PostgreSQL's alone.

mod bulk;
mod statistics;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use dynabill_app::store::{StoreError, StoreResult};
use dynabill_sql::{
    Backend, BoxFuture, Conn, Done, PoolWaits, QueryPlan, Shape, SqlStore, TableRead, Unique,
    Value, begin_detached,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Pool, Postgres, QueryBuilder, Transaction};

/// Adds a node of an `EXPLAIN (FORMAT JSON)` plan, and those below it, to `plan`.
fn read_plan_node(node: &serde_json::Value, plan: &mut QueryPlan) {
    let kind = node["Node Type"].as_str().unwrap_or_default();
    plan.sorts |= matches!(kind, "Sort" | "Incremental Sort");
    if let Some(relation) = node["Relation Name"].as_str() {
        let text = |key: &str| node[key].as_str().map(str::to_owned);
        let (index, condition) = match kind {
            "Index Scan" | "Index Only Scan" => (text("Index Name"), text("Index Cond")),
            // The bitmap's index scans are the nodes below.
            "Bitmap Heap Scan" => {
                let names: Vec<&str> = node["Plans"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|child| child["Index Name"].as_str())
                    .collect();
                (Some(names.join(", ")), text("Recheck Cond"))
            }
            _ => (None, None),
        };
        plan.reads.push(TableRead {
            table: text("Alias").unwrap_or_else(|| relation.to_owned()),
            index,
            condition: condition.unwrap_or_default(),
        });
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        read_plan_node(child, plan);
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a request waits for a connection before the store reports itself
/// unavailable (a 503): long enough for a burst to queue, short enough that an
/// outage is answered rather than hung on (sqlx retries a refused connection, and
/// one refused for want of slots, until then).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the store waits for PostgreSQL when it is opened (a server starting
/// beside its database).
const STARTUP_WAIT: Duration = Duration::from_secs(10);

/// The PostgreSQL store: the shared store over [`PgBackend`].
pub type PgStore = SqlStore<PgBackend>;

#[derive(Clone)]
pub struct PgBackend {
    pool: PgPool,
    waits: Arc<PoolWaits>,
    ledger_growth: Arc<statistics::LedgerGrowth>,
    /// The task that keeps the statistics fresh ([`statistics::watch`]).
    watcher: Arc<tokio::task::JoinHandle<()>>,
}

impl PgBackend {
    /// Connects to the database at a `postgres:` URL; a server that refuses
    /// connections is retried for up to `startup_wait` before the store reports
    /// itself unavailable, and requests then wait up to `acquire_timeout` for a
    /// connection.
    async fn connect_waiting(
        url: &str,
        startup_wait: Duration,
        acquire_timeout: Duration,
    ) -> StoreResult<PgBackend> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("bad PostgreSQL URL: {e}")))?;
        // The first connection waits for a database still starting; it then joins
        // the pool.
        let first = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(startup_wait)
            .connect_with(options.clone())
            .await
            .map_err(unavailable)?;
        first.close().await;
        // Requests mostly wait on the database, not the CPU: a couple of connections
        // per core keeps the server busy without queueing inside PostgreSQL.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
        let max_connections = cores * 2 + 2;
        // No ping before each acquire (a round trip on every query): a connection
        // that died is discarded on its first error instead.
        // No `min_connections`: sqlx keeps those up with a task that retries a
        // refused connection for five minutes, and closing the pool waits for it,
        // so a process stopping during an outage (a bill run that failed) would
        // hang that long.
        let pool = PgPoolOptions::new()
            .test_before_acquire(false)
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        tracing::debug!(max_connections, "connected to PostgreSQL");
        Ok(PgBackend {
            watcher: Arc::new(statistics::watch(pool.clone(), statistics::WATCH_EVERY)),
            pool,
            waits: Arc::default(),
            ledger_growth: Arc::default(),
        })
    }
}

impl Backend for PgBackend {
    type Db = Postgres;

    async fn connect(url: &str) -> StoreResult<Self> {
        PgBackend::connect_waiting(url, STARTUP_WAIT, ACQUIRE_TIMEOUT).await
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await.map_err(|e| {
            StoreError::Other(anyhow::Error::new(e).context("migrating the PostgreSQL database"))
        })
    }

    async fn close(&self) {
        self.watcher.abort();
        self.pool.close().await;
    }

    fn reader(&self) -> &Pool<Postgres> {
        &self.pool
    }

    fn writer(&self) -> &Pool<Postgres> {
        &self.pool
    }

    fn waits(&self) -> &Arc<PoolWaits> {
        &self.waits
    }

    fn pools(&self) -> Vec<(&'static str, &Pool<Postgres>)> {
        vec![("main", &self.pool)]
    }

    /// READ COMMITTED: each statement sees what committed before it, and its
    /// conditional updates wait for the rows' locks and re-check their conditions.
    async fn begin_write(&self) -> StoreResult<Transaction<'static, Postgres>> {
        begin_detached(&self.pool, None, &self.waits)
            .await
            .map_err(db_error)
    }

    /// One snapshot, read only.
    async fn begin_read(&self) -> StoreResult<Transaction<'static, Postgres>> {
        let snapshot = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
        begin_detached(&self.pool, Some(snapshot), &self.waits)
            .await
            .map_err(db_error)
    }

    /// Sorting off for the snapshot: on a table never analyzed PostgreSQL takes
    /// `deleted_at IS NULL` to hold 0.5% of the rows and `tenant_id = $1` as many,
    /// so it reads every live record of the tenant and sorts them for a page of
    /// 100 (a million accounts: 6 pages a second). In key order it reads the page
    /// and stops. Sent with the `BEGIN`, in one round trip.
    async fn begin_key_order_read(&self) -> StoreResult<Transaction<'static, Postgres>> {
        let snapshot =
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL enable_sort = off";
        begin_detached(&self.pool, Some(snapshot), &self.waits)
            .await
            .map_err(db_error)
    }

    fn error(e: sqlx::Error) -> StoreError {
        db_error(e)
    }

    fn violated(e: &sqlx::Error) -> Option<Unique> {
        let sqlx::Error::Database(db) = e else {
            return None;
        };
        if !db.is_unique_violation() {
            return None;
        }
        let name = db.constraint()?;
        Unique::ALL
            .into_iter()
            .find(|unique| constraint_name(*unique) == name)
    }

    fn lost_conflict(e: &sqlx::Error) -> bool {
        lost_conflict(e)
    }

    fn rows_affected(done: &Done<Self>) -> u64 {
        done.rows_affected()
    }

    fn read_cast(shape: Shape) -> &'static str {
        match shape {
            Shape::Plain => "",
            Shape::Code => "::int8",
            Shape::Date | Shape::Amount => "::text",
        }
    }

    fn write_cast(shape: Shape) -> &'static str {
        match shape {
            Shape::Plain | Shape::Code => "",
            Shape::Date => "::date",
            Shape::Amount => "::numeric",
        }
    }

    const GREATEST: &'static str = "GREATEST";
    const BYTE_ORDER: &'static str = r#" COLLATE "C""#;
    const FOR_SHARE: &'static str = " FOR SHARE";
    /// Claimers pass over the rows another claimer is taking.
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    /// PostgreSQL's planner orders joins itself (and plans batches by their range,
    /// see [`push_any_of`]).
    const JOIN_IN_ORDER: &'static str = "JOIN";
    const TENANT_ID_UNINDEXED: &'static str = "tenant_id";
    /// A kept statement gets a generic plan, chosen while the invoice and ledger
    /// tables were small and kept as they grow; planning each one afresh costs a
    /// millisecond per batch of hundreds of accounts.
    const PREPARE_BATCH_STATEMENTS: bool = false;

    const EXPLAIN: &'static str = "EXPLAIN (FORMAT JSON) ";
    /// Sorting off, as for `begin_key_order_read`: a window of keys is read in key
    /// order whatever the statistics say of the filter's selectivity.
    const KEY_ORDER: Option<(&'static str, &'static str)> =
        Some(("SET LOCAL enable_sort = off", "SET LOCAL enable_sort = on"));

    fn read_plan(rows: &[sqlx::postgres::PgRow]) -> Result<QueryPlan, sqlx::Error> {
        let row = rows.first().ok_or(sqlx::Error::RowNotFound)?;
        // `json` travels as its text.
        let text: String = sqlx::Row::try_get_unchecked(row, 0)?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        let mut plan = QueryPlan {
            text: text.clone(),
            ..QueryPlan::default()
        };
        read_plan_node(&json[0]["Plan"], &mut plan);
        Ok(plan)
    }

    fn push_in(qb: &mut QueryBuilder<Postgres>, column: &str, ids: &[i64]) {
        qb.push(format_args!(" AND {column} = ANY("))
            .push_bind(ids.to_vec())
            .push(")");
    }

    fn push_batch(qb: &mut QueryBuilder<Postgres>, column: &str, ids: &[i64]) {
        push_any_of(qb, column, ids);
    }

    fn lock_in_order<'e>(
        conn: &'e mut Conn<Self>,
        table: &'static str,
        tenant: i64,
        ids: &'e [i64],
    ) -> BoxFuture<'e, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let mut qb =
                QueryBuilder::<Postgres>::new(format!("SELECT id FROM {table} WHERE tenant_id = "));
            qb.push_bind(tenant)
                .push(" AND id = ANY(")
                .push_bind(ids.to_vec())
                .push(") ORDER BY id FOR NO KEY UPDATE");
            qb.build().persistent(false).execute(conn).await?;
            Ok(())
        })
    }

    /// Lines, ledger entries and invoiced one-time items reference `invoices (id)`
    /// checked at commit (deferred; migration 0006 says why).
    const INVOICES_FIRST: bool = false;

    /// Drawn from the invoices' identity sequence, so that lines, ledger entries and
    /// one-time items can name their invoice without relying on the order in which a
    /// multi-row insert returns its rows.
    fn invoice_ids<'e>(
        conn: &'e mut Conn<Self>,
        count: usize,
    ) -> BoxFuture<'e, Result<Vec<i64>, sqlx::Error>> {
        Box::pin(async move {
            let mut ids: Vec<i64> = sqlx::query_scalar(
                "SELECT nextval(pg_get_serial_sequence('invoices', 'id')) FROM generate_series(1, $1)",
            )
            .bind(count as i64)
            .persistent(false)
            .fetch_all(conn)
            .await?;
            ids.sort_unstable();
            Ok(ids)
        })
    }

    fn insert_rows<'e>(
        conn: &'e mut Conn<Self>,
        table: &'static str,
        columns: &'e [&'static str],
        rows: Vec<Vec<Value>>,
        own_ids: bool,
    ) -> BoxFuture<'e, Result<(), sqlx::Error>> {
        Box::pin(async move {
            bulk::insert_rows(conn, table, columns, rows, own_ids).await?;
            Ok(())
        })
    }

    /// Lists and pairs travel as arrays, whatever their length.
    const BINDS_PER_STATEMENT: usize = usize::MAX;
    const PARALLEL_WRITES: bool = true;
    const NUMBERS_EVENTS_ON_READ: bool = true;

    fn push_pairs(qb: &mut QueryBuilder<Postgres>, pairs: &[(i64, i64)]) {
        let (ids, others): (Vec<i64>, Vec<i64>) = pairs.iter().copied().unzip();
        qb.push("(SELECT * FROM UNNEST(")
            .push_bind(ids)
            .push("::int8[], ")
            .push_bind(others)
            .push("::int8[]) AS u (id, other)) AS v");
    }

    async fn bill_run_starting(&self) {
        statistics::refresh_stale(&self.pool, &[]).await;
    }

    async fn bills_committed(&self, ledger_rows: u64) {
        self.ledger_growth.add(&self.pool, ledger_rows).await;
    }
}

/// The name of `unique` in the migrations.
fn constraint_name(unique: Unique) -> &'static str {
    match unique {
        Unique::TenantAppKey => "tenants_app_key_key",
        Unique::ApiUserName => "api_users_user_name",
        Unique::AccountExtId => "accounts_ext_id",
        Unique::PlanExtId => "plans_ext_id",
        Unique::RecurringItemExtId => "recurring_items_ext_id",
        Unique::OneTimeItemExtId => "one_time_items_ext_id",
        Unique::InvoiceNumber => "invoices_number",
        Unique::LedgerOnce => "billing_ledger_once",
        Unique::IdempotencyKey => "idempotency_keys_pkey",
    }
}

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Translates a database error nobody expected into the store's terms.
pub(crate) fn db_error(e: sqlx::Error) -> StoreError {
    if is_unavailable(&e) {
        return unavailable(e);
    }
    StoreError::Other(anyhow::Error::new(e))
}

/// Whether the error says "the database cannot serve us now" rather than "this
/// statement is wrong": a retry later may succeed.
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        // A connection cut mid-exchange reads as a protocol error (a reply
        // that ends early): the wire failed, not the statement.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P01-03: the server is shutting down or
            // starting; 53300: too many connections.
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// Whether `e` says this transaction lost a lock conflict (a deadlock) and was rolled
/// back: for a conditional write, that means a concurrent writer changed its records,
/// so it is reported as `Stale` (the caller re-reads and retries).
pub(crate) fn lost_conflict(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("40P01"))
}

/// `AND column = ANY(ids) AND column BETWEEN min AND max`, for reads keyed by a
/// batch of IDs. The range adds nothing to the list (which must not be empty) but
/// tells the planner how narrow the batch is: a bill run's batches are runs of
/// neighbouring IDs, and with the range the planner walks the index over them,
/// where with a long list alone it may judge a scan of the whole table cheaper
/// (it did, once the tables held 100,000 accounts: 30 ms per read instead of 2).
pub(crate) fn push_any_of(qb: &mut QueryBuilder<Postgres>, column: &str, ids: &[i64]) {
    let low = ids.iter().copied().min().unwrap_or(0);
    let high = ids.iter().copied().max().unwrap_or(0);
    qb.push(format!(" AND {column} = ANY("))
        .push_bind(ids.to_vec())
        .push(format!(") AND {column} BETWEEN "))
        .push_bind(low)
        .push(" AND ")
        .push_bind(high);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_that_refuses_connections_is_reported_unavailable() {
        // Nothing listens on port 1, so every attempt is refused until the timeout.
        let url = "postgres://postgres@127.0.0.1:1/test";
        let wait = Duration::from_millis(300);
        let refused = PgBackend::connect_waiting(url, wait, wait).await;
        assert!(
            matches!(refused, Err(StoreError::Unavailable(_))),
            "expected Unavailable"
        );
    }

    #[test]
    fn waiting_too_long_for_a_connection_is_unavailability_not_a_bug() {
        for e in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()),
        ] {
            assert!(matches!(db_error(e), StoreError::Unavailable(_)));
        }
        assert!(matches!(
            db_error(sqlx::Error::RowNotFound),
            StoreError::Other(_)
        ));
    }
}
