//! `GET /metrics`: the Prometheus text the server shows moves by exactly what was
//! done — requests by door, operation and status, a bill run's accounts,
//! invoices and lines for its tenant — and shows the database pools.

use std::collections::BTreeMap;

use serde_json::json;

use crate::helpers::{TestApp, assert_ok, count};
use crate::on_both_backends_with;

on_both_backends_with!(crate::helpers::spawn_with_test_clock_alone:
    metrics_count_requests_and_bill_runs_by_what_they_were);

/// How far a count moved between two scrapes.
fn moved(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>, key: &str) -> i64 {
    count(after, key) - count(before, key)
}

async fn metrics_count_requests_and_bill_runs_by_what_they_were(app: &TestApp) {
    let tenant = app
        .app
        .tenant_by_app_key(&app.cred.app_key)
        .await
        .unwrap()
        .id
        .0;
    let before = app.scrape_metrics().await;

    for n in 0..3 {
        app.create_account(&format!("M-{n}"), json!({})).await;
    }
    app.create_plan("M-P", "M-0", json!({"StartDate": "2024-01-01"}))
        .await;
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 110, "ExtID": "M-I", "PlanExtID": "M-P",
            "ProductCode": "SKU", "ItemName": "Seat", "Quantity": 2, "UnitPrice": "12.50", "BillingPeriod": 1}))
        .await;
    assert_ok(&reply);
    let (_, reply) = app.get("api_code=3&entity_code=69").await;
    assert_ok(&reply);
    let (status, _, _) = app.rest("GET", "/v1/accounts?limit=2", None).await;
    assert_eq!(status, 200);
    let (status, _, _) = app.rest("GET", "/v1/accounts/999999", None).await;
    assert_eq!(status, 404);
    let refused = app
        .client
        .get(format!("{}?api_code=3&entity_code=69", app.endpoint()))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let billed = app
        .client
        .post(format!("{}/api/testclock", app.base))
        .header("AppKey", &app.cred.app_key)
        .header("UserName", &app.cred.user)
        .header("AccessToken", &app.cred.token)
        .json(&json!({"Today": "2024-01-01", "BillRun": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(billed.status(), 200);

    let after = app.scrape_metrics().await;
    let requests = |door: &str, operation: &str, status: u16| {
        moved(
            &before,
            &after,
            &format!(
                "dynabill_http_requests_total{{door=\"{door}\",operation=\"{operation}\",status=\"{status}\"}}"
            ),
        )
    };
    assert_eq!(requests("dynamic", "10/69", 200), 3, "{after:#?}");
    assert_eq!(requests("dynamic", "10/71", 200), 1);
    assert_eq!(requests("dynamic", "10/110", 200), 1);
    assert_eq!(requests("dynamic", "3/69", 200), 1);
    assert_eq!(
        requests("dynamic", "unrouted", 401),
        1,
        "refused before its codes are read"
    );
    assert_eq!(requests("rest", "GET /v1/accounts", 200), 1);
    assert_eq!(requests("rest", "GET /v1/accounts/{id}", 404), 1);
    assert_eq!(requests("testclock", "POST /api/testclock", 200), 1);
    assert_eq!(
        moved(
            &before,
            &after,
            "dynabill_http_request_duration_seconds_count{door=\"dynamic\",operation=\"10/69\"}"
        ),
        3
    );

    let run = |name: &str| moved(&before, &after, &format!("{name}{{tenant=\"{tenant}\"}}"));
    assert_eq!(
        moved(
            &before,
            &after,
            &format!("dynabill_bill_runs_total{{tenant=\"{tenant}\",outcome=\"completed\"}}")
        ),
        1
    );
    assert_eq!(
        run("dynabill_bill_run_accounts_total"),
        3,
        "every account read"
    );
    assert_eq!(run("dynabill_bill_run_invoices_total"), 1);
    assert_eq!(run("dynabill_bill_run_lines_total"), 1);
    assert_eq!(run("dynabill_bill_run_duration_seconds_count"), 1);

    let pools: Vec<&String> = after
        .keys()
        .filter(|k| k.starts_with("dynabill_db_connections{") && k.contains("state=\"max\""))
        .collect();
    assert!(!pools.is_empty(), "{after:#?}");
    assert!(pools.iter().all(|k| count(&after, k) >= 1));
    assert_eq!(count(&after, "dynabill_webhook_backlog"), 0);
    assert!(
        moved(&before, &after, "dynabill_db_acquires_total") >= 6,
        "every request took a connection"
    );
    assert!(after.contains_key("dynabill_db_acquire_wait_microseconds_total"));
}
