//! Taxation in each mode: built-in rates, the external workflow (1007 → 1008), and
//! Avalara AvaTax against a fake AvaTax server started by the test.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use dynabill_app::tenants::SettingsChange;
use dynabill_core::domain::TaxMode;
use dynabill_core::tax::TaxRule;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_method_error, assert_ok};
use crate::on_both_backends;

on_both_backends!(
    built_in_rates_tax_each_line_by_the_most_specific_rule,
    the_external_workflow_waits_in_pending_tax_until_1008_posts,
    avatax_taxes_invoices_and_failures_wait_in_pending_tax,
);

fn bill_run(app: &TestApp, date: &str) {
    let output = app
        .dynabill_command()
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
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn set_mode(app: &TestApp, change: SettingsChange) {
    app.app
        .update_tenant_settings(&app.cred.app_key, change)
        .await
        .unwrap();
}

async fn customer(app: &TestApp, ext: &str, extra: Value, price: &str) {
    app.create_account(ext, extra).await;
    app.create_plan(&format!("{ext}-P"), ext, json!({"StartDate": "2024-01-01"}))
        .await;
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 110, "ExtID": format!("{ext}-I"), "PlanExtID": format!("{ext}-P"),
            "ProductCode": "SAAS-1", "ItemName": "Subscription", "Quantity": 1, "UnitPrice": price, "BillingPeriod": 1, "TaxCode": "SW050000"}))
        .await;
    assert_ok(&reply);
}

fn number(v: &Value) -> Decimal {
    v.to_string().trim_matches('"').parse().unwrap()
}

/// BILLING.md §8 invariant 2 on every invoice of the tenant.
async fn assert_totals_add_up(app: &TestApp) {
    let (_, reply) = app
        .get("api_code=3&entity_code=119&IncludeLines=1&PageSize=1000")
        .await;
    for invoice in reply["DATA"].as_array().unwrap() {
        let lines = invoice["Lines"].as_array().unwrap();
        let subtotal: Decimal = lines.iter().map(|l| number(&l["Amount"])).sum();
        let taxes: Decimal = lines
            .iter()
            .flat_map(|l| l["Taxes"].as_array().unwrap())
            .map(|t| number(&t["Amount"]))
            .sum();
        assert_eq!(number(&invoice["Subtotal"]), subtotal, "{invoice}");
        assert_eq!(
            number(&invoice["TaxTotal"]),
            taxes.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero),
            "{invoice}"
        );
        assert_eq!(
            number(&invoice["Total"]),
            number(&invoice["Subtotal"]) + number(&invoice["TaxTotal"]),
            "{invoice}"
        );
        for line in lines {
            let sum: Decimal = line["Taxes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| number(&t["Amount"]))
                .sum();
            assert_eq!(
                number(&line["TaxAmount"]),
                sum,
                "a line's TaxAmount is the sum of its taxes: {line}"
            );
        }
    }
}

async fn invoice_of(app: &TestApp, account: &str) -> Value {
    let (_, reply) = app
        .get(&format!(
            "api_code=3&entity_code=119&AccountExtID={account}&IncludeLines=1"
        ))
        .await;
    assert_eq!(reply["TOTAL_COUNT"], json!(1), "{reply}");
    reply["DATA"][0].clone()
}

