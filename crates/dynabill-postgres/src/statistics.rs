//! Fresh planner statistics, whatever autovacuum does: for the tables of the hot
//! paths, checked every few seconds and when a bill run starts ([`watch`],
//! [`refresh_stale`]), and for the table a bill run grows while it reads it.
//!
//! Each batch of a bill run reads the unreleased ledger entries of its accounts'
//! items, and each commit adds some: a first bill run can take `billing_ledger` from
//! empty to hundreds of thousands of rows in a minute, before autovacuum (if it runs
//! at all) gets to analyze it. With statistics that still say "a few rows", the
//! planner starts the batch's ledger read from the whole ledger of the tenant instead
//! of from the batch's plans, and each read costs in proportion to everything billed
//! so far. So the store analyzes the ledger itself each time its writes have grown
//! the table by half (and at least [`FLOOR`] rows) since the last analysis: a
//! handful of `ANALYZE`s per run, each reading a fixed-size sample.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::PgPool;

/// Rows written before a table is worth analyzing again, whatever its size.
const FLOOR: u64 = 10_000;

/// What this process has added to `billing_ledger` since it was last analyzed.
#[derive(Default)]
pub(crate) struct LedgerGrowth {
    /// (rows at the last analysis, as far as this process knows; rows added since).
    counts: Mutex<Option<(u64, u64)>>,
    analyzing: AtomicBool,
}

impl LedgerGrowth {
    /// Counts `rows` new ledger entries, committed, and analyzes the ledger when they
    /// make its statistics stale. A failed analysis is logged and otherwise ignored:
    /// the statistics are only advice to the planner.
    pub(crate) async fn add(&self, pool: &PgPool, rows: u64) {
        if rows == 0 {
            return;
        }
        let unknown = self
            .counts
            .lock()
            .expect("growth counter poisoned")
            .is_none();
        let estimate = if unknown {
            estimated_rows(pool).await
        } else {
            0
        };
        let due = {
            let mut counts = self.counts.lock().expect("growth counter poisoned");
            let (base, since) = counts.unwrap_or((estimate, 0));
            let (next, due) = grown(base, since, rows);
            *counts = Some(next);
            due
        };
        // One analysis at a time: a second committer crossing the line meanwhile
        // has nothing to add to it.
        if due && !self.analyzing.swap(true, Ordering::AcqRel) {
            if let Err(e) = sqlx::query("ANALYZE billing_ledger").execute(pool).await {
                tracing::warn!(error = %e, "analyzing billing_ledger failed");
            }
            self.analyzing.store(false, Ordering::Release);
        }
    }
}

/// The tables of the hot paths (a bill run's batch reads, the gets and lists of
/// every door, the lookups of every write), whose statistics are kept fresh.
const WATCHED: [&str; 8] = [
    "accounts",
    "plans",
    "recurring_items",
    "recurring_item_changes",
    "one_time_items",
    "billing_ledger",
    "invoices",
    "invoice_lines",
];

/// How often the store looks for missing or stale statistics.
pub(crate) const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs [`refresh_stale`] `every` so often ([`WATCH_EVERY`]) until the pool closes.
///
/// Gets and writes run prepared statements, and PostgreSQL keeps a statement's
/// generic plan for as long as the connection lives unless the statistics of its
/// tables change: a plan chosen while a table was empty (any index looks as good as
/// another then) stayed in use as the table grew. Measured: seeding 100,000
/// accounts through the use cases into a never-analyzed database slowed to 24
/// accounts/s by the 40,000th (each lookup of a plan by ExtID walked every plan of
/// the tenant), and ran at 296/s at once after an `ANALYZE`, which invalidates the
/// cached plans. The store does not count on autovacuum to get there first.
pub(crate) fn watch(pool: PgPool, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A table this role may not analyze (it does not own it) is tried once, not
        // every tick: its warning is logged once.
        let mut refused: Vec<String> = Vec::new();
        loop {
            every.tick().await;
            if pool.is_closed() {
                return;
            }
            let done = refresh_stale(&pool, &refused).await;
            refused.extend(done.failed);
        }
    })
}

