//! Bill-run benchmark: seeds N accounts (one plan, three recurring items and one
//! one-time item each) through the use cases, then times one bill run.
//!
//! ```sh
//! cargo run --release --example bill_run_bench -- --accounts 10000 [--database-url URL] [--workers N]
//! ```
//!
//! The book is seeded row by row through the use cases, as the API seeds it, and
//! PostgreSQL is left as a new user leaves it: no `ANALYZE` (autovacuum may be off or
//! late). `--analyze` analyzes the seeded tables after each chunk of 10,000 accounts,
//! as a production autovacuum would.
//!
//! `--seed-only` stops after seeding (and prints the tenant's app key), so that a
//! seeded PostgreSQL database can serve as a template for repeated runs of
//! `dynabill bill-run --date 2024-01-15` on copies of it.
//!
//! `--without-events` drops, after seeding, the triggers that write the event log
//! on the tables a bill run writes: the same run without its events, to measure
//! what they cost (ARCHITECTURE.md, "Events").
//!
//! Prints seeding time, the bill run's invoices/s and lines/s, the events it wrote
//! (and per second), and the process's peak resident memory (VmHWM) after seeding
//! and after the bill run, as JSON.

#![expect(clippy::float_arithmetic, reason = "timings and rates, never amounts")]

use std::sync::Arc;
use std::time::Instant;

use dynabill_app::billing::BillRunOptions;
use dynabill_app::model::{
    AccountPatch, OneTimeItemPatch, PlanPatch, RecordKey, RecurringItemPatch,
};
use dynabill_app::{App, SystemClock};
use dynabill_core::calendar::BillingPeriod;
use dynabill_core::domain::{AccountStatus, AccountType};
use jiff::civil::date;
use rust_decimal::Decimal;

#[path = "common/mod.rs"]
mod common;
use common::{arg, peak_rss_mib};

/// Accounts seeded between two `ANALYZE`s on PostgreSQL.
const SEED_CHUNK: u32 = 10_000;

/// Autovacuum may be off (it is on this project's CI machine): fresh statistics of
/// the seeded tables, as autovacuum would keep them on a production database, after
/// every chunk of the seeding and so before the bill run. Not of the invoice tables:
/// statistics saying "empty" would make PostgreSQL plan the checks of the run's
/// inserts as scans of a tiny table (never-analyzed tables are assumed to hold at
/// least ten pages, so they get index lookups).
async fn analyze_seeded(url: &str) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(url).await?;
    sqlx::query(
        "ANALYZE tenants, accounts, plans, recurring_items, recurring_item_changes, \
         one_time_items",
    )
    .execute(&pool)
    .await?;
    pool.close().await;
    Ok(())
}

/// Runs `statements` on the database at `url`, one by one.
async fn execute(url: &str, statements: &[&str]) -> anyhow::Result<()> {
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await?;
        for statement in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*statement))
                .execute(&pool)
                .await?;
        }
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(url).await?;
        for statement in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*statement))
                .execute(&pool)
                .await?;
        }
        pool.close().await;
    }
    Ok(())
}

/// How many events the database at `url` holds.
async fn events_written(url: &str) -> anyhow::Result<i64> {
    let sql = "SELECT COUNT(*) FROM events";
    Ok(if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await?;
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&pool).await?;
        pool.close().await;
        n
    } else {
        let pool = sqlx::SqlitePool::connect(url).await?;
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&pool).await?;
        pool.close().await;
        n
    })
}

/// The triggers that log the changes a bill run makes, dropped (`--without-events`).
async fn drop_event_triggers(url: &str) -> anyhow::Result<()> {
    let on = |trigger: &str, table: &str| {
        if url.starts_with("postgres") {
            format!("DROP TRIGGER {trigger} ON {table}")
        } else {
            format!("DROP TRIGGER {trigger}")
        }
    };
    let drops = [
        on("invoices_event_created", "invoices"),
        on("invoices_event_changed", "invoices"),
        on("accounts_event_changed", "accounts"),
        on("plans_event_changed", "plans"),
        on("recurring_items_event_staged", "recurring_items"),
        on("recurring_item_changes_event", "recurring_item_changes"),
        on("one_time_items_event_changed", "one_time_items"),
        on("bill_runs_event_completed", "bill_runs"),
    ];
    let drops: Vec<&str> = drops.iter().map(String::as_str).collect();
    execute(url, &drops).await
}

