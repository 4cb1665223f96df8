//! Webhooks, against a real receiver on a loopback port: endpoints, signed
//! deliveries in order, retries on the tenant's clock, 410, timeouts, filters,
//! rotation, test, recovery and retry, and tenants kept apart.

use std::collections::{BTreeSet, VecDeque};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::assert_problem;
use crate::helpers::TestApp;
use crate::{on_both_backends, on_both_backends_with};

on_both_backends_with!(crate::helpers::spawn_with_webhooks:
    events_reach_the_endpoint_signed_and_in_order,
    an_endpoint_filtered_to_invoices_gets_only_invoice_events,
    a_failing_receiver_is_retried_on_the_tenant_clock_until_it_answers,
    gone_disables_the_endpoint_and_fails_what_was_pending,
    a_hanging_receiver_times_out_and_is_retried,
    a_rotated_secret_and_the_old_one_both_sign_for_a_day,
    test_recover_and_retry_send_again,
    an_endpoint_gets_only_its_own_tenants_events,
);

on_both_backends!(
    private_addresses_are_refused_unless_allowed,
    a_server_killed_mid_delivery_loses_no_event,
);

/// What the receiver does with a request: answer with a status, or hang.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    Hang,
}

/// A receiver on a loopback port: keeps every request, answers from its script
/// (then 200).
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn answer(&self, answers: &[Answer]) {
        self.script.lock().unwrap().extend(answers);
    }

    fn requests(&self) -> Vec<(HeaderMap, String)> {
        self.got.lock().unwrap().clone()
    }

    fn bodies(&self) -> Vec<Value> {
        self.requests()
            .iter()
            .map(|(_, body)| serde_json::from_str(body).unwrap())
            .collect()
    }

    /// The requests, once there are `count` (within 20 s).
    async fn wait_for(&self, count: usize) -> Vec<(HeaderMap, String)> {
        for _ in 0..200 {
            let got = self.requests();
            if got.len() >= count {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("fewer than {count} requests: {:#?}", self.bodies());
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    r.got.lock().unwrap().push((headers, body));
    let answer = r.script.lock().unwrap().pop_front();
    match answer.unwrap_or(Answer::Status(200)) {
        Answer::Status(status) => StatusCode::from_u16(status).unwrap(),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK
        }
    }
}

fn types(bodies: &[Value]) -> Vec<&str> {
    bodies.iter().map(|b| b["type"].as_str().unwrap()).collect()
}

async fn endpoint(app: &TestApp, body: Value) -> Value {
    let (status, _, created) = app.rest("POST", "/v1/webhook-endpoints", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created
}

async fn account(app: &TestApp, ext_id: &str) -> i64 {
    let (status, _, created) = app
        .rest(
            "POST",
            "/v1/accounts",
            Some(
                json!({"ext_id": ext_id, "account_name": "Acme", "account_type": 1,
                "account_status": 1, "email": "billing@acme.example"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_i64().unwrap()
}

/// The deliveries `query` selects, once the first of them has `attempts` (20 s).
async fn delivery_after(app: &TestApp, query: &str, attempts: i64) -> Value {
    delivery_when(app, query, attempts, |status| status != 1).await
}

/// The first delivery of the list once it has recorded `attempts` attempts
/// and its status satisfies `settled`: the receiver sees a request before
/// the worker records its attempt, so a test polls for the record.
async fn delivery_when(
    app: &TestApp,
    query: &str,
    attempts: i64,
    settled: impl Fn(i64) -> bool,
) -> Value {
    for _ in 0..200 {
        let (_, _, page) = app
            .rest("GET", &format!("/v1/webhook-deliveries{query}"), None)
            .await;
        if let Some(first) = page["data"].as_array().and_then(|d| d.first())
            && first["attempts"].as_i64() >= Some(attempts)
            && first["status"].as_i64().is_some_and(&settled)
        {
            let id = first["id"].as_i64().unwrap();
            let (_, _, one) = app
                .rest("GET", &format!("/v1/webhook-deliveries/{id}"), None)
                .await;
            return one;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no delivery with {attempts} attempts for {query}");
}

/// Verifies a request with an independent implementation of Standard Webhooks.
fn verify(secret: &str, headers: &HeaderMap, body: &str) {
    let webhook = standardwebhooks::Webhook::new(secret).expect("a secret");
    webhook
        .verify(body.as_bytes(), headers)
        .unwrap_or_else(|e| panic!("the signature does not verify: {e:?}"));
}

async fn events_reach_the_endpoint_signed_and_in_order(app: &TestApp) {
    let (receiver, url) = Receiver::start().await;
    let created = endpoint(app, json!({"url": url, "description": "CRM"})).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(created["event_types"], Value::Null);
    // The secret is shown once.
    let id = created["id"].as_i64().unwrap();
    let (_, _, read) = app
        .rest("GET", &format!("/v1/webhook-endpoints/{id}"), None)
        .await;
    assert!(read.get("secret").is_none(), "{read}");

    let first = account(app, "W-1").await;
    account(app, "W-2").await;
    let (status, _, _) = app
        .rest(
            "PATCH",
            &format!("/v1/accounts/{first}"),
            Some(json!({"account_name": "Acme Inc"})),
        )
        .await;
    assert_eq!(status, 200);

    let got = receiver.wait_for(3).await;
    let bodies = receiver.bodies();
    assert_eq!(
        types(&bodies),
        ["account.created", "account.created", "account.updated"]
    );
    let sequences: Vec<i64> = bodies
        .iter()
        .map(|b| b["sequence"].as_i64().unwrap())
        .collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    for (headers, body) in &got {
        verify(&secret, headers, body);
        let parsed: Value = serde_json::from_str(body).unwrap();
        assert_eq!(headers["webhook-id"], parsed["id"].as_str().unwrap());
        assert_eq!(headers["content-type"], "application/json");
    }
    // The body is the event as GET /v1/events/{id} shows it.
    let updated = &bodies[2];
    let (_, _, event) = app
        .rest(
            "GET",
            &format!("/v1/events/{}", updated["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(updated, &event);
    assert_eq!(updated["data"]["previous"]["account_name"], "Acme");

    let delivery = delivery_after(app, &format!("?endpoint_id={id}&status=2"), 1).await;
    assert_eq!(delivery["status"], 2);
    assert_eq!(delivery["attempt_log"][0]["status_code"], 200);
    let (_, _, page) = app
        .rest("GET", "/v1/webhook-deliveries?include=total_count", None)
        .await;
    assert_eq!(page["total_count"], 3);
}

async fn an_endpoint_filtered_to_invoices_gets_only_invoice_events(app: &TestApp) {
    let (receiver, url) = Receiver::start().await;
    endpoint(app, json!({"url": url, "event_types": ["invoice.*"]})).await;
    let id = account(app, "F-1").await;
    let (_, _, plan) = app
        .rest(
            "POST",
            &format!("/v1/accounts/{id}/plans"),
            Some(json!({"ext_id": "F-P", "start_date": "2026-01-01", "billing_day": 1})),
        )
        .await;
    let plan = plan["id"].as_i64().unwrap();
    let (status, _, _) = app
        .rest(
            "POST",
            &format!("/v1/plans/{plan}/recurring-items"),
            Some(
                json!({"ext_id": "F-S", "product_code": "SEAT", "item_name": "Seats",
                "quantity": "2", "unit_price": "10", "billing_period": 1}),
            ),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _, _) = app
        .rest("POST", "/v1/bill-runs", Some(json!({"date": "2026-01-01"})))
        .await;
    assert_eq!(status, 200);
    receiver.wait_for(2).await;
    // Whatever else the fan-out reads, nothing but invoice events is sent.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        types(&receiver.bodies()),
        ["invoice.created", "invoice.posted"]
    );
}

/// A date the test clock can move a tenant to: two days past the real today.
fn days_ahead(days: i64) -> String {
    jiff::Zoned::now()
        .date()
        .checked_add(jiff::Span::new().days(days))
        .unwrap()
        .to_string()
}

async fn a_failing_receiver_is_retried_on_the_tenant_clock_until_it_answers(app: &TestApp) {
    let (receiver, url) = Receiver::start().await;
    receiver.answer(&[Answer::Status(500), Answer::Status(500)]);
    let id = endpoint(app, json!({"url": url})).await["id"]
        .as_i64()
        .unwrap();
    account(app, "R-1").await;
    // At once, then 5 s later (give or take 10%).
    receiver.wait_for(2).await;
    let pending = delivery_when(app, &format!("?endpoint_id={id}"), 2, |_| true).await;
    assert_eq!(pending["status"], 1, "{pending}");
    assert_eq!(pending["attempts"], 2);
    assert!(pending["next_attempt_at"].is_string());
    // The next try is 5 minutes away; moving the tenant's date past it makes it due.
    let (status, _, _) = app
        .rest(
            "POST",
            "/v1/test-clock",
            Some(json!({"today": days_ahead(2)})),
        )
        .await;
    assert_eq!(status, 200);
    let got = receiver.wait_for(3).await;
    let ids: Vec<_> = got.iter().map(|(h, _)| h["webhook-id"].clone()).collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "the same webhook-id on every attempt"
    );
    let delivery = delivery_after(app, &format!("?endpoint_id={id}"), 3).await;
    assert_eq!(delivery["status"], 2, "{delivery}");
    let statuses: Vec<&Value> = delivery["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(500), &json!(200)]);
    assert_eq!(
        delivery["attempt_log"][0]["error"],
        "the endpoint answered 500"
    );
    // Delivered again: the endpoint is healthy.
    let (_, _, endpoint) = app
        .rest("GET", &format!("/v1/webhook-endpoints/{id}"), None)
        .await;
    assert_eq!(endpoint["failing_since"], Value::Null);
    // The worker's attempts are in the metrics, by outcome.
    let metrics = app.scrape_metrics().await;
    let attempts = |outcome: &str| {
        crate::helpers::count(
            &metrics,
            &format!("dynabill_webhook_attempts_total{{outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!((attempts("retrying"), attempts("delivered")), (2, 1));
    assert_eq!(
        crate::helpers::count(&metrics, "dynabill_webhook_backlog"),
        0
    );
}

async fn gone_disables_the_endpoint_and_fails_what_was_pending(app: &TestApp) {
    let (receiver, url) = Receiver::start().await;
    receiver.answer(&[Answer::Status(410)]);
    let id = endpoint(app, json!({"url": url})).await["id"]
        .as_i64()
        .unwrap();
    account(app, "G-1").await;
    receiver.wait_for(1).await;
    let mut disabled = Value::Null;
    for _ in 0..100 {
        let (_, _, endpoint) = app
            .rest("GET", &format!("/v1/webhook-endpoints/{id}"), None)
            .await;
        if endpoint["enabled"] == false {
            disabled = endpoint;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        disabled["disabled_reason"],
        "the endpoint answered 410 Gone"
    );
    account(app, "G-2").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.requests().len(), 1, "nothing more is sent");
    let (_, _, page) = app
        .rest("GET", "/v1/webhook-deliveries?status=3", None)
        .await;
    assert_eq!(page["data"][0]["attempts"], 1);
    // Enabled again, it takes the events from then on.
    let (status, _, enabled) = app
        .rest(
            "PATCH",
            &format!("/v1/webhook-endpoints/{id}"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, 200, "{enabled}");
    assert_eq!(enabled["disabled_reason"], Value::Null);
    for null in ["enabled", "url"] {
        let refused = app
            .rest(
                "PATCH",
                &format!("/v1/webhook-endpoints/{id}"),
                Some(json!({ null: null })),
            )
            .await;
        assert_problem(&refused, 422, "invalid_field", Some(null));
    }
    account(app, "G-3").await;
    receiver.wait_for(2).await;
    assert_eq!(receiver.bodies()[1]["object_ext_id"], "G-3");
}

async fn a_hanging_receiver_times_out_and_is_retried(app: &TestApp) {
    let (receiver, url) = Receiver::start().await;
    receiver.answer(&[Answer::Hang]);
    endpoint(app, json!({"url": url})).await;
    account(app, "H-1").await;
    // 15 s of waiting, then 5 s to the retry, which is answered.
    for _ in 0..300 {
        if receiver.requests().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivery = delivery_after(app, "?status=2", 2).await;
    assert_eq!(delivery["attempt_log"][0]["status_code"], Value::Null);
    assert_eq!(delivery["attempt_log"][0]["error"], "timed out after 15 s");
    assert!(delivery["attempt_log"][0]["duration_ms"].as_i64().unwrap() >= 14_000);
    assert_eq!(delivery["attempt_log"][1]["status_code"], 200);
}

async fn a_rotated_secret_and_the_old_one_both_sign_for_a_day(app: &TestApp) {
    let (receiver, url) = Receiver::start().await;
    let created = endpoint(app, json!({"url": url})).await;
    let id = created["id"].as_i64().unwrap();
    let old = created["secret"].as_str().unwrap().to_owned();
    let (status, _, rotated) = app
        .rest(
            "POST",
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    assert!(rotated["previous_secret_valid_until"].is_string());
    account(app, "S-1").await;
    let got = receiver.wait_for(1).await;
    let (headers, body) = &got[0];
    verify(&new, headers, body);
    verify(&old, headers, body);
    let signatures = headers["webhook-signature"].to_str().unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    assert!(signatures.split(' ').all(|s| s.starts_with("v1,")));
}

async fn test_recover_and_retry_send_again(app: &TestApp) {
    account(app, "B-1").await;
    let (receiver, url) = Receiver::start().await;
    let id = endpoint(app, json!({"url": url})).await["id"]
        .as_i64()
        .unwrap();
    // A new endpoint takes the events from its creation on.
    let (status, _, queued) = app
        .rest("POST", &format!("/v1/webhook-endpoints/{id}/test"), None)
        .await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["event_type"], "webhook.test");
    receiver.wait_for(1).await;
    let test = &receiver.bodies()[0];
    assert_eq!(test["type"], "webhook.test");
    assert_eq!(test["sequence"], Value::Null);
    assert_eq!(test["data"]["object"]["id"], id);

    account(app, "B-2").await;
    receiver.wait_for(2).await;
    // Recovering from the start of the day resends both accounts' events.
    let today = days_ahead(0);
    let (status, _, recovered) = app
        .rest(
            "POST",
            &format!("/v1/webhook-endpoints/{id}/recover"),
            Some(json!({"since": today})),
        )
        .await;
    assert_eq!(status, 202, "{recovered}");
    assert_eq!(recovered["queued"], 2);
    receiver.wait_for(4).await;
    let bodies = receiver.bodies();
    assert_eq!(bodies[2]["object_ext_id"], "B-1");
    assert_eq!(bodies[3]["object_ext_id"], "B-2");
    assert_eq!(
        bodies[3]["id"], bodies[1]["id"],
        "the same event, the same id"
    );

    // Retrying a delivered delivery sends it once more.
    let (_, _, page) = app
        .rest(
            "GET",
            &format!("/v1/webhook-deliveries?endpoint_id={id}&status=2"),
            None,
        )
        .await;
    let delivery = page["data"][0]["id"].as_i64().unwrap();
    let (status, _, retried) = app
        .rest(
            "POST",
            &format!("/v1/webhook-deliveries/{delivery}/retry"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{retried}");
    receiver.wait_for(5).await;
    let bad = app
        .rest(
            "POST",
            "/v1/webhook-endpoints/999999/recover",
            Some(json!({"since": today})),
        )
        .await;
    assert_problem(&bad, 404, "not_found", None);
}

async fn an_endpoint_gets_only_its_own_tenants_events(app: &TestApp) {
    let (mine, my_url) = Receiver::start().await;
    let (theirs, their_url) = Receiver::start().await;
    let id = endpoint(app, json!({"url": my_url})).await["id"]
        .as_i64()
        .unwrap();
    let other = app.new_tenant("other").await;
    let (status, _, _) = app
        .rest_as(
            &other,
            "POST",
            "/v1/webhook-endpoints",
            Some(json!({"url": their_url})),
            &[],
        )
        .await;
    assert_eq!(status, 201);
    account(app, "T-1").await;
    app.create_account_as(&other, "T-1", json!({})).await;
    mine.wait_for(1).await;
    theirs.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mine.requests().len(), 1);
    assert_eq!(theirs.requests().len(), 1);
    assert_eq!(mine.bodies()[0]["sequence"], 1);
    assert_eq!(theirs.bodies()[0]["sequence"], 1);
    assert_ne!(mine.bodies()[0]["id"], theirs.bodies()[0]["id"]);
    let hidden = app
        .rest_as(
            &other,
            "GET",
            &format!("/v1/webhook-endpoints/{id}"),
            None,
            &[],
        )
        .await;
    assert_problem(&hidden, 404, "not_found", None);
    let (_, _, listed) = app
        .rest_as(&other, "GET", "/v1/webhook-deliveries", None, &[])
        .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}

async fn private_addresses_are_refused_unless_allowed(app: &TestApp) {
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.0.0.7/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
    ] {
        let refused = app
            .rest("POST", "/v1/webhook-endpoints", Some(json!({"url": url})))
            .await;
        assert_problem(&refused, 422, "invalid_field", Some("url"));
    }
    let refused = app
        .rest(
            "POST",
            "/v1/webhook-endpoints",
            Some(json!({"url": "ftp://crm.example.com/"})),
        )
        .await;
    assert_problem(&refused, 422, "invalid_field", Some("url"));
    // A type longer than the schema's 64 characters (contract fuzzing found it taken).
    let long = format!("a.{}", "b".repeat(63));
    let refused = app
        .rest(
            "POST",
            "/v1/webhook-endpoints",
            Some(json!({"url": "https://crm.example.com/h", "event_types": [long]})),
        )
        .await;
    assert_problem(&refused, 422, "invalid_field", Some("event_types"));
    let refused = app
        .rest(
            "POST",
            "/v1/webhook-endpoints",
            Some(json!({"url": "https://crm.example.com/h", "event_types": ["Invoice"]})),
        )
        .await;
    assert_problem(&refused, 422, "invalid_field", None);
    let created = endpoint(app, json!({"url": "https://crm.example.com/hooks"})).await;
    assert_eq!(created["enabled"], true);
    let (_, _, listed) = app.rest("GET", "/v1/webhook-endpoints", None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let id = created["id"].as_i64().unwrap();
    let (status, _, _) = app
        .rest("DELETE", &format!("/v1/webhook-endpoints/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let (_, _, listed) = app.rest("GET", "/v1/webhook-endpoints", None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 0);
}

/// `dynabill serve` on the test's database, as a process of its own: its
/// webhook worker claims deliveries for `lease_seconds`.
fn serve_process(app: &TestApp, lease_seconds: u32) -> std::process::Child {
    app.dynabill_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--no-scheduler"])
        .args([
            "--allow-private-webhooks",
            "--database-url",
            &app.database_url,
        ])
        .args(["--webhook-lease-seconds", &lease_seconds.to_string()])
        .env("DYNABILL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGKILL of the server while a delivery is in flight and others wait behind
/// it, then a restart: once the dead server's claims lapse, every event is
/// delivered (the one in flight possibly twice, none never).
async fn a_server_killed_mid_delivery_loses_no_event(app: &TestApp) {
    let (receiver, url) = Receiver::start().await;
    receiver.answer(&[Answer::Hang]);
    let tenant = app.app.tenant_by_app_key(&app.cred.app_key).await.unwrap();
    let fields = dynabill_app::model::WebhookEndpointFields {
        url,
        description: None,
        event_types: None,
        enabled: true,
    };
    app.app
        .clone()
        .with_private_webhooks()
        .create_webhook_endpoint(&tenant, &fields)
        .await
        .unwrap();
    for n in 0..5 {
        account(app, &format!("K-{n}")).await;
    }
    let mut first = serve_process(app, 3);
    // The first delivery hangs in the receiver; all five are claimed.
    receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.kill().unwrap();
    first.wait().unwrap();
    let (_, _, page) = app
        .rest("GET", "/v1/webhook-deliveries?status=1", None)
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 5, "{page}");
    assert_eq!(receiver.requests().len(), 1, "nothing sent past the hang");

    let mut second = serve_process(app, 3);
    let mut all_delivered = false;
    for _ in 0..300 {
        let (_, _, pending) = app
            .rest("GET", "/v1/webhook-deliveries?status=1", None)
            .await;
        if pending["data"].as_array().unwrap().is_empty() {
            all_delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.kill().unwrap();
    second.wait().unwrap();
    assert!(
        all_delivered,
        "every delivery is delivered after the restart"
    );
    let bodies = receiver.bodies();
    let got: BTreeSet<&str> = bodies
        .iter()
        .map(|b| b["object_ext_id"].as_str().unwrap())
        .collect();
    assert_eq!(got, BTreeSet::from(["K-0", "K-1", "K-2", "K-3", "K-4"]));
    let ids: BTreeSet<String> = receiver
        .requests()
        .iter()
        .map(|(h, _)| h["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 5, "one webhook-id per event, however often sent");
    let (_, _, done) = app
        .rest("GET", "/v1/webhook-deliveries?status=2", None)
        .await;
    assert_eq!(done["data"].as_array().unwrap().len(), 5, "{done}");
    // In order: the restarted server sent the hung event first, then the rest.
    assert_eq!(types(&bodies[1..]), ["account.created"; 5]);
    let sequences: Vec<i64> = bodies[1..]
        .iter()
        .map(|b| b["sequence"].as_i64().unwrap())
        .collect();
    assert!(sequences.is_sorted(), "{sequences:?}");
}
