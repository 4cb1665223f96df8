//! `dynabill tenant create | add-user | set | show`.

use clap::{Args, Subcommand};
use dynabill_app::auth::IssuedCredential;
use dynabill_app::model::Tenant;
use dynabill_app::tenants::{DEFAULT_USER_NAME, SettingsChange};
use dynabill_core::calendar::ProrationPolicy;
use dynabill_core::domain::TaxMode;
use dynabill_core::money::Rounding;

use super::{DatabaseArgs, with_app};

#[derive(Debug, Subcommand)]
pub(crate) enum TenantCommand {
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
pub(crate) struct TenantSetArgs {
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

pub(crate) async fn run(
    config_file: Option<&std::path::Path>,
    command: TenantCommand,
) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create {
            name,
            currency,
            timezone,
            user,
            database,
        } => {
            let issued = with_app(config_file, database, async |app| {
                Ok(app
                    .create_tenant(&name, &currency, &timezone, &user)
                    .await?)
            })
            .await?;
            print_credential(&issued)
        }
        TenantCommand::Set(args) => {
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
            let app_key = args.app_key;
            let tenant = with_app(config_file, args.database, async |app| {
                Ok(app.update_tenant_settings(&app_key, change).await?)
            })
            .await?;
            print_tenant(&tenant)
        }
        TenantCommand::Show { app_key, database } => {
            let tenant = with_app(config_file, database, async |app| {
                Ok(app.tenant_by_app_key(&app_key).await?)
            })
            .await?;
            print_tenant(&tenant)
        }
        TenantCommand::AddUser {
            app_key,
            user,
            database,
        } => {
            let issued = with_app(config_file, database, async |app| {
                Ok(app.add_api_user(&app_key, &user).await?)
            })
            .await?;
            print_credential(&issued)
        }
    }
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

pub(crate) fn print_credential(c: &IssuedCredential) -> anyhow::Result<()> {
    let json = serde_json::json!({ "AppKey": c.app_key, "UserName": c.user_name, "AccessToken": c.access_token });
    println!("{json}");
    Ok(())
}