/// Resets the peak-RSS high-water mark so that the bill run's own peak is measured.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let accounts: u32 = arg("--accounts").map_or(Ok(10_000), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let url = arg("--database-url")
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let store = dynabill::storage::open(&url).await?;
    let app = App::new(store, Arc::new(SystemClock));
    let issued = app.create_tenant("bench", "USD", "UTC", "api").await?;
    let tenant = app.tenant_by_app_key(&issued.app_key).await?;

    let seeding = Instant::now();
    let start = date(2024, 1, 1);
    let concurrency = 8;
    let postgres = url.starts_with("postgres");
    for chunk in (0..accounts).step_by(SEED_CHUNK as usize) {
        let end = (chunk + SEED_CHUNK).min(accounts);
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..concurrency {
            let app = app.clone();
            let tenant = tenant.clone();
            tasks.spawn(async move {
                for n in (chunk + worker..end).step_by(concurrency as usize) {
                    let account = format!("A{n}");
                    let plan = format!("P{n}");
                    app.upsert_account(
                        &tenant,
                        None,
                        AccountPatch {
                            ext_id: Some(account.clone()),
                            name: Some(format!("Account {n}")),
                            account_type: Some(AccountType::Business),
                            status: Some(AccountStatus::Active),
                            email: Some("billing@example.com".parse().expect("a valid e-mail")),
                            ..AccountPatch::default()
                        },
                    )
                    .await?;
                    app.upsert_plan(
                        &tenant,
                        None,
                        PlanPatch {
                            ext_id: Some(plan.clone()),
                            account: Some(RecordKey::ExtId(account)),
                            start_date: Some(start),
                            billing_day: Some(Some(1)),
                            ..PlanPatch::default()
                        },
                    )
                    .await?;
                    for (k, price) in [(1, "10.00"), (2, "25.50"), (3, "99.99")] {
                        app.upsert_recurring_item(
                            &tenant,
                            None,
                            RecurringItemPatch {
                                ext_id: Some(format!("R{n}-{k}")),
                                plan: Some(RecordKey::ExtId(plan.clone())),
                                product_code: Some(format!("SKU-{k}")),
                                name: Some(format!("Item {k}")),
                                quantity: Some(Decimal::from(k)),
                                unit_price: Some(price.parse()?),
                                billing_period: Some(BillingPeriod::Monthly),
                                ..RecurringItemPatch::default()
                            },
                        )
                        .await?;
                    }
                    app.upsert_one_time_item(
                        &tenant,
                        None,
                        OneTimeItemPatch {
                            ext_id: Some(format!("O{n}")),
                            plan: Some(RecordKey::ExtId(plan)),
                            product_code: Some("SETUP".into()),
                            name: Some("Setup".into()),
                            quantity: Some(Decimal::ONE),
                            unit_price: Some("150.00".parse()?),
                            charge_date: Some(start),
                            ..OneTimeItemPatch::default()
                        },
                    )
                    .await?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        if postgres && std::env::args().any(|a| a == "--analyze") {
            analyze_seeded(&url).await?;
        }
    }
    let seeded = seeding.elapsed().as_secs_f64();
    let rss_after_seed = peak_rss_mib();
    if std::env::args().any(|a| a == "--seed-only") {
        app.store().close().await;
        let report = serde_json::json!({
            "accounts": accounts,
            "app_key": issued.app_key,
            "seed_seconds": (seeded * 100.0).round() / 100.0,
        });
        println!("{report}");
        return Ok(());
    }
    if std::env::args().any(|a| a == "--without-events") {
        drop_event_triggers(&url).await?;
    }
    let events_before = events_written(&url).await?;
    reset_peak_rss();

    let billing = Instant::now();
    let workers: u32 = arg("--workers").map_or(Ok(1), |w| w.parse())?;
    let options = BillRunOptions {
        workers,
        ..BillRunOptions::default()
    };
    let summary = app
        .bill_run_with(&tenant, date(2024, 1, 15), options, &|_| {})
        .await?;
    let seconds = billing.elapsed().as_secs_f64();
    let rss_bill_run = peak_rss_mib();
    app.store().close().await;
    let events = events_written(&url).await? - events_before;

    let backend = if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    };
    let report = serde_json::json!({
        "backend": backend,
        "accounts": accounts,
        "workers": if app.store().parallel_writes() { workers } else { 1 },
        "seed_seconds": (seeded * 100.0).round() / 100.0,
        "bill_run_seconds": (seconds * 1000.0).round() / 1000.0,
        "invoices": summary.invoices,
        "lines": summary.lines,
        "invoices_per_second": (summary.invoices as f64 / seconds).round(),
        "lines_per_second": (summary.lines as f64 / seconds).round(),
        "events": events,
        "events_per_second": (events as f64 / seconds).round(),
        "peak_rss_mib_after_seeding": (rss_after_seed * 10.0).round() / 10.0,
        "peak_rss_mib_during_bill_run": (rss_bill_run * 10.0).round() / 10.0,
    });
    println!("{report}");
    Ok(())
}