/// Rows a table holds before its statistics matter to a bill run's plans.
const STALE_FLOOR: i64 = 1_000;

/// Analyzes each watched table whose statistics are missing (never analyzed, by us
/// or autovacuum) or stale (a fifth of its rows changed since), among those with
/// [`STALE_FLOOR`] rows or more; when a bill run starts, and every [`WATCH_EVERY`]. A book imported row by row through the API, on a
/// server whose autovacuum is off or late, would otherwise be planned as if empty:
/// measured at 10,000 accounts, 131 invoices/s instead of thousands. PostgreSQL's
/// own counters (`pg_stat_user_tables`) say which; a failed `ANALYZE` (a role that
/// does not own the table) is logged and otherwise ignored. Tables this role may
/// not analyze (neither their owner nor a superuser: PostgreSQL would skip them
/// with a warning) and tables in `skip` are left alone.
pub(crate) async fn refresh_stale(pool: &PgPool, skip: &[String]) -> Refreshed {
    let stale: Result<Vec<String>, sqlx::Error> = sqlx::query_scalar(
        "SELECT s.relname::text FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
         WHERE s.schemaname = current_schema() AND s.relname = ANY($1) AND s.n_live_tup >= $2 \
         AND (COALESCE(s.last_analyze, s.last_autoanalyze) IS NULL \
              OR s.n_mod_since_analyze * 5 > s.n_live_tup) \
         AND (pg_has_role(c.relowner, 'MEMBER') \
              OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user))",
    )
    .bind(&WATCHED[..])
    .bind(STALE_FLOOR)
    .fetch_all(pool)
    .await;
    let stale = match stale {
        Ok(stale) => stale,
        Err(e) => {
            tracing::warn!(error = %e, "reading table statistics failed");
            return Refreshed::default();
        }
    };
    let mut done = Refreshed::default();
    for table in stale.into_iter().filter(|t| !skip.contains(t)) {
        // Only names from WATCHED come back, so the text is ours.
        let statement = format!("ANALYZE {table}");
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(pool)
            .await
        {
            tracing::warn!(error = %e, table, "analyzing a table failed");
            done.failed.push(table);
        } else {
            tracing::debug!(table, "analyzed stale statistics");
            done.analyzed.push(table);
        }
    }
    done
}

/// What [`refresh_stale`] did: the tables it analyzed, and those whose `ANALYZE` failed.
#[derive(Debug, Default)]
pub(crate) struct Refreshed {
    pub analyzed: Vec<String>,
    pub failed: Vec<String>,
}

/// The counts after `rows` more, from `base` rows at the last analysis and `since`
/// added after it, and whether that calls for analyzing again (which resets them).
fn grown(base: u64, since: u64, rows: u64) -> ((u64, u64), bool) {
    let since = since + rows;
    if since >= FLOOR.max(base / 2) {
        ((base + since, 0), true)
    } else {
        ((base, since), false)
    }
}

