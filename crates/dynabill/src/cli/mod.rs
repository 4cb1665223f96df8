//! The command line: `serve`, `migrate`, `tenant ...`, `tax-rate ...`, `tax retry`,
//! `bill-run`, `webhook ...`, `insights ...`, `backup`, `secrets rotate`, one module per command. Every flag also reads a `DYNABILL_*`
//! environment variable.

mod backup;
mod bill_run;
mod insights;
mod secrets;
mod serve;
mod tax;
mod tenant;
mod webhook;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use dynabill_app::{App, SystemClock};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, Overrides};
use crate::storage;
use backup::BackupArgs;
use bill_run::BillRunArgs;
use insights::InsightsCommand;
use secrets::SecretsCommand;
use serve::ServeArgs;
use tax::{TaxCommand, TaxRateCommand};
use tenant::TenantCommand;
use webhook::WebhookCommand;

#[derive(Debug, Parser)]
#[command(
    name = "dynabill",
    version,
    about = "An open-source billing and subscription engine speaking the DealHub Billing API."
)]
pub struct Cli {
    /// A TOML configuration file (keys: database_url, listen). Flags and environment win over it.
    #[arg(long, global = true, env = "DYNABILL_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (creates and migrates the database; on an empty database,
    /// creates a first tenant and prints its credentials once).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Manage tenants, their settings and their API users.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage a tenant's built-in tax rates (TaxMode 1).
    #[command(subcommand)]
    TaxRate(TaxRateCommand),
    /// Taxation chores.
    #[command(subcommand)]
    Tax(TaxCommand),
    /// Run the bill run for a date: every tenant, or the one named by --app-key.
    /// Safe while `serve` runs on the same database. Prints a JSON summary.
    BillRun(BillRunArgs),
    /// Manage a tenant's webhook endpoints (where its events are POSTed, signed).
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Recurring revenue, its movements, renewals due, accounts with billing issues
    /// and upsell candidates (as `/v1/insights` serves them).
    #[command(subcommand)]
    Insights(InsightsCommand),
    /// Copy the embedded SQLite database to a new file, consistently, while `serve`
    /// runs (PostgreSQL is backed up with its own tools). Prints a JSON summary.
    Backup(BackupArgs),
    /// Secrets at rest: seal every stored secret with a new key.
    #[command(subcommand)]
    Secrets(SecretsCommand),
}

#[derive(Debug, Args)]
pub(crate) struct DatabaseArgs {
    /// Database URL: sqlite://PATH (created if missing) or postgres://USER@HOST/DB [default: sqlite://dynabill.db]
    #[arg(long, env = "DYNABILL_DATABASE_URL")]
    pub(crate) database_url: Option<String>,
    /// The key file sealing stored secrets (AvaTax license keys, webhook signing
    /// secrets), created with mode 0600 on first start; unused when
    /// DYNABILL_SECRET_KEY holds the key [default: dynabill.key]
    #[arg(long, env = "DYNABILL_SECRET_KEY_FILE")]
    pub(crate) secret_key_file: Option<PathBuf>,
}

impl DatabaseArgs {
    /// The configuration layer these flags make.
    pub(crate) fn overrides(self) -> Overrides {
        Overrides {
            database_url: self.database_url,
            secret_key_file: self.secret_key_file,
            ..Overrides::default()
        }
    }
}

/// Runs a parsed command line; errors go to stderr and a non-zero exit code.
pub fn main(cli: Cli) -> ExitCode {
    init_logging();
    crate::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (stdout carries only machine-readable output), filtered by
/// `DYNABILL_LOG` (e.g. `debug`, `info,sqlx=warn`; the access log is the target
/// `dynabill::access`, off with `info,dynabill::access=off`), as text or, with
/// `DYNABILL_LOG_FORMAT=json`, one JSON object per line with the request's span
/// fields.
fn init_logging() {
    let filter = EnvFilter::try_from_env("DYNABILL_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let json = std::env::var("DYNABILL_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config_file = cli.config.as_deref();
    match cli.command {
        Command::Serve(args) => serve::serve(config_file, args).await,
        Command::Migrate(db) => serve::migrate(config_file, db).await,
        Command::Tenant(command) => tenant::run(config_file, command).await,
        Command::TaxRate(command) => tax::run_rates(config_file, command).await,
        Command::Tax(command) => tax::run(config_file, command).await,
        Command::BillRun(args) => bill_run::run(config_file, args).await,
        Command::Webhook(command) => webhook::run(config_file, command).await,
        Command::Insights(command) => insights::run(config_file, command).await,
        Command::Backup(args) => backup::run(config_file, args).await,
        Command::Secrets(command) => secrets::run(config_file, command).await,
    }
}

/// The AvaTax client every command that may tax invoices uses.
pub(crate) fn tax_engine() -> anyhow::Result<Arc<dyn dynabill_app::tax_engine::TaxEngine>> {
    let client = dynabill_avatax::AvaTaxClient::with_default_timeout()
        .context("setting up the AvaTax client")?;
    Ok(Arc::new(client))
}

/// The app on the database `db` names, its stored secrets not yet unlocked.
async fn open_locked_app(
    config_file: Option<&Path>,
    db: DatabaseArgs,
) -> anyhow::Result<(App, Config)> {
    let config = Config::load(config_file, db.overrides())?;
    let store = storage::open(&config.database_url).await?;
    let app = App::new(store, Arc::new(SystemClock)).with_tax_engine(tax_engine()?);
    Ok((app, config))
}

async fn open_app(config_file: Option<&Path>, db: DatabaseArgs) -> anyhow::Result<App> {
    let (app, config) = open_locked_app(config_file, db).await?;
    let store = app.store().clone();
    match crate::secret_key::unlock(app, &config.secret_key_file).await {
        Ok(app) => Ok(app),
        Err(e) => {
            store.close().await;
            Err(e)
        }
    }
}

/// Opens the app on the database `db` names, runs `command` on it, and closes the
/// store, whatever the command came to.
async fn with_app<T>(
    config_file: Option<&Path>,
    db: DatabaseArgs,
    command: impl AsyncFnOnce(&App) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let app = open_app(config_file, db).await?;
    let result = command(&app).await;
    app.store().close().await;
    result
}