async fn built_in_rates_tax_each_line_by_the_most_specific_rule(app: &TestApp) {
    set_mode(
        app,
        SettingsChange {
            tax_mode: Some(TaxMode::BuiltIn),
            ..Default::default()
        },
    )
    .await;
    let rule = |name: &str, state: Option<&str>, code: Option<&str>, rate: &str| TaxRule {
        name: name.into(),
        country: "us".into(),
        state: state.map(Into::into),
        tax_code: code.map(Into::into),
        rate: rate.parse().unwrap(),
    };
    for r in [
        rule("STATE SALES TAX", None, None, "5"),
        rule("STATE SALES TAX", Some("ca"), None, "7.25"),
        rule("CITY TAX", Some("CA"), None, "1.5"),
        rule("STATE SALES TAX", Some("TX"), Some("SW050000"), "0"),
    ] {
        app.app.add_tax_rate(&app.cred.app_key, r).await.unwrap();
    }
    customer(app, "CA", json!({"Country": "US", "State": "CA"}), "100.00").await;
    customer(app, "NY", json!({"Country": "US", "State": "NY"}), "100.00").await;
    customer(app, "TX", json!({"Country": "US", "State": "TX"}), "100.00").await;
    customer(
        app,
        "EXEMPT",
        json!({"Country": "US", "State": "CA", "TaxExempt": 1, "TaxExemptionNumber": "EX-1"}),
        "100.00",
    )
    .await;
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 75, "ExtID": "REFUND", "PlanExtID": "CA-P", "ProductCode": "CREDIT",
            "ItemName": "Goodwill credit", "Quantity": 1, "UnitPrice": "-20.00", "ChargeDate": "2024-01-01"}))
        .await;
    assert_ok(&reply);
    bill_run(app, "2024-01-01");

    let ca = invoice_of(app, "CA").await;
    let lines = ca["Lines"].as_array().unwrap();
    let recurring = lines.iter().find(|l| l["LineType"] == json!(1)).unwrap();
    let taxes: Vec<(String, String)> = recurring["Taxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["Description"].as_str().unwrap().to_owned(),
                t["Amount"].to_string(),
            )
        })
        .collect();
    assert_eq!(
        taxes,
        [
            ("STATE SALES TAX".to_owned(), "7.25".to_owned()),
            ("CITY TAX".to_owned(), "1.50".to_owned())
        ]
    );
    assert_eq!(recurring["Taxes"][0]["Rate"], json!(7.25));
    let credit = lines.iter().find(|l| l["LineType"] == json!(2)).unwrap();
    let credit_taxes: Vec<String> = credit["Taxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["Amount"].to_string())
        .collect();
    assert_eq!(
        credit_taxes,
        ["-1.45", "-0.30"],
        "a credit gets negative tax"
    );
    assert_eq!(
        (
            ca["Subtotal"].to_string(),
            ca["TaxTotal"].to_string(),
            ca["Total"].to_string()
        ),
        ("80.00".into(), "7.00".into(), "87.00".into())
    );
    let ny = invoice_of(app, "NY").await;
    assert_eq!(
        (ny["TaxTotal"].to_string(), ny["Total"].to_string()),
        ("5.00".into(), "105.00".into()),
        "country rule for another state"
    );
    let tx = invoice_of(app, "TX").await;
    assert_eq!(
        tx["Lines"][0]["Taxes"][0]["Amount"].to_string(),
        "0.00",
        "state + tax code beats state"
    );
    let exempt = invoice_of(app, "EXEMPT").await;
    assert!(
        exempt["Lines"][0]["Taxes"].as_array().unwrap().is_empty(),
        "exempt accounts get no tax lines"
    );
    assert_eq!(exempt["Total"].to_string(), "100.00");
    assert_totals_add_up(app).await;
}

