//! A bill run is idempotent, atomic per account and safe under concurrency: two
//! `dynabill bill-run` processes at once, or one killed midway and run again, end
//! with every account billed exactly once and invoice numbers without a gap.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dynabill_app::model::{AccountPatch, PlanPatch, RecordKey, RecurringItemPatch};
use dynabill_core::calendar::BillingPeriod;
use dynabill_core::domain::{AccountStatus, AccountType};
use jiff::civil::date;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    two_bill_runs_at_once_bill_every_account_exactly_once,
    a_bill_run_killed_midway_and_run_again_loses_and_doubles_nothing,
);

/// `accounts` accounts, each with one plan and one monthly item, seeded through the use cases.
async fn seed(app: &TestApp, accounts: u32) {
    let tenant = app.app.tenant_by_app_key(&app.cred.app_key).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..4u32 {
        let app = app.app.clone();
        let tenant = tenant.clone();
        tasks.spawn(async move {
            for n in (worker..accounts).step_by(4) {
                let account = format!("A{n:05}");
                app.upsert_account(
                    &tenant,
                    None,
                    AccountPatch {
                        ext_id: Some(account.clone()),
                        name: Some(account.clone()),
                        account_type: Some(AccountType::Business),
                        status: Some(AccountStatus::Active),
                        email: Some("billing@example.com".parse().unwrap()),
                        ..AccountPatch::default()
                    },
                )
                .await
                .unwrap();
                app.upsert_plan(
                    &tenant,
                    None,
                    PlanPatch {
                        ext_id: Some(format!("P{n:05}")),
                        account: Some(RecordKey::ExtId(account)),
                        start_date: Some(date(2024, 1, 1)),
                        ..PlanPatch::default()
                    },
                )
                .await
                .unwrap();
                app.upsert_recurring_item(
                    &tenant,
                    None,
                    RecurringItemPatch {
                        ext_id: Some(format!("I{n:05}")),
                        plan: Some(RecordKey::ExtId(format!("P{n:05}"))),
                        product_code: Some("SKU".into()),
                        name: Some("Seat".into()),
                        quantity: Some(Decimal::ONE),
                        unit_price: Some(Decimal::TEN),
                        billing_period: Some(BillingPeriod::Monthly),
                        ..RecurringItemPatch::default()
                    },
                )
                .await
                .unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

fn bill_run(app: &TestApp, date: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dynabill"))
        .args([
            "bill-run",
            "--date",
            date,
            "--app-key",
            &app.cred.app_key,
            "--database-url",
            &app.database_url,
        ])
        .env("DYNABILL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Every invoice of the tenant, through the API.
async fn invoices(app: &TestApp) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => {
                format!("api_code=3&entity_code=119&IncludeLines=1&PageSize=1000&Cursor={c}")
            }
            None => "api_code=3&entity_code=119&IncludeLines=1&PageSize=1000".to_owned(),
        };
        let (_, reply) = app.get(&query).await;
        all.extend(reply["DATA"].as_array().unwrap().iter().cloned());
        match reply["NEXT_CURSOR"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return all,
        }
    }
}

/// Each account has exactly one invoice of one line, numbered 1..=N without a gap.
async fn assert_billed_exactly_once(app: &TestApp, accounts: u32) {
    let invoices = invoices(app).await;
    let billed: BTreeSet<&str> = invoices
        .iter()
        .map(|i| i["AccountExtID"].as_str().unwrap())
        .collect();
    assert_eq!(invoices.len(), accounts as usize, "one invoice per account");
    assert_eq!(billed.len(), accounts as usize, "no account billed twice");
    assert!(
        invoices
            .iter()
            .all(|i| i["Lines"].as_array().unwrap().len() == 1),
        "no period billed twice"
    );
    let mut numbers: Vec<u64> = invoices
        .iter()
        .map(|i| {
            i["InvoiceNumber"]
                .as_str()
                .unwrap()
                .trim_start_matches("INV-")
                .parse()
                .unwrap()
        })
        .collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (1..=u64::from(accounts)).collect::<Vec<_>>(),
        "invoice numbers are gap-free"
    );
}

async fn two_bill_runs_at_once_bill_every_account_exactly_once(app: &TestApp) {
    let accounts = 300;
    seed(app, accounts).await;
    let first = bill_run(app, "2024-01-01");
    let second = bill_run(app, "2024-01-01");
    for child in [first, second] {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_billed_exactly_once(app, accounts).await;
    // And running it again adds nothing.
    assert!(bill_run(app, "2024-01-01").wait().unwrap().success());
    assert_billed_exactly_once(app, accounts).await;
}

async fn a_bill_run_killed_midway_and_run_again_loses_and_doubles_nothing(app: &TestApp) {
    // Batches of 1,000 accounts, each committed in two transactions: 2,500 accounts
    // make five commits, so the kill comes after the first and before the last.
    let accounts = 2500;
    seed(app, accounts).await;
    let mut child = bill_run(app, "2024-01-01");
    // Kill it (SIGKILL: no clean-up of any kind) as soon as it has billed something.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut billed_before_kill = 0;
    while Instant::now() < deadline {
        billed_before_kill =
            app.get("api_code=3&entity_code=119&PageSize=1").await.1["TOTAL_COUNT"]
                .as_i64()
                .unwrap();
        if billed_before_kill > 0 || child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let after_kill = app.get("api_code=3&entity_code=119&PageSize=1").await.1["TOTAL_COUNT"]
        .as_i64()
        .unwrap();
    assert!(
        billed_before_kill > 0,
        "the bill run started billing before it was killed"
    );
    assert!(
        after_kill < i64::from(accounts),
        "the kill came midway ({after_kill} of {accounts} billed)"
    );
    let output = bill_run(app, "2024-01-01").wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_billed_exactly_once(app, accounts).await;
}
