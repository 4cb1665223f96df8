//! The command line: `serve`, `migrate`, `tenant create`, `tenant add-user`.
//! Every flag also reads a `DYNABILL_*` environment variable.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use dynabill_app::auth::IssuedCredential;
use dynabill_app::billing::BillRunSummary;
use dynabill_app::model::{TaxRateRecord, Tenant};
use dynabill_app::tenants::DEFAULT_USER_NAME;
use dynabill_app::tenants::SettingsChange;
use dynabill_app::{App, SystemClock};
use dynabill_core::calendar::ProrationPolicy;
use dynabill_core::domain::{TaxMode, TaxRateId};
use dynabill_core::money::Rounding;
use dynabill_core::tax::TaxRule;
use dynabill_http::{HttpOptions, RateLimit};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, Overrides};
use crate::server::{RunningServer, shutdown_signal};
use crate::storage;

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
}

#[derive(Debug, Subcommand)]
enum TaxRateCommand {
    /// Add a rule: RATE percent of tax NAME for accounts in COUNTRY (and STATE), for
    /// lines with TAX_CODE when given. Per tax name, the most specific rule applies.
    Add {
        #[arg(long, env = "DYNABILL_APP_KEY")]
        app_key: String,
        /// The tax's name, printed on invoices (e.g. "STATE SALES TAX").
        #[arg(long)]
        name: String,
        /// ISO 3166-1 alpha-2 country code.
        #[arg(long)]
        country: String,
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        tax_code: Option<String>,
        /// Percent, e.g. 7.25.
        #[arg(long)]
        rate: rust_decimal::Decimal,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Print the tenant's rules as JSON.
    List {
        #[arg(long, env = "DYNABILL_APP_KEY")]
        app_key: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Remove a rule by its ID.
    Remove {
        #[arg(long, env = "DYNABILL_APP_KEY")]
        app_key: String,
        #[arg(long)]
        id: i64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum TaxCommand {
    /// Ask AvaTax again, now, for every invoice of the tenant waiting in Pending Tax.
    Retry {
        #[arg(long, env = "DYNABILL_APP_KEY")]
        app_key: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Args)]
struct BillRunArgs {
    /// The bill run's date (YYYY-MM-DD): what is due on or before it is billed.
    #[arg(long, env = "DYNABILL_BILL_RUN_DATE")]
    date: jiff::civil::Date,
    /// Only this tenant [default: every tenant]
    #[arg(long, env = "DYNABILL_APP_KEY")]
    app_key: Option<String>,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Debug, Args)]
struct DatabaseArgs {
    /// Database URL: sqlite://PATH (created if missing) or postgres://USER@HOST/DB [default: sqlite://dynabill.db]
    #[arg(long, env = "DYNABILL_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Debug, Args)]
struct ServeArgs {
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
    /// Requests per second each tenant may make, with bursts of twice that; beyond it, 429 [default: no limit]
    #[arg(long, env = "DYNABILL_RATE_LIMIT")]
    rate_limit: Option<u32>,
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant and its first API user; prints {"AppKey","UserName","AccessToken"} as JSON.
    Create {
        /// The tenant's name.
        #[arg(long, env = "DYNABILL_TENANT_NAME")]
        name: String,
        /// Default currency of its accounts (ISO 4217).
        #[arg(long, env = "DYNABILL_TENANT_CURRENCY", default_value = "USD")]
        currency: String,
        /// Its time zone (IANA name): "today" and billing dates follow it.
        #[arg(long, env = "DYNABILL_TENANT_TIMEZONE", default_value = "UTC")]
        timezone: String,
        /// The first API user's name.
        #[arg(long, env = "DYNABILL_TENANT_USER", default_value = DEFAULT_USER_NAME)]
        user: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Change a tenant's settings; prints the tenant's settings as JSON.
    Set(TenantSetArgs),
    /// Print a tenant's settings as JSON.
    Show {
        /// The tenant's AppKey.
        #[arg(long, env = "DYNABILL_APP_KEY")]
        app_key: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Add an API user to a tenant; prints {"AppKey","UserName","AccessToken"} as JSON.
    AddUser {
        /// The tenant's AppKey.
        #[arg(long, env = "DYNABILL_APP_KEY")]
        app_key: String,
        /// The new user's name.
        #[arg(long, env = "DYNABILL_USER")]
        user: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Args)]
struct TenantSetArgs {
    /// The tenant's AppKey.
    #[arg(long, env = "DYNABILL_APP_KEY")]
    app_key: String,
    /// 1: new invoices are posted at once; 0: they wait as Drafts.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=1))]
    auto_post: Option<u8>,
    /// Prefix of invoice numbers (e.g. INV- gives INV-000001).
    #[arg(long)]
    invoice_prefix: Option<String>,
    /// Local hour (0-23) of the daily scheduled bill run.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=23))]
    bill_run_hour: Option<u8>,
    /// 1: actual days; 2: 30/360.
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=2))]
    proration_policy: Option<i64>,
    /// half-up or half-even.
    #[arg(long, value_parser = ["half-up", "half-even"])]
    rounding: Option<String>,
    /// IANA time zone: dates and the bill run hour follow it.
    #[arg(long)]
    timezone: Option<String>,
    /// 0 none, 1 built-in rates, 2 external tax service (1007/1008), 3 Avalara AvaTax.
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..=3))]
    tax_mode: Option<i64>,
    /// AvaTax base URL, e.g. https://sandbox-rest.avatax.com
    #[arg(long)]
    avatax_url: Option<String>,
    #[arg(long)]
    avatax_account_id: Option<String>,
    /// Stored as a secret; never printed.
    #[arg(long, env = "DYNABILL_AVATAX_LICENSE_KEY", hide_env_values = true)]
    avatax_license_key: Option<String>,
    #[arg(long)]
    avatax_company_code: Option<String>,
    #[command(flatten)]
    database: DatabaseArgs,
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
/// `DYNABILL_LOG` (e.g. `debug`, `info,sqlx=warn`).
fn init_logging() {
    let filter = EnvFilter::try_from_env("DYNABILL_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config_file = cli.config.as_deref();
    match cli.command {
        Command::Serve(args) => {
            let overrides = Overrides {
                database_url: args.database.database_url,
                listen: args.listen,
                rate_limit: args.rate_limit,
            };
            let mode = ServeMode {
                scheduler: !args.no_scheduler,
                test_clock: args.test_clock,
            };
            serve(Config::load(config_file, overrides)?, mode).await
        }
        Command::Migrate(db) => {
            let config = Config::load(
                config_file,
                Overrides {
                    database_url: db.database_url,
                    ..Overrides::default()
                },
            )?;
            let store = storage::open(&config.database_url).await?;
            store.close().await;
            tracing::info!("database is up to date");
            Ok(())
        }
        Command::Tenant(TenantCommand::Create {
            name,
            currency,
            timezone,
            user,
            database,
        }) => {
            let app = open_app(config_file, database).await?;
            let issued = app
                .create_tenant(&name, &currency, &timezone, &user)
                .await?;
            app.store().close().await;
            print_credential(&issued)
        }
        Command::Tenant(TenantCommand::Set(args)) => {
            let app = open_app(config_file, args.database).await?;
            let change = SettingsChange {
                auto_post: args.auto_post.map(|v| v == 1),
                invoice_prefix: args.invoice_prefix,
                bill_run_hour: args.bill_run_hour,
                proration_policy: args.proration_policy.and_then(ProrationPolicy::from_code),
                rounding: args.rounding.map(|r| {
                    if r == "half-even" {
                        Rounding::HalfEven
                    } else {
                        Rounding::HalfUp
                    }
                }),
                time_zone: args.timezone,
                tax_mode: args.tax_mode.and_then(TaxMode::from_code),
                avatax_url: args.avatax_url,
                avatax_account_id: args.avatax_account_id,
                avatax_license_key: args.avatax_license_key,
                avatax_company_code: args.avatax_company_code,
            };
            let tenant = app.update_tenant_settings(&args.app_key, change).await?;
            app.store().close().await;
            print_tenant(&tenant)
        }
        Command::Tenant(TenantCommand::Show { app_key, database }) => {
            let app = open_app(config_file, database).await?;
            let tenant = app.tenant_by_app_key(&app_key).await?;
            app.store().close().await;
            print_tenant(&tenant)
        }
        Command::TaxRate(TaxRateCommand::Add {
            app_key,
            name,
            country,
            state,
            tax_code,
            rate,
            database,
        }) => {
            let app = open_app(config_file, database).await?;
            let rule = TaxRule {
                name,
                country,
                state,
                tax_code,
                rate,
            };
            let added = app.add_tax_rate(&app_key, rule).await;
            app.store().close().await;
            println!("{}", tax_rate_json(&added?));
            Ok(())
        }
        Command::TaxRate(TaxRateCommand::List { app_key, database }) => {
            let app = open_app(config_file, database).await?;
            let rates = app.list_tax_rates(&app_key).await;
            app.store().close().await;
            let list: Vec<serde_json::Value> = rates?.iter().map(tax_rate_json).collect();
            println!("{}", serde_json::Value::Array(list));
            Ok(())
        }
        Command::TaxRate(TaxRateCommand::Remove {
            app_key,
            id,
            database,
        }) => {
            let app = open_app(config_file, database).await?;
            let removed = app.remove_tax_rate(&app_key, TaxRateId(id)).await;
            app.store().close().await;
            removed?;
            println!("{}", serde_json::json!({ "Removed": id }));
            Ok(())
        }
        Command::Tax(TaxCommand::Retry { app_key, database }) => {
            let app = open_app(config_file, database).await?;
            let result = async {
                let tenant = app.tenant_by_app_key(&app_key).await?;
                app.retry_taxes(&tenant, true).await
            }
            .await;
            app.store().close().await;
            let (attempted, posted) = result?;
            println!(
                "{}",
                serde_json::json!({ "Attempted": attempted, "Posted": posted })
            );
            Ok(())
        }
        Command::BillRun(args) => {
            let app = open_app(config_file, args.database).await?;
            let result = bill_run(&app, args.date, args.app_key.as_deref()).await;
            app.store().close().await;
            result
        }
        Command::Tenant(TenantCommand::AddUser {
            app_key,
            user,
            database,
        }) => {
            let app = open_app(config_file, database).await?;
            let issued = app.add_api_user(&app_key, &user).await?;
            app.store().close().await;
            print_credential(&issued)
        }
    }
}

fn tax_rate_json(r: &TaxRateRecord) -> serde_json::Value {
    serde_json::json!({
        "ID": r.id.0,
        "Name": r.rule.name,
        "Country": r.rule.country,
        "State": r.rule.state,
        "TaxCode": r.rule.tax_code,
        "Rate": r.rule.rate.to_string(),
    })
}

/// The AvaTax client every command that may tax invoices uses.
fn tax_engine() -> anyhow::Result<Arc<dyn dynabill_app::tax_engine::TaxEngine>> {
    let client = dynabill_avatax::AvaTaxClient::with_default_timeout()
        .context("setting up the AvaTax client")?;
    Ok(Arc::new(client))
}

async fn open_app(config_file: Option<&std::path::Path>, db: DatabaseArgs) -> anyhow::Result<App> {
    let config = Config::load(
        config_file,
        Overrides {
            database_url: db.database_url,
            ..Overrides::default()
        },
    )?;
    let store = storage::open(&config.database_url).await?;
    Ok(App::new(store, Arc::new(SystemClock)).with_tax_engine(tax_engine()?))
}

fn print_tenant(t: &Tenant) -> anyhow::Result<()> {
    let s = &t.settings;
    let json = serde_json::json!({
        "AppKey": t.app_key,
        "Name": t.name,
        "Currency": t.currency.code(),
        "TimeZone": t.time_zone_name,
        "AutoPost": u8::from(s.auto_post),
        "InvoicePrefix": s.invoice_prefix,
        "BillRunHour": s.bill_run_hour,
        "ProrationPolicy": s.proration_policy.code(),
        "Rounding": match s.rounding { Rounding::HalfUp => "half-up", Rounding::HalfEven => "half-even" },
        "TestToday": t.test_today.map(|d| d.to_string()),
        "TaxMode": s.tax_mode.code(),
        "AvaTaxUrl": s.avatax.as_ref().map(|a| a.base_url.clone()),
        "AvaTaxAccountId": s.avatax.as_ref().map(|a| a.account_id.clone()),
        "AvaTaxCompanyCode": s.avatax.as_ref().map(|a| a.company_code.clone()),
        "AvaTaxLicenseKey": s.avatax.as_ref().map(|_| "***"),
    });
    println!("{json}");
    Ok(())
}

/// `dynabill bill-run`: one tenant or all, a progress bar on a terminal, a JSON summary on stdout.
async fn bill_run(app: &App, date: jiff::civil::Date, app_key: Option<&str>) -> anyhow::Result<()> {
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
        let done = app.bill_run(tenant, date, &progress).await?;
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
        "Tenants": summary.tenants,
        "AccountsSeen": summary.accounts_seen,
        "AccountsBilled": summary.accounts_billed,
        "Invoices": summary.invoices,
        "Lines": summary.lines,
        "Totals": totals,
        "Seconds": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    });
    println!("{json}");
    Ok(())
}

