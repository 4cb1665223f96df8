//! `dynabill serve` and `dynabill migrate`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use dynabill_app::tenants::DEFAULT_USER_NAME;
use dynabill_app::{App, SystemClock};
use dynabill_http::{HttpOptions, RateLimit};

use super::tenant::print_credential;
use super::{DatabaseArgs, tax_engine};
use crate::config::{Config, Overrides};
use crate::server::{RunningServer, shutdown_signal};
use crate::storage;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "DYNABILL_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Do not run each tenant's daily bill run at its BillRunHour.
    #[arg(long, env = "DYNABILL_NO_SCHEDULER")]
    no_scheduler: bool,
    /// Let each tenant's "today" be set (POST /api/testclock); the scheduler and
    /// every default date follow it. For integration testing, never production.
    #[arg(long, env = "DYNABILL_TEST_CLOCK")]
    test_clock: bool,
    /// Let webhook endpoints be loopback or private addresses (receivers on this
    /// machine or network; tests). Off, they are refused.
    #[arg(long, env = "DYNABILL_ALLOW_PRIVATE_WEBHOOKS")]
    allow_private_webhooks: bool,
    /// How long a server's claim on a webhook delivery lasts: after a crash, its
    /// claimed deliveries are sent by another server (or this one restarted) once
    /// it lapses. Keep it above the 15 s attempt timeout [default: 60]
    #[arg(long, env = "DYNABILL_WEBHOOK_LEASE_SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    webhook_lease_seconds: Option<u64>,
    /// Requests per second each tenant may make, with bursts of twice that; beyond it, 429 [default: no limit]
    #[arg(long, env = "DYNABILL_RATE_LIMIT")]
    rate_limit: Option<u32>,
    /// Serve GET /metrics (Prometheus text format) on this address instead of
    /// the main listener, e.g. an address only the monitoring network reaches
    /// [default: on the main listener]
    #[arg(long, env = "DYNABILL_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// A TOML file with the invoice PDF's words and looks: seller block,
    /// labels, footer, paper (A4 or Letter), accent colour (docs/CONSOLE.md)
    #[arg(long, env = "DYNABILL_INVOICE_TEMPLATE")]
    invoice_template: Option<std::path::PathBuf>,
}

pub(crate) async fn serve(config_file: Option<&Path>, args: ServeArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        listen: args.listen,
        rate_limit: args.rate_limit,
        metrics_listen: args.metrics_listen,
        invoice_template: args.invoice_template,
        ..args.database.overrides()
    };
    let mode = ServeMode {
        scheduler: !args.no_scheduler,
        test_clock: args.test_clock,
        private_webhooks: args.allow_private_webhooks,
        webhook_lease: args
            .webhook_lease_seconds
            .map_or(crate::webhooks::LEASE, std::time::Duration::from_secs),
    };
    run_server(Config::load(config_file, overrides)?, mode).await
}

pub(crate) async fn migrate(config_file: Option<&Path>, db: DatabaseArgs) -> anyhow::Result<()> {
    let config = Config::load(config_file, db.overrides())?;
    let store = storage::open(&config.database_url).await?;
    store.close().await;
    tracing::info!("database is up to date");
    Ok(())
}

/// How `serve` runs besides answering requests.
#[derive(Clone, Copy, Debug)]
struct ServeMode {
    scheduler: bool,
    test_clock: bool,
    private_webhooks: bool,
    webhook_lease: std::time::Duration,
}

async fn run_server(config: Config, mode: ServeMode) -> anyhow::Result<()> {
    let store = storage::open(&config.database_url).await?;
    let app = App::new(store, Arc::new(SystemClock)).with_tax_engine(tax_engine()?);
    let mut app = crate::secret_key::unlock(app, &config.secret_key_file).await?;
    if mode.test_clock {
        tracing::warn!("test clock on: tenants' dates can be set through /api/testclock");
        app = app.with_test_clock();
    }
    if mode.private_webhooks {
        tracing::warn!("webhook endpoints may be loopback or private addresses");
        app = app.with_private_webhooks();
    }
    if app.tenant_count().await? == 0 {
        let issued = app
            .create_tenant("default", "USD", "UTC", DEFAULT_USER_NAME)
            .await
            .context("creating the first tenant")?;
        print_credential(&issued)?;
        tracing::info!(app_key = %issued.app_key, "created the first tenant; its credentials were printed once on stdout");
    }
    let invoice_template = match &config.invoice_template {
        Some(path) => Some(
            dynabill_http::pdf::InvoiceTemplate::from_file(path)
                .map_err(|e| anyhow::anyhow!("invoice template {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let options = HttpOptions {
        rate_limit: config.rate_limit.map(RateLimit::per_second),
        metrics_elsewhere: config.metrics_listen.is_some(),
        invoice_template,
    };
    let server = RunningServer::start(app.clone(), config.listen, options).await?;
    let metrics = match config.metrics_listen {
        Some(listen) => {
            let metrics = RunningServer::start_metrics(app.clone(), listen).await?;
            tracing::info!(address = %metrics.addr, "metrics on {}/metrics", metrics.url());
            Some(metrics)
        }
        None => None,
    };
    let scheduler = mode.scheduler.then(|| crate::scheduler::spawn(app.clone()));
    let webhooks = crate::webhooks::spawn(
        app.clone(),
        crate::webhooks::WorkerOptions {
            allow_private: mode.private_webhooks,
            lease: mode.webhook_lease,
        },
    )?;
    tracing::info!(address = %server.addr, "listening on {}", server.url());
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    if let Some(scheduler) = scheduler {
        scheduler.stop().await;
    }
    webhooks.stop().await;
    server.shutdown().await?;
    if let Some(metrics) = metrics {
        metrics.shutdown().await?;
    }
    app.store().close().await;
    tracing::info!("stopped");
    Ok(())
}
