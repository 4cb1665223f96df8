//! `dynabill bill-run`.

use std::io::IsTerminal;

use anyhow::Context;
use clap::Args;
use dynabill_app::App;
use dynabill_app::billing::{ACCOUNT_BATCH, BillRunOptions, BillRunSummary, DEFAULT_LEASE};

use super::{DatabaseArgs, with_app};

#[derive(Debug, Args)]
pub(crate) struct BillRunArgs {
    /// The bill run's date (YYYY-MM-DD): what is due on or before it is billed.
    #[arg(long, env = "DYNABILL_BILL_RUN_DATE")]
    date: jiff::civil::Date,
    /// Only this tenant [default: every tenant]
    #[arg(long, env = "DYNABILL_APP_KEY")]
    app_key: Option<String>,
    /// Batches billed at once by this process (PostgreSQL; SQLite has one writer and uses 1)
    #[arg(long, env = "DYNABILL_BILL_RUN_WORKERS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    workers: u32,
    /// Accounts per batch
    #[arg(long, env = "DYNABILL_BILL_RUN_BATCH_SIZE", default_value_t = ACCOUNT_BATCH,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    batch_size: u32,
    /// Seconds a claimed batch stays this process's without renewal; a batch of a
    /// process that stopped is taken over by the others after it
    #[arg(long, env = "DYNABILL_BILL_RUN_LEASE_SECONDS", default_value_t = DEFAULT_LEASE.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    lease_seconds: u64,
    /// Compute what the run would bill and print its summary; write nothing
    #[arg(long, env = "DYNABILL_BILL_RUN_DRY_RUN")]
    dry_run: bool,
    #[command(flatten)]
    database: DatabaseArgs,
}

pub(crate) async fn run(
    config_file: Option<&std::path::Path>,
    args: BillRunArgs,
) -> anyhow::Result<()> {
    let (date, app_key, dry_run) = (args.date, args.app_key, args.dry_run);
    let options = BillRunOptions {
        workers: args.workers,
        batch_size: args.batch_size,
        lease: std::time::Duration::from_secs(args.lease_seconds),
    };
    with_app(config_file, args.database, async |app| {
        bill_run(app, date, app_key.as_deref(), options, dry_run).await
    })
    .await
}

#[expect(
    clippy::float_arithmetic,
    reason = "the run's duration in seconds, not an amount"
)]
/// `dynabill bill-run`: one tenant or all, a progress bar on a terminal, a JSON
/// summary on stdout of what this process billed (with other processes running the
/// same run, their summaries add up to the run).
async fn bill_run(
    app: &App,
    date: jiff::civil::Date,
    app_key: Option<&str>,
    options: BillRunOptions,
    dry_run: bool,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let tenants = match app_key {
        Some(key) => vec![app.tenant_by_app_key(key).await?],
        None => app.tenants().await?,
    };
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg} [{elapsed_precise}] {pos} accounts ({per_sec})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        Some(bar)
    } else {
        None
    };
    let mut summary = BillRunSummary::default();
    for tenant in &tenants {
        if let Some(bar) = &bar {
            bar.set_message(format!("billing {}", tenant.name));
        }
        let base = summary.accounts_seen;
        let progress = |seen: u64| {
            if let Some(bar) = &bar {
                bar.set_position(base + seen);
            }
        };
        let done = if dry_run {
            app.dry_run(tenant, date, &progress).await?
        } else {
            app.bill_run_with(tenant, date, options, &progress)
                .await
                .with_context(|| {
                    format!(
                        "the bill run of tenant {:?} for {date} stopped; what it committed stays \
                         billed, and running it again for {date} bills the rest",
                        tenant.name
                    )
                })?
        };
        summary.add(&done);
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let totals: serde_json::Map<String, serde_json::Value> = summary
        .totals
        .iter()
        .map(|(currency, total)| {
            (
                currency.clone(),
                serde_json::Value::String(total.to_string()),
            )
        })
        .collect();
    let json = serde_json::json!({
        "Date": date.to_string(),
        "DryRun": dry_run,
        "Tenants": summary.tenants,
        "Workers": if app.store().parallel_writes() { options.workers } else { 1 },
        "AccountsSeen": summary.accounts_seen,
        "AccountsBilled": summary.accounts_billed,
        "Invoices": summary.invoices,
        "Lines": summary.lines,
        "BatchesTakenOver": summary.batches_taken_over,
        "Totals": totals,
        "Seconds": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    });
    println!("{json}");
    Ok(())
}