async fn the_external_workflow_waits_in_pending_tax_until_1008_posts(app: &TestApp) {
    set_mode(
        app,
        SettingsChange {
            tax_mode: Some(TaxMode::External),
            ..Default::default()
        },
    )
    .await;
    customer(app, "EXT", json!({"Country": "US", "State": "WA", "City": "Seattle", "Zip": "98101", "Address": "1 Pike St"}), "49.99").await;
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 75, "ExtID": "SETUP", "PlanExtID": "EXT-P", "ProductCode": "SETUP",
            "ItemName": "Setup", "Quantity": 1, "UnitPrice": "100.00", "ChargeDate": "2024-01-01", "TaxCode": "00123"}))
        .await;
    assert_ok(&reply);
    bill_run(app, "2024-01-01");
    let invoice = invoice_of(app, "EXT").await;
    assert_eq!(
        (
            invoice["InvoiceStatus"].clone(),
            invoice["InvoiceNumber"].clone()
        ),
        (json!(2), Value::Null),
        "waits in Pending Tax, unnumbered"
    );
    let id = invoice["ID"].as_str().unwrap().to_owned();

    let (_, pending) = app.get("api_code=1007&entity_code=119").await;
    assert_ok(&pending);
    let rows = pending["DATA"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        pending["TOTAL_COUNT"],
        json!(2),
        "one row, and one count, per line"
    );
    // Pages hold lines: one line per page, the total counted once and carried.
    let (_, first) = app.get("api_code=1007&entity_code=119&PageSize=1").await;
    assert_eq!(first["DATA"].as_array().unwrap().len(), 1);
    assert_eq!(first["TOTAL_COUNT"], json!(2));
    let cursor = first["NEXT_CURSOR"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let (_, second) = app
        .get(&format!(
            "api_code=1007&entity_code=119&PageSize=1&Cursor={cursor}"
        ))
        .await;
    assert_eq!(second["DATA"].as_array().unwrap().len(), 1);
    assert_eq!(second["TOTAL_COUNT"], json!(2));
    assert_eq!(second["NEXT_CURSOR"], Value::Null);
    assert_ne!(
        first["DATA"][0]["InvoiceLineID2"],
        second["DATA"][0]["InvoiceLineID2"]
    );
    for row in rows {
        assert_eq!(row["BillingInvoiceID2"], json!(id));
        assert_eq!(
            (
                row["City"].clone(),
                row["State"].clone(),
                row["Zip"].clone(),
                row["Country"].clone()
            ),
            (json!("Seattle"), json!("WA"), json!("98101"), json!("US"))
        );
    }
    let setup = rows
        .iter()
        .find(|r| r["ProductCode"] == json!("SETUP"))
        .unwrap();
    assert_eq!(
        setup["TaxCode"],
        json!("00123"),
        "tax codes keep their leading zeros"
    );
    assert_eq!(setup["Amount"].to_string(), "100.00");
    let line_ids: Vec<String> = rows
        .iter()
        .map(|r| r["InvoiceLineID2"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        app.get(&format!("api_code=1007&entity_code=119&ID={id}"))
            .await
            .1["DATA"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Every failure changes nothing.
    let seven = json!([
        {"description": "STATE TAX", "amount": 2.6}, {"description": "COUNTY TAX", "amount": "0.25"},
        {"description": "CITY TAX", "amount": 0.5}, {"description": "SPECIAL DISTRICT TAX", "amount": 0.125},
        {"description": "E911 FEE", "amount": 0.00625}, {"description": "USF", "amount": 0.03875},
        {"description": "UTILITY USERS TAX", "amount": 0.01234}
    ]);
    let body =
        |items: Value| json!({"api_code": 1008, "entity_code": 119, "id": id, "items": items});
    let (status, reply) = app.post(body(json!([{"id": 999999, "taxes": []}]))).await;
    assert_method_error(status, &reply, "3", "999999");
    let (status, reply) = app
        .post(body(
            json!([{"id": line_ids[0], "taxes": [{"description": "X", "amount": 0.123456}]}]),
        ))
        .await;
    assert_method_error(status, &reply, "2", "amount");
    let (status, reply) = app
        .post(body(
            json!([{"id": line_ids[0], "taxes": [{"description": "X", "amount": "lots"}]}]),
        ))
        .await;
    assert_method_error(status, &reply, "2", "amount");
    let (status, reply) = app
        .post(json!({"api_code": 1008, "entity_code": 119, "items": []}))
        .await;
    assert_method_error(status, &reply, "1", "id");
    assert_eq!(
        invoice_of(app, "EXT").await,
        invoice,
        "failed calls change nothing"
    );

    let recurring = rows
        .iter()
        .find(|r| r["ProductCode"] == json!("SAAS-1"))
        .unwrap()["InvoiceLineID2"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, reply) = app
        .post(body(
            json!([{"id": recurring, "tax_code": "SW052000", "taxes": seven}]),
        ))
        .await;
    assert_ok(&reply);
    let posted = invoice_of(app, "EXT").await;
    assert_eq!(posted["InvoiceStatus"], json!(3));
    assert!(posted["InvoiceNumber"].is_string(), "numbered when posted");
    let line = posted["Lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["InvoiceLineID"] == json!(recurring))
        .unwrap();
    assert_eq!(line["Taxes"].as_array().unwrap().len(), 7);
    assert_eq!(
        line["TaxAmount"].to_string(),
        "3.53234",
        "tax amounts keep up to 5 decimals as sent"
    );
    assert_eq!(line["TaxCode"], json!("SW052000"));
    let other = posted["Lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["InvoiceLineID"] != json!(recurring))
        .unwrap();
    assert!(
        other["Taxes"].as_array().unwrap().is_empty(),
        "lines not named get no tax"
    );
    assert_eq!(
        (posted["TaxTotal"].to_string(), posted["Total"].to_string()),
        ("3.53".into(), "153.52".into())
    );
    assert_totals_add_up(app).await;
    let (status, reply) = app.post(body(json!([]))).await;
    assert_method_error(status, &reply, "5", "Pending Tax");
    assert!(
        app.get("api_code=1007&entity_code=119").await.1["DATA"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// What the fake AvaTax does with the next requests.
#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    Answer,
    Fail,
    Hang,
}

#[derive(Clone)]
struct Fake {
    behaviour: Arc<Mutex<Behaviour>>,
    requests: Arc<Mutex<Vec<(String, Value)>>>,
}

async fn fake_create(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> axum::response::Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("1100000000:LICENSE-KEY")
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"error": {"code": "AuthenticationException", "message": "bad credentials"}}),
            ),
        )
            .into_response();
    }
    fake.requests
        .lock()
        .unwrap()
        .push(("create".into(), body.clone()));
    let behaviour = *fake.behaviour.lock().unwrap();
    match behaviour {
        Behaviour::Hang => {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Behaviour::Fail => {
            (StatusCode::INTERNAL_SERVER_ERROR, "service unavailable").into_response()
        }
        Behaviour::Answer => {
            assert_eq!(body["type"], json!("SalesInvoice"));
            assert_eq!(body["companyCode"], json!("DYNABILL"));
            assert_eq!(body["addresses"]["singleLocation"]["region"], json!("WA"));
            let lines: Vec<Value> = body["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|line| {
                    let amount: Decimal = line["amount"].to_string().parse().unwrap();
                    let tax = |rate: Decimal| (amount * rate).round_dp(2);
                    json!({
                        "lineNumber": line["number"],
                        "details": [
                            {"taxName": "WA STATE TAX", "tax": serde_json::Number::from_string_unchecked(tax("0.065".parse().unwrap()).to_string()), "rate": 0.065, "jurisName": "WASHINGTON"},
                            {"taxName": "WA CITY TAX", "tax": serde_json::Number::from_string_unchecked(tax("0.0375".parse().unwrap()).to_string()), "rate": 0.0375, "jurisName": "SEATTLE"}
                        ]
                    })
                })
                .collect();
            Json(json!({"code": body["code"], "status": "Committed", "lines": lines}))
                .into_response()
        }
    }
}

async fn fake_other(
    State(fake): State<Fake>,
    axum::extract::Path((company, code, action)): axum::extract::Path<(String, String, String)>,
    Json(body): Json<Value>,
) -> Json<Value> {
    fake.requests
        .lock()
        .unwrap()
        .push((format!("{action} {company} {code}"), body));
    Json(json!({"code": code, "status": "Cancelled"}))
}

async fn avatax_taxes_invoices_and_failures_wait_in_pending_tax(app: &TestApp) {
    let fake = Fake {
        behaviour: Arc::new(Mutex::new(Behaviour::Fail)),
        requests: Arc::default(),
    };
    let router = axum::Router::new()
        .route(
            "/api/v2/transactions/create",
            axum::routing::post(fake_create),
        )
        .route(
            "/api/v2/companies/{company}/transactions/{code}/{action}",
            axum::routing::post(fake_other),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let change = SettingsChange {
        tax_mode: Some(TaxMode::Avalara),
        avatax_url: Some(url),
        avatax_account_id: Some("1100000000".into()),
        avatax_license_key: Some("LICENSE-KEY".into()),
        avatax_company_code: Some("DYNABILL".into()),
        ..Default::default()
    };
    set_mode(app, change).await;
    customer(
        app,
        "AVA",
        json!({"Country": "US", "State": "WA", "City": "Seattle"}),
        "200.00",
    )
    .await;

    // AvaTax fails: the invoice waits in Pending Tax with the error readable, unnumbered.
    bill_run(app, "2024-01-01");
    let waiting = invoice_of(app, "AVA").await;
    assert_eq!(
        (
            waiting["InvoiceStatus"].clone(),
            waiting["InvoiceNumber"].clone()
        ),
        (json!(2), Value::Null)
    );
    assert!(
        waiting["TaxError"]
            .as_str()
            .unwrap()
            .contains("unavailable"),
        "{waiting}"
    );
    assert_eq!(waiting["TaxAttempts"], json!(1));
    // The account has a billing issue: tax failed, with the error as evidence.
    let (_, _, issues) = app.rest("GET", "/v1/insights/billing-issues", None).await;
    assert_eq!(issues["total"], 1, "{issues}");
    let reason = &issues["data"][0]["reasons"][0];
    assert_eq!(
        (
            reason["code"].clone(),
            reason["invoices"].clone(),
            reason["attempts"].clone()
        ),
        (json!("tax_failed"), json!(1), json!(1)),
        "{issues}"
    );
    assert!(
        reason["last_error"]
            .as_str()
            .unwrap()
            .contains("unavailable"),
        "{issues}"
    );
    assert!(
        !waiting["TaxError"]
            .as_str()
            .unwrap()
            .contains("LICENSE-KEY"),
        "the key is never shown"
    );

    // Fixed: `dynabill tax retry` posts it with AvaTax's taxes.
    *fake.behaviour.lock().unwrap() = Behaviour::Answer;
    let output = app
        .dynabill_command()
        .args([
            "tax",
            "retry",
            "--app-key",
            &app.cred.app_key,
            "--database-url",
            &app.database_url,
        ])
        .env("DYNABILL_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (summary["Attempted"].clone(), summary["Posted"].clone()),
        (json!(1), json!(1))
    );
    let posted = invoice_of(app, "AVA").await;
    assert_eq!(posted["InvoiceStatus"], json!(3));
    assert!(posted["TaxError"].is_null());
    let taxes = posted["Lines"][0]["Taxes"].as_array().unwrap();
    assert_eq!(taxes.len(), 2);
    assert_eq!(
        (
            taxes[0]["Amount"].to_string(),
            taxes[0]["Rate"].to_string(),
            taxes[0]["Jurisdiction"].clone()
        ),
        ("13.00".into(), "6.5".into(), json!("WASHINGTON"))
    );
    assert_eq!(
        (posted["TaxTotal"].to_string(), posted["Total"].to_string()),
        ("20.50".into(), "220.50".into())
    );
    assert_totals_add_up(app).await;

    // Cancelling the posted invoice voids the AvaTax transaction.
    let id = posted["ID"].as_str().unwrap().to_owned();
    let (_, reply) = app
        .post(json!({"api_code": 14, "entity_code": 119, "ID": id}))
        .await;
    assert_ok(&reply);
    let requests = fake.requests.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .any(|(what, body)| what.starts_with("void DYNABILL")
                && body["code"] == json!("DocVoided")),
        "{requests:?}"
    );

    // A hanging AvaTax times out; the invoice waits, nothing is posted untaxed.
    *fake.behaviour.lock().unwrap() = Behaviour::Hang;
    customer(
        app,
        "SLOW",
        json!({"Country": "US", "State": "WA"}),
        "10.00",
    )
    .await;
    let tenant = app.app.tenant_by_app_key(&app.cred.app_key).await.unwrap();
    app.app
        .bill_run(&tenant, "2024-01-01".parse().unwrap(), &|_| {})
        .await
        .unwrap();
    let slow = invoice_of(app, "SLOW").await;
    assert_eq!(slow["InvoiceStatus"], json!(2));
    assert!(
        slow["TaxError"].as_str().unwrap().contains("2s")
            || slow["TaxError"].as_str().unwrap().contains("answer"),
        "{slow}"
    );
}
