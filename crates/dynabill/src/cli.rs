//! The command line: `serve`, `migrate`, `tenant create`, `tenant add-user`.
//! Every flag also reads a `DYNABILL_*` environment variable.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use dynabill_app::auth::IssuedCredential;
use dynabill_app::tenants::DEFAULT_USER_NAME;
use dynabill_app::{App, SystemClock};
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
    /// Manage tenants and their API users.
    #[command(subcommand)]
    Tenant(TenantCommand),
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

/// Runs a parsed command line; errors go to stderr and a non-zero exit code.
pub fn main(cli: Cli) -> ExitCode {
    init_logging();
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
            serve(Config::load(config_file, overrides)?).await
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

async fn open_app(config_file: Option<&std::path::Path>, db: DatabaseArgs) -> anyhow::Result<App> {
    let config = Config::load(
        config_file,
        Overrides {
            database_url: db.database_url,
            ..Overrides::default()
        },
    )?;
    let store = storage::open(&config.database_url).await?;
    Ok(App::new(store, Arc::new(SystemClock)))
}

fn print_credential(c: &IssuedCredential) -> anyhow::Result<()> {
    let json = serde_json::json!({ "AppKey": c.app_key, "UserName": c.user_name, "AccessToken": c.access_token });
    println!("{json}");
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let store = storage::open(&config.database_url).await?;
    let app = App::new(store, Arc::new(SystemClock));
    if app.tenant_count().await? == 0 {
        let issued = app
            .create_tenant("default", "USD", "UTC", DEFAULT_USER_NAME)
            .await
            .context("creating the first tenant")?;
        print_credential(&issued)?;
        tracing::info!(app_key = %issued.app_key, "created the first tenant; its credentials were printed once on stdout");
    }
    let options = HttpOptions { rate_limit: config.rate_limit.map(RateLimit::per_second) };
    let server = RunningServer::start(app.clone(), config.listen, options).await?;
    tracing::info!(address = %server.addr, "listening on {}", server.url());
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    server.shutdown().await?;
    app.store().close().await;
    tracing::info!("stopped");
    Ok(())
}
