//! `dynabill insights mrr | movements | renewals | billing-issues | upsell`: the
//! figures of `/v1/insights` for operators and cron jobs, as a table on a
//! terminal, JSON (the REST shapes) or CSV.

use std::io::IsTerminal;

use clap::{Args, Subcommand, ValueEnum};
use dynabill_app::insights::{MAX_LIMIT, Month, Ranked};
use dynabill_app::model::Tenant;
use dynabill_app::{App, AppError};
use dynabill_core::money::Currency;
use dynabill_http::insights_json;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde_json::Value;

use super::{DatabaseArgs, with_app};

#[derive(Debug, Subcommand)]
pub(crate) enum InsightsCommand {
    /// MRR and ARR per currency on a day (the tenant's today by default).
    Mrr {
        #[command(flatten)]
        common: Common,
        /// The day (YYYY-MM-DD).
        #[arg(long)]
        date: Option<Date>,
        /// Only this account (its ID), with the items that make its MRR (JSON).
        #[arg(long)]
        account_id: Option<i64>,
    },
    /// MRR movements month by month, per currency.
    Movements {
        #[command(flatten)]
        common: Common,
        /// The first month (YYYY-MM) [default: eleven months before --to].
        #[arg(long, value_parser = month)]
        from: Option<Month>,
        /// The last month (YYYY-MM) [default: the current month].
        #[arg(long, value_parser = month)]
        to: Option<Month>,
    },
    /// Plans whose term ends within N days of today.
    Renewals {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 30)]
        within_days: i64,
        /// At most this many plans (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Accounts with billing issues, most overdue first.
    BillingIssues {
        #[command(flatten)]
        common: Common,
        /// At most this many accounts (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Accounts with upsell signals, highest score first.
    Upsell {
        #[command(flatten)]
        common: Common,
        /// At most this many accounts (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

#[derive(Debug, Args)]
pub(crate) struct Common {
    #[arg(long, env = "DYNABILL_APP_KEY")]
    app_key: String,
    /// How to print [default: table on a terminal, json otherwise].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Follow the tenant's test clock, as `serve --test-clock` does.
    #[arg(long, env = "DYNABILL_TEST_CLOCK")]
    test_clock: bool,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
    Csv,
}

fn month(text: &str) -> Result<Month, String> {
    let bad = || format!("{text:?} is not a month YYYY-MM");
    let (year, month) = text.split_once('-').ok_or_else(bad)?;
    let (year, month) = (
        year.parse::<i16>().map_err(|_| bad())?,
        month.parse::<i8>().map_err(|_| bad())?,
    );
    if !(1900..=2999).contains(&year) || !(1..=12).contains(&month) || text.len() != 7 {
        return Err(bad());
    }
    Month::new(year, month).map_err(|_| bad())
}

/// Rows of a table: its header and its lines, every cell already text.
struct Rows {
    header: Vec<&'static str>,
    lines: Vec<Vec<String>>,
}

/// An amount rounded to its currency's minor unit, as every door shows it.
fn shown(amount: Decimal, currency: Currency) -> String {
    dynabill_core::money::Rounding::HalfUp
        .to_minor_unit(amount, currency)
        .to_string()
}

fn check_limit(limit: usize) -> anyhow::Result<usize> {
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        anyhow::bail!("--limit must be between 1 and {MAX_LIMIT}, got {limit}")
    }
}

/// What a command computed: its JSON and its rows.
struct Answer {
    json: Value,
    rows: Rows,
}

fn ranked_rows<T>(
    ranked: &Ranked<T>,
    header: Vec<&'static str>,
    line: impl Fn(&T) -> Vec<String>,
) -> Rows {
    Rows {
        header,
        lines: ranked.items.iter().map(line).collect(),
    }
}

async fn answer(app: &App, tenant: &Tenant, command: &InsightsCommand) -> Result<Answer, AppError> {
    let today = app.today(tenant);
    Ok(match command {
        InsightsCommand::Mrr {
            date, account_id, ..
        } => {
            let account = account_id.map(dynabill_core::domain::AccountId);
            let report = app.mrr(tenant, *date, account, None).await?;
            let lines = report
                .currencies
                .iter()
                .map(|c| {
                    vec![
                        c.currency.code().to_owned(),
                        shown(c.mrr, c.currency),
                        shown(c.mrr * Decimal::from(12), c.currency),
                        c.active_accounts.to_string(),
                        c.active_items.to_string(),
                        shown(c.committed_churn, c.currency),
                    ]
                })
                .collect();
            Answer {
                json: insights_json::mrr(&report),
                rows: Rows {
                    header: vec![
                        "currency",
                        "mrr",
                        "arr",
                        "active_accounts",
                        "active_items",
                        "committed_churn",
                    ],
                    lines,
                },
            }
        }
        InsightsCommand::Movements { from, to, .. } => {
            let report = app.mrr_movements(tenant, *from, *to, false).await?;
            let mut lines = Vec::new();
            let named = report.months.iter().map(|m| {
                let name = format!("{:04}-{:02}", m.month.year(), m.month.month());
                (name, m)
            });
            let committed = report.committed.iter().map(|m| ("committed".into(), m));
            for (name, month) in named.chain(committed) {
                for c in &month.currencies {
                    let mut line = vec![
                        name.clone(),
                        c.currency.code().to_owned(),
                        shown(c.start, c.currency),
                    ];
                    for kind in dynabill_core::insights::MovementKind::ALL {
                        let (amount, _) = c.kinds.get(&kind).copied().unwrap_or_default();
                        line.push(shown(amount, c.currency));
                    }
                    line.push(shown(c.end, c.currency));
                    lines.push(line);
                }
            }
            Answer {
                json: insights_json::movements(&report, false),
                rows: Rows {
                    header: vec![
                        "month",
                        "currency",
                        "start",
                        "new",
                        "reactivation",
                        "expansion",
                        "contraction",
                        "churn",
                        "end",
                    ],
                    lines,
                },
            }
        }
        InsightsCommand::Renewals {
            within_days, limit, ..
        } => {
            let limit = check_limit(*limit).map_err(AppError::Internal)?;
            let ranked = app.renewals(tenant, *within_days, limit).await?;
            let rows = ranked_rows(
                &ranked,
                vec![
                    "account",
                    "plan",
                    "currency",
                    "end_date",
                    "days_left",
                    "auto_renew",
                    "mrr",
                    "account_unpaid",
                ],
                |r| {
                    vec![
                        r.account.fields.ext_id.clone(),
                        r.plan_ext_id.clone(),
                        r.currency.code().to_owned(),
                        r.end_date.to_string(),
                        r.days_left.to_string(),
                        r.auto_renew.to_string(),
                        shown(r.mrr, r.currency),
                        shown(r.account_unpaid, r.currency),
                    ]
                },
            );
            Answer {
                json: insights_json::renewals(today, &ranked),
                rows,
            }
        }
        InsightsCommand::BillingIssues { limit, .. } => {
            let limit = check_limit(*limit).map_err(AppError::Internal)?;
            let ranked = app.billing_issues(tenant, limit).await?;
            let rows = ranked_rows(&ranked, vec!["account", "name", "reasons"], |a| {
                let reasons: Vec<&str> = a.reasons.iter().map(|r| r.code()).collect();
                vec![
                    a.account.fields.ext_id.clone(),
                    a.account.fields.name.clone(),
                    reasons.join(" "),
                ]
            });
            Answer {
                json: insights_json::billing_issues(today, &ranked),
                rows,
            }
        }
        InsightsCommand::Upsell { limit, .. } => {
            let limit = check_limit(*limit).map_err(AppError::Internal)?;
            let ranked = app.upsell_candidates(tenant, limit).await?;
            let rows = ranked_rows(&ranked, vec!["account", "name", "score", "signals"], |c| {
                let signals: Vec<&str> = c.signals.iter().map(|s| s.code()).collect();
                vec![
                    c.account.fields.ext_id.clone(),
                    c.account.fields.name.clone(),
                    c.score.to_string(),
                    signals.join(" "),
                ]
            });
            Answer {
                json: insights_json::upsell_candidates(today, &ranked),
                rows,
            }
        }
    })
}

fn common(command: &InsightsCommand) -> &Common {
    match command {
        InsightsCommand::Mrr { common, .. }
        | InsightsCommand::Movements { common, .. }
        | InsightsCommand::Renewals { common, .. }
        | InsightsCommand::BillingIssues { common, .. }
        | InsightsCommand::Upsell { common, .. } => common,
    }
}

pub(crate) async fn run(
    config_file: Option<&std::path::Path>,
    command: InsightsCommand,
) -> anyhow::Result<()> {
    let Common {
        app_key,
        format,
        test_clock,
        database,
    } = common(&command);
    let database = DatabaseArgs {
        database_url: database.database_url.clone(),
        secret_key_file: database.secret_key_file.clone(),
    };
    let answer = with_app(config_file, database, async |app| {
        let app = if *test_clock {
            app.clone().with_test_clock()
        } else {
            app.clone()
        };
        let tenant = app.tenant_by_app_key(app_key).await?;
        Ok(answer(&app, &tenant, &command).await?)
    })
    .await?;
    let format = format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Json
    });
    match format {
        Format::Json => println!("{}", answer.json),
        Format::Csv => {
            let mut out = csv::Writer::from_writer(std::io::stdout());
            out.write_record(&answer.rows.header)?;
            for line in &answer.rows.lines {
                out.write_record(line)?;
            }
            out.flush()?;
        }
        Format::Table => {
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
            table.set_header(&answer.rows.header);
            for line in &answer.rows.lines {
                table.add_row(line);
            }
            println!("{table}");
        }
    }
    Ok(())
}
