//! A bill run is idempotent, atomic per account and safe under concurrency: two
//! `dynabill bill-run` processes at once, or one killed midway and run again, end
//! with every account billed exactly once and invoice numbers without a gap.

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use dynabill_app::billing::BillRunOptions;
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
    three_bill_runs_at_once_split_the_accounts_and_count_each_once,
    the_batches_of_a_killed_bill_run_are_taken_over_by_the_others_after_their_lease,
    workers_bill_batches_in_parallel_where_the_backend_writes_in_parallel,
    a_server_that_did_not_claim_the_day_finishes_the_run_of_one_that_died,
    a_dry_run_writes_nothing_and_reports_what_the_run_then_does,
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
    bill_run_with(app, date, &[])
}

/// A `dynabill bill-run` process with these extra flags; its JSON summary on stdout.
fn bill_run_with(app: &TestApp, date: &str, flags: &[&str]) -> Child {
    app.dynabill_command()
        .args([
            "bill-run",
            "--date",
            date,
            "--app-key",
            &app.cred.app_key,
            "--database-url",
            &app.database_url,
        ])
        .args(flags)
        .env("DYNABILL_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a bill run process; its summary.
fn summary_of(child: Child) -> Value {
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `n` bill-run processes for 2024-01-01 started at once; their summaries.
fn at_once(app: &TestApp, n: usize, flags: &[&str]) -> Vec<Value> {
    let runs: Vec<Child> = (0..n)
        .map(|_| bill_run_with(app, "2024-01-01", flags))
        .collect();
    runs.into_iter().map(summary_of).collect()
}

/// Starts a bill run for 2024-01-01 and SIGKILLs it once it has billed something
/// and holds a batch not done yet. The process is frozen (SIGSTOP) while that is
/// checked, so that it cannot finish the batch between the check and the kill
/// (on a loaded machine it did: the kill came between two batches); a commit it
/// had sent lands before the check.
async fn kill_while_holding_a_batch(app: &TestApp, flags: &[&str]) {
    let mut doomed = bill_run_with(app, "2024-01-01", flags);
    let pid = doomed.id().to_string();
    let signal = |name: &str| {
        let sent = std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill {name} {pid}");
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the bill run never held a batch");
        assert!(
            doomed.try_wait().unwrap().is_none(),
            "the bill run ended before it could be killed midway"
        );
        if invoice_count(app).await > 0 && undone_batches(app).await > 0 {
            signal("-STOP");
            tokio::time::sleep(Duration::from_millis(50)).await;
            if undone_batches(app).await > 0 {
                break;
            }
            signal("-CONT");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    doomed.kill().unwrap();
    doomed.wait().unwrap();
}

/// The number of invoices of the tenant, through the API.
async fn invoice_count(app: &TestApp) -> i64 {
    app.get("api_code=3&entity_code=119&PageSize=1").await.1["TOTAL_COUNT"]
        .as_i64()
        .unwrap()
}

/// The claimed batches of bill runs not done yet.
async fn undone_batches(app: &TestApp) -> i64 {
    app.query_count("SELECT COUNT(*) FROM bill_run_batches WHERE done_at IS NULL")
        .await
}

/// The sum of a field over summaries.
fn sum(summaries: &[Value], field: &str) -> u64 {
    summaries.iter().map(|s| s[field].as_u64().unwrap()).sum()
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
    let summaries = [summary_of(first), summary_of(second)];
    assert_eq!(sum(&summaries, "Invoices"), u64::from(accounts));
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
    // A short lease: the run again takes the killed process's batches over soon.
    let mut child = bill_run_with(app, "2024-01-01", &["--lease-seconds", "2"]);
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
    summary_of(bill_run_with(app, "2024-01-01", &["--lease-seconds", "2"]));
    assert_billed_exactly_once(app, accounts).await;
}

async fn three_bill_runs_at_once_split_the_accounts_and_count_each_once(app: &TestApp) {
    let accounts = 3000;
    seed(app, accounts).await;
    let flags = ["--batch-size", "100"];
    let summaries = at_once(app, 3, &flags);
    assert_billed_exactly_once(app, accounts).await;
    // They shared one run: every account was seen by exactly one of them, and
    // their invoices add up to the run's.
    assert_eq!(
        sum(&summaries, "AccountsSeen"),
        u64::from(accounts),
        "{summaries:?}"
    );
    assert_eq!(
        sum(&summaries, "Invoices"),
        u64::from(accounts),
        "{summaries:?}"
    );
    assert_eq!(sum(&summaries, "BatchesTakenOver"), 0, "{summaries:?}");
    // Run again, the three of them find nothing more to bill.
    let again = at_once(app, 3, &flags);
    assert_eq!(sum(&again, "Invoices"), 0, "{again:?}");
    assert_billed_exactly_once(app, accounts).await;
}

async fn the_batches_of_a_killed_bill_run_are_taken_over_by_the_others_after_their_lease(
    app: &TestApp,
) {
    let accounts = 3000;
    seed(app, accounts).await;
    // A lease long enough that the run is still live when the others start, even
    // on a loaded machine (they must join it, not start a new one), short enough
    // that the test waits little for the takeover.
    let flags = ["--batch-size", "100", "--lease-seconds", "8"];
    kill_while_holding_a_batch(app, &flags).await;
    // A commit the process had sent before it died still completes in the
    // database: count once the count holds still.
    let mut after_kill = invoice_count(app).await;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = invoice_count(app).await;
        if now == after_kill {
            break;
        }
        after_kill = now;
    }
    assert!(
        after_kill < i64::from(accounts),
        "the kill came midway ({after_kill} of {accounts} billed)"
    );
    let left_undone = undone_batches(app).await;
    assert!(left_undone >= 1, "the killed process held a batch");
    // Two others join its run (still live: it renewed it 3 s ago at most),
    // bill what is left, wait for the lease on the killed one's batches to
    // expire and bill those too.
    let started = Instant::now();
    let summaries = at_once(app, 2, &flags);
    assert_billed_exactly_once(app, accounts).await;
    assert_eq!(
        sum(&summaries, "Invoices"),
        u64::from(accounts) - u64::try_from(after_kill).unwrap(),
        "{summaries:?}"
    );
    assert_eq!(
        sum(&summaries, "BatchesTakenOver"),
        u64::try_from(left_undone).unwrap(),
        "each batch the killed process left was taken over once: {summaries:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "a batch is taken over only once its lease expired"
    );
}

async fn workers_bill_batches_in_parallel_where_the_backend_writes_in_parallel(app: &TestApp) {
    let accounts = 1000;
    seed(app, accounts).await;
    let summary = summary_of(bill_run_with(
        app,
        "2024-01-01",
        &["--workers", "3", "--batch-size", "50"],
    ));
    // PostgreSQL bills three batches at once; SQLite, with one writer, one.
    let expected_workers = if app.database_url.starts_with("sqlite:") {
        1
    } else {
        3
    };
    assert_eq!(summary["Workers"], expected_workers, "{summary}");
    assert_eq!(summary["AccountsSeen"], accounts, "{summary}");
    assert_eq!(summary["Invoices"], accounts, "{summary}");
    assert_billed_exactly_once(app, accounts).await;
}

/// What the scheduler of a server that did not claim the day does: it joins the
/// day's unfinished run and bills what is left, taking over the batches of the
/// server that died once their lease expired.
async fn a_server_that_did_not_claim_the_day_finishes_the_run_of_one_that_died(app: &TestApp) {
    let accounts = 1500;
    seed(app, accounts).await;
    let tenant = app.app.tenant_by_app_key(&app.cred.app_key).await.unwrap();
    let options = BillRunOptions {
        batch_size: 100,
        lease: Duration::from_secs(2),
        ..BillRunOptions::default()
    };
    // No run yet: nothing to join.
    assert_eq!(
        app.app
            .join_bill_run(&tenant, date(2024, 1, 1), options)
            .await
            .unwrap(),
        None
    );
    kill_while_holding_a_batch(app, &["--batch-size", "100", "--lease-seconds", "2"]).await;
    let left_undone = undone_batches(app).await;
    // Long after its lease: the run is dead, and is still joined and finished.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let summary = app
        .app
        .join_bill_run(&tenant, date(2024, 1, 1), options)
        .await
        .unwrap()
        .expect("the unfinished run is joined");
    assert_eq!(
        summary.batches_taken_over,
        u64::try_from(left_undone).unwrap()
    );
    assert_billed_exactly_once(app, accounts).await;
    assert_eq!(undone_batches(app).await, 0);
    // Finished: nothing left to join.
    assert_eq!(
        app.app
            .join_bill_run(&tenant, date(2024, 1, 1), options)
            .await
            .unwrap(),
        None
    );
}

async fn a_dry_run_writes_nothing_and_reports_what_the_run_then_does(app: &TestApp) {
    let accounts = 250;
    seed(app, accounts).await;
    let dry = summary_of(bill_run_with(app, "2024-03-01", &["--dry-run"]));
    assert_eq!(dry["DryRun"], true);
    assert_eq!(invoice_count(app).await, 0, "a dry run writes no invoice");
    assert_eq!(
        app.query_count("SELECT COUNT(*) FROM billing_ledger").await,
        0,
        "nor any ledger entry"
    );
    let done = summary_of(bill_run(app, "2024-03-01"));
    assert_eq!(done["DryRun"], false);
    for field in [
        "AccountsSeen",
        "AccountsBilled",
        "Invoices",
        "Lines",
        "Totals",
    ] {
        assert_eq!(dry[field], done[field], "{field}: {dry} / {done}");
    }
    // Three months of one 10.00 item per account.
    assert_eq!(done["Invoices"], accounts);
    assert_eq!(done["Lines"], accounts * 3);
    // Nothing is left, and the dry run says so.
    let again = summary_of(bill_run_with(app, "2024-03-01", &["--dry-run"]));
    assert_eq!(again["Invoices"], 0);
}
