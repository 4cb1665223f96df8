//! Every list filter the dynamic door offers is served by an index on PostgreSQL.
//! The book is seeded straight into a fresh schema (20,000 rows a table), with
//! autovacuum off for its tables. With statistics absent (as after an import) no
//! list's count or page reads a whole table, and no list that can hold the whole
//! book is sorted for a page. (Without statistics the planner cannot tell a
//! selective filter from another, and may walk the tenant's records in key order
//! checking it; that each filter's own index bounds the read is asserted on
//! SQLite, whose planner uses no statistics here.)

use dynabill_app::Store;
use dynabill_core::domain::TenantId;
use dynabill_postgres::PgStore;
use dynabill_store_contract::fresh_postgres_schema;

const ROWS: i64 = 20_000;

/// A tenant's book, straight into the tables: accounts (every 50th deleted, a
/// third inactive), a plan, a recurring and a one-time item each, and an invoice
/// each (statuses and dates spread).
fn seed_statements() -> Vec<String> {
    let now = 1_700_000_000_000_000_i64;
    vec![
        "INSERT INTO tenants (app_key, name, currency, time_zone, created_at) \
         VALUES ('plans', 'Plans', 'USD', 'UTC', 0)"
            .to_owned(),
        format!(
            "INSERT INTO accounts (tenant_id, ext_id, name, account_type, status, email, \
             due_date_method, due_date_days, invoice_grouping, currency, tax_exempt, \
             created_at, updated_at, deleted_at) \
             SELECT 1, 'A' || n, 'Account', 1, 1 + n % 3, 'a@example.com', 1, 30, 1, 'USD', \
             false, {now}, {now} + n, CASE WHEN n % 50 = 0 THEN {now} END \
             FROM generate_series(1, {ROWS}) AS g (n)"
        ),
        format!(
            "INSERT INTO plans (tenant_id, account_id, ext_id, start_date, auto_renew, \
             renewal_term_months, currency, created_at, updated_at, deleted_at) \
             SELECT 1, id, 'P' || id, DATE '2024-01-01', false, 12, 'USD', {now}, {now}, \
             CASE WHEN id % 50 = 0 THEN {now} END FROM accounts"
        ),
        format!(
            "INSERT INTO recurring_items (tenant_id, plan_id, ext_id, product_code, name, \
             billing_period, period_count, timing, start_date, created_at, updated_at, deleted_at) \
             SELECT 1, id, 'R' || id, 'SKU', 'Item', 1, 1, 1, DATE '2024-01-01', {now}, {now}, \
             CASE WHEN id % 50 = 0 THEN {now} END FROM plans"
        ),
        format!(
            "INSERT INTO one_time_items (tenant_id, plan_id, ext_id, product_code, name, \
             quantity, unit_price, charge_date, created_at, updated_at, deleted_at) \
             SELECT 1, id, 'O' || id, 'SETUP', 'Setup', 1, 10, DATE '2024-01-01', {now}, {now}, \
             CASE WHEN id % 50 = 0 THEN {now} END FROM plans"
        ),
        format!(
            "INSERT INTO invoices (tenant_id, account_id, plan_id, status, invoice_date, \
             due_date, currency, subtotal, tax_total, total, credit_applied, credit_added, \
             amount_due, created_at, updated_at) \
             SELECT 1, account_id, CASE WHEN id % 10 = 0 THEN id END, 1 + id % 5, \
             DATE '2024-01-01' + (id % 365)::int, DATE '2024-02-01', 'USD', 10, 0, 10, 0, 0, \
             10, {now}, {now} FROM plans"
        ),
    ]
}

#[tokio::test]
async fn every_list_filter_is_served_by_an_index() {
    let Some(schema) = fresh_postgres_schema().await else {
        println!("skipped: DYNABILL_TEST_POSTGRES_URL unset");
        return;
    };
    let store = PgStore::connect(schema.url())
        .await
        .expect("connecting to PostgreSQL");
    store.migrate().await.expect("migrating PostgreSQL");
    let pool = sqlx::PgPool::connect(schema.url())
        .await
        .expect("connecting to PostgreSQL");
    for table in [
        "accounts",
        "plans",
        "recurring_items",
        "one_time_items",
        "invoices",
    ] {
        let off = format!("ALTER TABLE {table} SET (autovacuum_enabled = false)");
        sqlx::query(sqlx::AssertSqlSafe(off))
            .execute(&pool)
            .await
            .expect("turning autovacuum off");
    }
    // Seeded without the event log's triggers (`session_replication_role`): with
    // them, 100,000 rows take long enough for the store's statistics watcher
    // (every 10 s) to analyze the tables midway, and this test is about plans
    // without statistics (`batch_plans.rs` checks both).
    let mut conn = pool.acquire().await.expect("a connection");
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await
        .expect("turning triggers off for the seeding");
    for statement in seed_statements() {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut *conn)
            .await
            .expect("seeding the book");
    }
    drop(conn);
    let plans = store
        .list_query_plans(TenantId(1))
        .await
        .expect("explaining the lists");
    assert!(
        plans.len() >= 100,
        "every list and filter, got {}",
        plans.len()
    );
    // The range filters' first read, a window of keys in key order, is among them.
    assert!(
        plans
            .iter()
            .filter(|p| p.case.ends_with("window in key order"))
            .count()
            >= 4,
        "the windows of the range filters are planned too"
    );
    pool.close().await;
    let problems: Vec<String> = plans.iter().flat_map(|p| p.full_reads()).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
