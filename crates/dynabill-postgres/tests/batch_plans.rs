//! The reads of a bill run's batch walk the indexes on a book PostgreSQL has
//! never analyzed (a fresh import, autovacuum off or late): their cost follows
//! the batch, not the book, whatever the statistics say. A query shape that
//! needs statistics to find its index fails here, in CI, before a benchmark
//! shows it.

use dynabill_app::Store;
use dynabill_core::domain::TenantId;
use dynabill_postgres::{PgBackend, PgStore};
use dynabill_sql::{Query, history_read, snapshot_reads};
use dynabill_store_contract::fresh_postgres_schema;
use sqlx::PgPool;

/// Tables a bill run reads, with the number of rows seeded in each.
const BOOK: [(&str, i64); 6] = [
    ("accounts", 10_000),
    ("plans", 10_000),
    ("recurring_items", 20_000),
    ("recurring_item_changes", 20_000),
    ("one_time_items", 10_000),
    ("billing_ledger", 120_000),
];

async fn run(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(pool)
        .await
        .unwrap();
}

/// 10,000 accounts, each with a plan, two monthly items (with their first history
/// entry and six months billed in the ledger) and a pending one-time item,
/// written in bulk in account order (as an import through the API writes them)
/// and never analyzed.
async fn seed(pool: &PgPool) -> TenantId {
    for (table, _) in BOOK {
        run(
            pool,
            &format!("ALTER TABLE {table} SET (autovacuum_enabled = false)"),
        )
        .await;
    }
    run(
        pool,
        "INSERT INTO tenants (app_key, name, currency, time_zone, created_at) \
         VALUES ('k', 't', 'USD', 'UTC', 0);
         INSERT INTO accounts (tenant_id, ext_id, name, account_type, status, email, \
           due_date_method, due_date_days, invoice_grouping, currency, tax_exempt, \
           created_at, updated_at) \
         SELECT 1, 'A' || n, 'A', 1, 1, 'a@example.com', 1, 30, 1, 'USD', FALSE, 0, 0 \
         FROM generate_series(1, 10000) AS n;
         INSERT INTO plans (tenant_id, account_id, ext_id, start_date, auto_renew, \
           renewal_term_months, currency, created_at, updated_at) \
         SELECT 1, id, 'P' || id, DATE '2024-01-01', FALSE, 12, 'USD', 0, 0 FROM accounts;
         INSERT INTO recurring_items (tenant_id, plan_id, ext_id, product_code, name, \
           billing_period, period_count, timing, start_date, created_at, updated_at) \
         SELECT 1, p.id, 'I' || p.id || '-' || k, 'SKU', 'Seat', 3, 1, 1, DATE '2024-01-01', 0, 0 \
         FROM plans p CROSS JOIN generate_series(1, 2) AS k ORDER BY p.id, k;
         INSERT INTO recurring_item_changes (tenant_id, item_id, kind, effective_date, \
           quantity, unit_price, start_date, recorded_at) \
         SELECT 1, id, 1, DATE '2024-01-01', 1, 10, DATE '2024-01-01', 0 FROM recurring_items;
         INSERT INTO one_time_items (tenant_id, plan_id, ext_id, product_code, name, \
           quantity, unit_price, charge_date, created_at, updated_at) \
         SELECT 1, id, 'O' || id, 'SETUP', 'Setup', 1, 50, DATE '2024-01-01', 0, 0 FROM plans;
         INSERT INTO billing_ledger (tenant_id, item_id, period_start, entry, period_end, base_seq) \
         SELECT 1, r.id, (DATE '2024-01-01' + make_interval(months => m))::date, 0, \
           (DATE '2024-02-01' + make_interval(months => m))::date, 1 \
         FROM recurring_items r CROSS JOIN generate_series(0, 5) AS m;",
    )
    .await;
    for (table, rows) in BOOK {
        let (count, reltuples): (i64, f32) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT (SELECT COUNT(*) FROM {table}), \
             (SELECT reltuples FROM pg_class WHERE oid = '{table}'::regclass)"
        )))
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(count, rows, "{table} seeded");
        assert_eq!(reltuples, -1.0, "{table} never analyzed");
    }
    TenantId(1)
}

/// The plan PostgreSQL chooses for `q`, as text.
async fn plan_of(pool: &PgPool, q: Query<PgBackend>) -> String {
    let mut conn = pool.acquire().await.unwrap();
    let lines: Vec<(String,)> = q.fetch_all(&mut *conn).await.unwrap();
    lines
        .into_iter()
        .map(|(line,)| line)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_batchs_reads_find_the_batch_through_indexes_with_statistics_absent_or_present() {
    let Some(schema) = fresh_postgres_schema().await else {
        println!("skipped: DYNABILL_TEST_POSTGRES_URL unset");
        return;
    };
    let store = PgStore::connect(schema.url()).await.unwrap();
    store.migrate().await.unwrap();
    let pool = PgPool::connect(schema.url()).await.unwrap();
    let tenant = seed(&pool).await;

    // A batch of 1,000 accounts from the middle of the book.
    let batch: Vec<i64> = (4001..=5000).collect();
    let items: Vec<i64> = sqlx::query_scalar(
        "SELECT r.id FROM recurring_items r JOIN plans p ON p.id = r.plan_id \
         WHERE p.account_id BETWEEN 4001 AND 5000 ORDER BY r.id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(items.len(), 2000);

    // Never analyzed, then analyzed (where a list of IDs alone lost its index to
    // a scan of the whole table, before the reads named the batch's range too).
    assert_reads_use_indexes(&pool, tenant, &batch, &items, false).await;
    for (table, _) in BOOK {
        run(&pool, &format!("ANALYZE {table}")).await;
    }
    assert_reads_use_indexes(&pool, tenant, &batch, &items, true).await;

    store.close().await;
    pool.close().await;
    schema.drop_schema().await;
}

/// Asserts that each read of the batch finds the batch through an index of the
/// table it is keyed on. Never analyzed, no table may be scanned whole at all;
/// analyzed, the planner may hash a small joined table, but never scan the table
/// the batch is looked up in.
async fn assert_reads_use_indexes(
    pool: &PgPool,
    tenant: TenantId,
    batch: &[i64],
    items: &[i64],
    analyzed: bool,
) {
    // Each read, and the table it looks the batch up in.
    let names = [
        ("accounts", "accounts"),
        ("plans", "plans p"),
        ("items", "plans p"),
        ("ledger", "plans p"),
        ("one-time items", "plans p"),
    ];
    let mut plans: Vec<(&str, &str, String)> = Vec::new();
    for ((name, keyed), read) in names
        .into_iter()
        .zip(snapshot_reads::<PgBackend>(tenant, batch, "EXPLAIN "))
    {
        plans.push((name, keyed, plan_of(pool, read).await));
    }
    plans.push((
        "item histories",
        "recurring_item_changes",
        plan_of(pool, history_read::<PgBackend>(tenant, items, "EXPLAIN ")).await,
    ));
    for (name, keyed, plan) in &plans {
        let whole = if analyzed {
            format!("Seq Scan on {keyed} ")
        } else {
            "Seq Scan".to_owned()
        };
        assert!(
            !plan.contains(&whole),
            "(analyzed: {analyzed}) the batch's {name} read scans a whole table:\n{plan}"
        );
        assert!(
            plan.contains("Index"),
            "(analyzed: {analyzed}) the batch's {name} read uses an index:\n{plan}"
        );
    }
}
