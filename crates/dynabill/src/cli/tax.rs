//! `dynabill tax-rate add | list | remove` and `dynabill tax retry`.

use clap::Subcommand;
use dynabill_app::model::TaxRateRecord;
use dynabill_core::domain::TaxRateId;
use dynabill_core::tax::TaxRule;

use super::{DatabaseArgs, with_app};

#[derive(Debug, Subcommand)]
pub(crate) enum TaxRateCommand {
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
pub(crate) enum TaxCommand {
    /// Ask AvaTax again, now, for every invoice of the tenant waiting in Pending Tax.
    Retry {
        #[arg(long, env = "DYNABILL_APP_KEY")]
        app_key: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

pub(crate) async fn run_rates(
    config_file: Option<&std::path::Path>,
    command: TaxRateCommand,
) -> anyhow::Result<()> {
    match command {
        TaxRateCommand::Add {
            app_key,
            name,
            country,
            state,
            tax_code,
            rate,
            database,
        } => {
            let rule = TaxRule {
                name,
                country,
                state,
                tax_code,
                rate,
            };
            let added = with_app(config_file, database, async |app| {
                Ok(app.add_tax_rate(&app_key, rule).await?)
            })
            .await?;
            println!("{}", tax_rate_json(&added));
            Ok(())
        }
        TaxRateCommand::List { app_key, database } => {
            let rates = with_app(config_file, database, async |app| {
                Ok(app.list_tax_rates(&app_key).await?)
            })
            .await?;
            let list: Vec<serde_json::Value> = rates.iter().map(tax_rate_json).collect();
            println!("{}", serde_json::Value::Array(list));
            Ok(())
        }
        TaxRateCommand::Remove {
            app_key,
            id,
            database,
        } => {
            with_app(config_file, database, async |app| {
                Ok(app.remove_tax_rate(&app_key, TaxRateId(id)).await?)
            })
            .await?;
            println!("{}", serde_json::json!({ "Removed": id }));
            Ok(())
        }
    }
}

pub(crate) async fn run(
    config_file: Option<&std::path::Path>,
    command: TaxCommand,
) -> anyhow::Result<()> {
    match command {
        TaxCommand::Retry { app_key, database } => {
            let (attempted, posted) = with_app(config_file, database, async |app| {
                let tenant = app.tenant_by_app_key(&app_key).await?;
                Ok(app.retry_taxes(&tenant, true).await?)
            })
            .await?;
            println!(
                "{}",
                serde_json::json!({ "Attempted": attempted, "Posted": posted })
            );
            Ok(())
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