/// The planner's own idea of the ledger's size (0 if never analyzed).
async fn estimated_rows(pool: &PgPool) -> u64 {
    sqlx::query_scalar::<_, f32>(
        "SELECT reltuples FROM pg_class WHERE oid = 'billing_ledger'::regclass",
    )
    .fetch_one(pool)
    .await
    .map_or(0, |n| n.max(0.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynabill_app::Store;
    use dynabill_store_contract::{PostgresSchema, fresh_postgres_schema};

    /// `reltuples` of the ledger: -1 until PostgreSQL has analyzed it.
    async fn ledger_reltuples(pool: &PgPool) -> f32 {
        sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = 'billing_ledger'::regclass")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_store_analyzes_the_ledger_once_its_commits_pass_the_floor() {
        let Some(schema) = fresh_postgres_schema().await else {
            println!("skipped: DYNABILL_TEST_POSTGRES_URL unset");
            return;
        };
        let store = crate::PgStore::connect(schema.url()).await.unwrap();
        store.migrate().await.unwrap();
        let backend = store.backend();
        assert_eq!(ledger_reltuples(&backend.pool).await, -1.0);

        backend.ledger_growth.add(&backend.pool, FLOOR - 1).await;
        assert_eq!(ledger_reltuples(&backend.pool).await, -1.0, "not yet");
        backend.ledger_growth.add(&backend.pool, 1).await;
        assert_eq!(
            ledger_reltuples(&backend.pool).await,
            0.0,
            "analyzed (and empty)"
        );
    }

    /// `reltuples` of `table`: -1 until PostgreSQL has analyzed it.
    async fn reltuples(pool: &PgPool, table: &str) -> f32 {
        sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = $1::regclass")
            .bind(table)
            .fetch_one(pool)
            .await
            .unwrap()
    }

    /// A migrated store on a fresh schema holding [`book_of_1500_accounts`], and
    /// its pool; `None` (the test is skipped) without a PostgreSQL to test on.
    async fn store_with_a_book() -> Option<(PostgresSchema, crate::PgStore, PgPool)> {
        let Some(schema) = fresh_postgres_schema().await else {
            println!("skipped: DYNABILL_TEST_POSTGRES_URL unset");
            return None;
        };
        let store = crate::PgStore::connect(schema.url()).await.unwrap();
        store.migrate().await.unwrap();
        let pool = store.backend().pool.clone();
        book_of_1500_accounts(&pool).await;
        Some((schema, store, pool))
    }

    /// A book imported row by row, never analyzed: 1,500 accounts, no plans, once
    /// PostgreSQL has counted them.
    async fn book_of_1500_accounts(pool: &PgPool) {
        // A book imported row by row, never analyzed: 1,500 accounts, no plans.
        sqlx::query(
            "INSERT INTO tenants (app_key, name, currency, time_zone, created_at) \
             VALUES ('k', 't', 'USD', 'UTC', 0)",
        )
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO accounts (tenant_id, ext_id, name, account_type, status, email, \
             due_date_method, due_date_days, invoice_grouping, currency, tax_exempt, \
             created_at, updated_at) \
             SELECT (SELECT id FROM tenants), 'A' || n, 'A', 1, 1, 'a@example.com', 1, 30, 1, \
             'USD', FALSE, 0, 0 FROM generate_series(1, 1500) AS n",
        )
        .execute(pool)
        .await
        .unwrap();
        // The statistics collector reports the inserts once they are flushed.
        let mut reported = false;
        for _ in 0..50 {
            let live: i64 = sqlx::query_scalar(
                "SELECT n_live_tup FROM pg_stat_user_tables \
                 WHERE schemaname = current_schema() AND relname = 'accounts'",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            if live >= 1500 {
                reported = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(reported, "PostgreSQL counted the inserted accounts");
    }

    #[tokio::test]
    async fn the_store_analyzes_the_tables_of_the_hot_paths_by_itself() {
        let Some((schema, store, pool)) = store_with_a_book().await else {
            return;
        };
        assert_eq!(reltuples(&pool, "accounts").await, -1.0);
        // No bill run, no request: the watcher finds the table never analyzed.
        let watcher = watch(pool.clone(), std::time::Duration::from_millis(100));
        let mut analyzed = false;
        for _ in 0..100 {
            if reltuples(&pool, "accounts").await == 1500.0 {
                analyzed = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        watcher.abort();
        assert!(analyzed, "the watcher analyzed the accounts");
        assert_eq!(reltuples(&pool, "plans").await, -1.0, "below the floor");
        store.close().await;
        schema.drop_schema().await;
    }

    #[tokio::test]
    async fn a_role_that_does_not_own_the_tables_leaves_them_alone() {
        let Some((schema, store, pool)) = store_with_a_book().await else {
            return;
        };
        // A login role that may read the schema but owns nothing in it (created
        // once per cluster; concurrent tests may race to create it).
        let created = sqlx::raw_sql(
            "DO $$ BEGIN CREATE ROLE dynabill_test_reader LOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
        )
        .execute(&pool)
        .await;
        let Some(reader_url) = schema
            .url()
            .strip_prefix("postgres://postgres@")
            .map(|rest| format!("postgres://dynabill_test_reader@{rest}"))
        else {
            println!("skipped: the test URL's user is not postgres");
            return;
        };
        created.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(
            "GRANT USAGE ON SCHEMA current_schema_placeholder TO dynabill_test_reader"
                .replace("current_schema_placeholder", &current_schema(&pool).await),
        ))
        .execute(&pool)
        .await
        .unwrap();
        let reader = PgPool::connect(&reader_url).await.unwrap();
        let done = refresh_stale(&reader, &[]).await;
        assert!(
            done.analyzed.is_empty() && done.failed.is_empty(),
            "no ANALYZE tried: {done:?}"
        );
        assert_eq!(reltuples(&pool, "accounts").await, -1.0, "left alone");
        reader.close().await;
        store.close().await;
        schema.drop_schema().await;
    }

    async fn current_schema(pool: &PgPool) -> String {
        sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn tables_to_skip_are_left_alone() {
        let Some((schema, store, pool)) = store_with_a_book().await else {
            return;
        };
        let done = refresh_stale(&pool, &["accounts".to_owned()]).await;
        assert!(
            done.analyzed.is_empty() && done.failed.is_empty(),
            "{done:?}"
        );
        assert_eq!(reltuples(&pool, "accounts").await, -1.0, "skipped");
        let done = refresh_stale(&pool, &[]).await;
        assert_eq!(done.analyzed, ["accounts"]);
        assert_eq!(reltuples(&pool, "accounts").await, 1500.0, "analyzed");
        store.close().await;
        schema.drop_schema().await;
    }

    #[tokio::test]
    async fn a_bill_run_analyzes_the_tables_it_reads_when_their_statistics_are_missing() {
        let Some((schema, store, pool)) = store_with_a_book().await else {
            return;
        };
        assert_eq!(reltuples(&pool, "accounts").await, -1.0);

        let tenant = dynabill_core::domain::TenantId(
            sqlx::query_scalar("SELECT id FROM tenants")
                .fetch_one(&pool)
                .await
                .unwrap(),
        );
        let lease = dynabill_app::store::Lease {
            now: jiff::Timestamp::now(),
            length: std::time::Duration::from_secs(30),
        };
        let date = jiff::civil::date(2024, 1, 1);
        dynabill_app::store::BillRunStore::open_bill_run(&store, tenant, date, lease)
            .await
            .unwrap();
        assert_eq!(reltuples(&pool, "accounts").await, 1500.0, "analyzed");
        assert_eq!(
            reltuples(&pool, "plans").await,
            -1.0,
            "a table below the floor is left alone"
        );
        store.close().await;
        schema.drop_schema().await;
    }

    #[test]
    fn a_small_ledger_is_analyzed_after_the_floor() {
        assert_eq!(grown(0, 0, 9_999), ((0, 9_999), false));
        assert_eq!(grown(0, 9_999, 1), ((10_000, 0), true));
    }

    #[test]
    fn a_large_ledger_is_analyzed_when_grown_by_half() {
        assert_eq!(grown(300_000, 100_000, 49_999), ((300_000, 149_999), false));
        assert_eq!(grown(300_000, 149_999, 1), ((450_000, 0), true));
    }

    #[test]
    fn a_run_of_a_hundred_thousand_accounts_analyzes_a_handful_of_times() {
        // 300,000 entries, 1,500 per commit, from an empty ledger.
        let (mut counts, mut analyses) = ((0, 0), 0);
        for _ in 0..200 {
            let (next, due) = grown(counts.0, counts.1, 1_500);
            counts = next;
            analyses += u32::from(due);
        }
        assert_eq!(analyses, 8);
        assert_eq!(counts.0 + counts.1, 300_000);
    }
}
