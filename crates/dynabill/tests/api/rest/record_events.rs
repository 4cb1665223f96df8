//! The events of plans, items, invoices and bill runs: every change logged with
//! its own type, in the transaction that made it, and nothing for bookkeeping.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::{on_both_backends, on_both_backends_with};

on_both_backends!(
    plan_and_item_changes_are_logged_with_their_kinds,
    an_invoice_logs_its_lifecycle,
    a_bill_run_logs_its_invoices_and_itself_and_nothing_else,
);

on_both_backends_with!(crate::helpers::spawn_with_test_clock: the_scheduler_logs_an_invoice_overdue_once);

async fn created(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, _, record) = app.rest("POST", path, Some(body)).await;
    assert_eq!(status, 201, "{path}: {record}");
    record
}

async fn ok(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, _, reply) = app.rest(method, path, body).await;
    assert!(status.is_success(), "{method} {path}: {status} {reply}");
    reply
}

async fn events(app: &TestApp, query: &str) -> Vec<Value> {
    let reply = ok(app, "GET", &format!("/v1/events{query}"), None).await;
    reply["data"].as_array().unwrap().clone()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn last_sequence(events: &[Value]) -> i64 {
    events.last().map_or(0, |e| e["sequence"].as_i64().unwrap())
}

/// An account with a plan from 2026-01-01 (billing day 1), ten seats at 49.50 a
/// month and a one-time charge; returns the account's, plan's and seats' IDs.
async fn book(app: &TestApp, ext_id: &str) -> (i64, i64, i64) {
    let account = created(
        app,
        "/v1/accounts",
        json!({"ext_id": ext_id, "account_name": "Acme", "account_type": 1,
            "account_status": 1, "email": "billing@acme.example"}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let plan = created(
        app,
        &format!("/v1/accounts/{account}/plans"),
        json!({"ext_id": format!("{ext_id}-P"), "start_date": "2026-01-01", "billing_day": 1,
            "end_date": "2027-01-01", "auto_renew": true}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let seats = created(
        app,
        &format!("/v1/plans/{plan}/recurring-items"),
        json!({"ext_id": format!("{ext_id}-S"), "product_code": "SEAT", "item_name": "Seats",
            "quantity": "10", "unit_price": "49.50", "billing_period": 1}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    created(
        app,
        &format!("/v1/plans/{plan}/one-time-items"),
        json!({"ext_id": format!("{ext_id}-O"), "product_code": "SETUP", "item_name": "Setup",
            "quantity": "1", "unit_price": "100", "charge_date": "2026-01-01"}),
    )
    .await;
    (account, plan, seats)
}

async fn plan_and_item_changes_are_logged_with_their_kinds(app: &TestApp) {
    let (_, plan, seats) = book(app, "K").await;
    let item = format!("/v1/recurring-items/{seats}");
    ok(
        app,
        "PATCH",
        &format!("/v1/plans/{plan}"),
        Some(json!({"notes": "VIP"})),
    )
    .await;
    ok(
        app,
        "POST",
        &format!("{item}/upsell"),
        Some(json!({"quantity": "12", "unit_price": "49.50", "effective_date": "2026-03-01"})),
    )
    .await;
    ok(app, "POST", &format!("/v1/plans/{plan}/renew"), None).await;
    ok(
        app,
        "POST",
        &format!("{item}/cancel"),
        Some(json!({"cancel_date": "2026-06-01", "credit_mode": 0})),
    )
    .await;
    let other = created(
        app,
        &format!("/v1/plans/{plan}/one-time-items"),
        json!({"ext_id": "K-O2", "product_code": "TRAIN", "item_name": "Training",
            "quantity": "2", "unit_price": "80", "charge_date": "2026-02-01"}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let one_time = format!("/v1/one-time-items/{other}");
    ok(app, "PATCH", &one_time, Some(json!({"quantity": "3"}))).await;
    ok(app, "DELETE", &one_time, None).await;
    let support = created(
        app,
        &format!("/v1/plans/{plan}/recurring-items"),
        json!({"ext_id": "K-S2", "product_code": "SUP", "item_name": "Support",
            "quantity": "1", "unit_price": "99", "billing_period": 1}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    ok(
        app,
        "POST",
        &format!("/v1/recurring-items/{support}/change-dates"),
        Some(json!({"start_date": "2026-02-01"})),
    )
    .await;
    ok(app, "DELETE", &format!("/v1/plans/{plan}"), None).await;

    let log = events(app, "?after_sequence=1").await;
    assert_eq!(
        types(&log),
        [
            "plan.created",
            "recurring_item.created",
            "one_time_item.created",
            "plan.updated",
            "recurring_item.upsold",
            "plan.renewed",
            "recurring_item.renewed",
            "recurring_item.cancelled",
            "one_time_item.created",
            "one_time_item.updated",
            "one_time_item.deleted",
            "recurring_item.created",
            "recurring_item.dates_changed",
            // Deleting the plan cancels what still runs on it (the support; the
            // seats end on 2026-06-01, the setup was charged in January).
            "plan.deleted",
            "recurring_item.cancelled",
        ],
        "{log:#?}"
    );
    let sequences: Vec<i64> = log
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(sequences, (2..2 + log.len() as i64).collect::<Vec<_>>());

    let upsold = &log[4];
    assert_eq!(upsold["object_type"], "recurring_item");
    assert_eq!(upsold["object_id"], seats);
    assert_eq!(upsold["object_ext_id"], "K-S");
    assert_eq!(upsold["object_version"], 2);
    // The history is part of the item: an upsell dated ahead leaves today's terms,
    // and so only the version and time of change differ.
    let previous = upsold["data"]["previous"].as_object().unwrap();
    assert!(previous.contains_key("updated_at"), "{previous:?}");
    assert!(!previous.contains_key("item_name"), "{previous:?}");

    let renewed = &log[5];
    assert_eq!(renewed["data"]["object"]["end_date"], "2028-01-01");
    assert_eq!(renewed["data"]["previous"]["end_date"], "2027-01-01");
    assert_eq!(log[6]["data"]["previous"]["end_date"], "2027-01-01");
    let cancelled = &log[7];
    assert_eq!(cancelled["data"]["object"]["cancel_date"], "2026-06-01");
    assert_eq!(cancelled["data"]["object"]["credit_mode"], 0);
    assert_eq!(cancelled["data"]["previous"]["cancel_date"], Value::Null);
    // The item as its GET shows it now is the last event's object.
    let now = ok(app, "GET", &item, None).await;
    assert_eq!(cancelled["data"]["object"], now);
    assert_eq!(log[9]["data"]["previous"]["quantity"], "2");
    assert_eq!(log[9]["data"]["object"]["quantity"], "3");
    assert_eq!(log[10]["data"]["object"]["deleted"], true);
    assert_eq!(log[12]["data"]["previous"]["start_date"], "2026-01-01");
    assert_eq!(log[12]["data"]["object"]["start_date"], "2026-02-01");
    assert_eq!(log[13]["data"]["object"]["deleted"], true);
    assert_eq!(log[14]["object_id"], support);
    assert_eq!(log[14]["data"]["previous"]["cancel_date"], Value::Null);

    // Filters by family and by record.
    assert_eq!(events(app, "?type=plan.*").await.len(), 4);
    assert_eq!(events(app, "?type=recurring_item.cancelled").await.len(), 2);
    let of_item = events(
        app,
        &format!("?object_type=recurring_item&object_id={seats}"),
    )
    .await;
    assert_eq!(of_item.len(), 4);
}

async fn an_invoice_logs_its_lifecycle(app: &TestApp) {
    ok(
        app,
        "PATCH",
        "/v1/settings",
        Some(json!({"auto_post": false})),
    )
    .await;
    book(app, "I").await;
    let before = last_sequence(&events(app, "").await);
    ok(
        app,
        "POST",
        "/v1/bill-runs",
        Some(json!({"date": "2026-01-01"})),
    )
    .await;
    let draft = events(app, &format!("?after_sequence={before}")).await;
    assert_eq!(
        types(&draft),
        ["invoice.created", "bill_run.completed"],
        "{draft:#?}"
    );
    let invoice = draft[0]["data"]["object"].clone();
    let id = invoice["id"].as_i64().unwrap();
    assert_eq!(invoice["invoice_status"], 1);
    assert!(invoice.get("lines").is_none());
    assert_eq!(draft[0]["object_ext_id"], Value::Null);
    let run = &draft[1]["data"]["object"];
    assert_eq!(run["run_date"], "2026-01-01");
    assert_eq!(run["invoices"], 1);
    assert_eq!(run["accounts"], 1);

    let path = format!("/v1/invoices/{id}");
    ok(app, "PATCH", &path, Some(json!({"memo": "Thanks"}))).await;
    ok(app, "POST", &format!("{path}/post"), None).await;
    ok(
        app,
        "POST",
        &format!("{path}/pay"),
        Some(json!({"paid_date": "2026-01-20", "payment_reference": "WIRE-1"})),
    )
    .await;
    let after = last_sequence(&draft);
    let log = events(app, &format!("?after_sequence={after}")).await;
    assert_eq!(
        types(&log),
        ["invoice.updated", "invoice.posted", "invoice.paid"],
        "{log:#?}"
    );
    assert_eq!(log[0]["data"]["previous"]["memo"], Value::Null);
    let posted = &log[1];
    // Posted in one change: the number and the status, from the draft before it.
    assert_eq!(posted["data"]["previous"]["invoice_status"], 1);
    assert_eq!(posted["data"]["previous"]["invoice_number"], Value::Null);
    assert!(
        posted["data"]["object"]["invoice_number"]
            .as_str()
            .is_some_and(|n| n.starts_with("INV-"))
    );
    assert_eq!(posted["data"]["object"]["invoice_status"], 3);
    let paid = &log[2]["data"]["object"];
    assert_eq!(paid["invoice_status"], 4);
    assert_eq!(paid, &ok(app, "GET", &path, None).await);

    ok(
        app,
        "POST",
        "/v1/bill-runs",
        Some(json!({"date": "2026-02-01"})),
    )
    .await;
    let february = events(app, "?type=invoice.created").await;
    let second = february.last().unwrap()["object_id"].as_i64().unwrap();
    ok(
        app,
        "POST",
        &format!("/v1/invoices/{second}/cancel"),
        Some(json!({"cancel_reason": "Billed in error", "rebill": true})),
    )
    .await;
    let cancelled = events(app, "?type=invoice.cancelled").await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0]["object_id"], second);
    assert_eq!(cancelled[0]["data"]["previous"]["invoice_status"], 1);
    assert_eq!(
        cancelled[0]["data"]["object"]["cancel_reason"],
        "Billed in error"
    );
    // Rebilling releases the item's periods: bookkeeping, not an item event.
    assert_eq!(events(app, "?type=recurring_item.*").await.len(), 1);
}

async fn a_bill_run_logs_its_invoices_and_itself_and_nothing_else(app: &TestApp) {
    for ext_id in ["B1", "B2", "B3"] {
        book(app, ext_id).await;
    }
    let before = last_sequence(&events(app, "").await);
    let summary = ok(
        app,
        "POST",
        "/v1/bill-runs",
        Some(json!({"date": "2026-01-01"})),
    )
    .await;
    assert_eq!(summary["invoices"], 3, "{summary}");
    let log = events(app, &format!("?after_sequence={before}")).await;
    // Each invoice is created posted; the items it billed are bookkeeping.
    let mut expected = ["invoice.created", "invoice.posted"].repeat(3);
    expected.push("bill_run.completed");
    assert_eq!(types(&log), expected, "{log:#?}");
    for pair in log[..6].chunks(2) {
        assert_eq!(pair[0]["object_id"], pair[1]["object_id"]);
        assert_eq!(pair[1]["data"]["object"]["invoice_status"], 3);
        assert_eq!(pair[1]["data"]["previous"], Value::Null);
    }
    assert_eq!(log[6]["data"]["object"]["invoices"], 3);
    assert_eq!(log[6]["object_version"], 1);
    // A second run for the day bills nothing, and says so.
    ok(
        app,
        "POST",
        "/v1/bill-runs",
        Some(json!({"date": "2026-01-01"})),
    )
    .await;
    let again = events(app, &format!("?after_sequence={}", last_sequence(&log))).await;
    assert_eq!(types(&again), ["bill_run.completed"]);
    assert_eq!(again[0]["data"]["object"]["invoices"], 0);
}

async fn the_scheduler_logs_an_invoice_overdue_once(app: &TestApp) {
    ok(
        app,
        "POST",
        "/v1/test-clock",
        Some(json!({"today": "2026-01-01"})),
    )
    .await;
    book(app, "O").await;
    // The scheduler bills the day (each second under the test clock).
    let posted = wait_for(app, "?type=invoice.posted", 1).await;
    let invoice = posted[0]["data"]["object"].clone();
    let due = invoice["due_date"].as_str().unwrap().to_owned();
    assert_eq!(events(app, "?type=invoice.overdue").await.len(), 0);

    // The day after the due date, the invoice is overdue: once.
    let after_due = jiff::civil::Date::strptime("%Y-%m-%d", &due)
        .unwrap()
        .tomorrow()
        .unwrap();
    ok(
        app,
        "POST",
        "/v1/test-clock",
        Some(json!({"today": after_due.to_string()})),
    )
    .await;
    let overdue = wait_for(app, "?type=invoice.overdue", 1).await;
    assert_eq!(overdue[0]["object_id"], invoice["id"]);
    assert_eq!(overdue[0]["data"]["object"]["invoice_status"], 3);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(events(app, "?type=invoice.overdue").await.len(), 1);
}

/// The events `query` selects, once there are `count` of them (within 20 s).
async fn wait_for(app: &TestApp, query: &str, count: usize) -> Vec<Value> {
    for _ in 0..200 {
        let found = events(app, query).await;
        if found.len() >= count {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "fewer than {count} events for {query}: {:#?}",
        events(app, "").await
    );
}