fn print_credential(c: &IssuedCredential) -> anyhow::Result<()> {
    let json = serde_json::json!({ "AppKey": c.app_key, "UserName": c.user_name, "AccessToken": c.access_token });
    println!("{json}");
    Ok(())
}

/// How `serve` runs besides answering requests.
#[derive(Clone, Copy, Debug)]
struct ServeMode {
    scheduler: bool,
    test_clock: bool,
}

async fn serve(config: Config, mode: ServeMode) -> anyhow::Result<()> {
    let store = storage::open(&config.database_url).await?;
    let mut app = App::new(store, Arc::new(SystemClock)).with_tax_engine(tax_engine()?);
    if mode.test_clock {
        tracing::warn!("test clock on: tenants' dates can be set through /api/testclock");
        app = app.with_test_clock();
    }
    if app.tenant_count().await? == 0 {
        let issued = app
            .create_tenant("default", "USD", "UTC", DEFAULT_USER_NAME)
            .await
            .context("creating the first tenant")?;
        print_credential(&issued)?;
        tracing::info!(app_key = %issued.app_key, "created the first tenant; its credentials were printed once on stdout");
    }
    let options = HttpOptions {
        rate_limit: config.rate_limit.map(RateLimit::per_second),
    };
    let server = RunningServer::start(app.clone(), config.listen, options).await?;
    let scheduler = mode.scheduler.then(|| crate::scheduler::spawn(app.clone()));
    tracing::info!(address = %server.addr, "listening on {}", server.url());
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    if let Some(scheduler) = scheduler {
        scheduler.stop().await;
    }
    server.shutdown().await?;
    app.store().close().await;
    tracing::info!("stopped");
    Ok(())
}
