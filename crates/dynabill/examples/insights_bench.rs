//! Insights benchmark: times each insight (issue 15) on a seeded book.
//!
//! ```sh
//! cargo run --release --example bill_run_bench -- --accounts 100000 --seed-only --database-url URL
//! cargo run --release --example insights_bench -- --database-url URL --app-key KEY [--bill-run 2024-03-01]
//! ```
//!
//! The book is `bill_run_bench`'s (one plan from 2024-01-01 and three monthly
//! items per account), seeded through the use cases. `--bill-run DATE` first
//! bills it for DATE (invoices Posted and, a month on, overdue: every account
//! then has a billing issue, the heaviest case of `billing-issues`).
//!
//! Prints, as JSON, the seconds each insight took (`mrr` today, `mrr-movements`
//! over the twelve months to the current one, `renewals` within 30 days,
//! `billing-issues`, `upsell-candidates`), a figure of each answer to show it
//! did the work, and the process's peak resident memory (VmHWM) after each.

#![expect(clippy::float_arithmetic, reason = "timings, never amounts")]

use std::sync::Arc;
use std::time::Instant;

use dynabill_app::{App, SystemClock};

#[path = "common/mod.rs"]
mod common;
use common::{arg, peak_rss_mib};

fn seconds(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = arg("--database-url").ok_or_else(|| anyhow::anyhow!("--database-url is required"))?;
    let key = arg("--app-key").ok_or_else(|| anyhow::anyhow!("--app-key is required"))?;
    let store = dynabill::storage::open(&url).await?;
    let app = App::new(store, Arc::new(SystemClock));
    let tenant = app.tenant_by_app_key(&key).await?;
    let mut report = serde_json::Map::new();

    if let Some(date) = arg("--bill-run") {
        let started = Instant::now();
        let summary = app.bill_run(&tenant, date.parse()?, &|_| {}).await?;
        report.insert(
            "bill_run".into(),
            serde_json::json!({"seconds": seconds(started), "invoices": summary.invoices}),
        );
    }
    let rss_before = peak_rss_mib();

    // The floor: reading every billable account's plans and items, as the
    // insights that scan the book read them, and nothing else.
    let started = Instant::now();
    let mut batches = dynabill_app::billing::BillableBatches::default();
    let mut items = 0;
    while let Some(ids) = batches.next(&app, &tenant).await? {
        for book in app.store().billing_snapshot(tenant.id, &ids).await? {
            items += book.items.len();
        }
    }
    report.insert(
        "read_only".into(),
        serde_json::json!({"seconds": seconds(started), "items": items}),
    );

    let started = Instant::now();
    let mrr = app.mrr(&tenant, None, None, None).await?;
    let mrr_figure = mrr
        .currencies
        .first()
        .map(|c| (c.mrr.to_string(), c.active_items));
    report.insert(
        "mrr".into(),
        serde_json::json!({"seconds": seconds(started), "mrr_and_items": mrr_figure,
            "peak_rss_mib": peak_rss_mib()}),
    );

    let started = Instant::now();
    let movements = app.mrr_movements(&tenant, None, None, false).await?;
    report.insert(
        "mrr_movements".into(),
        serde_json::json!({"seconds": seconds(started), "months": movements.months.len(),
            "peak_rss_mib": peak_rss_mib()}),
    );

    let started = Instant::now();
    let renewals = app.renewals(&tenant, 30, 100).await?;
    report.insert(
        "renewals".into(),
        serde_json::json!({"seconds": seconds(started), "total": renewals.total,
            "peak_rss_mib": peak_rss_mib()}),
    );

    let started = Instant::now();
    let issues = app.billing_issues(&tenant, 100).await?;
    report.insert(
        "billing_issues".into(),
        serde_json::json!({"seconds": seconds(started), "total": issues.total,
            "peak_rss_mib": peak_rss_mib()}),
    );

    let started = Instant::now();
    let upsell = app.upsell_candidates(&tenant, 100).await?;
    report.insert(
        "upsell_candidates".into(),
        serde_json::json!({"seconds": seconds(started), "total": upsell.total,
            "peak_rss_mib": peak_rss_mib()}),
    );
    report.insert("peak_rss_mib_before".into(), serde_json::json!(rss_before));
    app.store().close().await;
    println!("{}", serde_json::Value::Object(report));
    Ok(())
}
