//! Data-driven billing scenarios: each file in `tests/scenarios/` is a timeline of
//! API calls and bill runs with the invoices each run must make. Bill runs are the
//! real `dynabill bill-run` command, run against the server's own database while
//! it serves. A new case is a new file, not new code.
//!
//! Steps (one JSON object each):
//! - `{"post": {...}}`: a dynamic-API POST that must succeed (`"error": "5"` expects that code);
//! - `{"bill_run": "YYYY-MM-DD", "invoices": [...]}`: the run must make exactly these
//!   invoices (in ID order). An invoice lists `Lines` as `[LineType, ServiceStart,
//!   ServiceEnd (inclusive), Amount]` (compared as a multiset) and any other invoice
//!   field to check by its wire name; `"Numbered": true/false` checks `InvoiceNumber`;
//! - `{"cancel_invoice": N, "Rebill": 0|1}` / `{"post_invoice": N}` /
//!   `{"pay_invoice": N}`: act on the N-th invoice made so far (1-based);
//! - `{"account": "ExtID", "expect": {...}}`: check account fields;
//! - `{"record": {"entity_code": 71, "ExtID": "P"}, "expect": {...}}`: check the fields of
//!   any record a get by those parameters returns;
//! - `{"settings": {"AutoPost": 0, ...}}`: change the tenant's settings.

use std::collections::BTreeSet;

use dynabill_app::tenants::SettingsChange;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_ok};
use crate::on_both_backends;

on_both_backends!(every_billing_scenario_bills_what_it_expects);

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scenarios");

async fn every_billing_scenario_bills_what_it_expects(app: &TestApp) {
    let mut files: Vec<_> = std::fs::read_dir(SCENARIOS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for path in files {
        let scenario: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // Each scenario gets a tenant of its own, so scenarios never see each other.
        let cred = app.new_tenant(&name).await;
        run_scenario(app, &cred, &name, &scenario).await;
    }
}

fn number_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn run_scenario(app: &TestApp, cred: &crate::helpers::Cred, name: &str, scenario: &Value) {
    let mut invoices_seen: Vec<String> = Vec::new();
    for (index, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
        let at = format!("{name}, step {}", index + 1);
        if let Some(body) = step.get("post") {
            let (_, reply) = app.post_as(cred, body.clone()).await;
            match step.get("error") {
                Some(code) => assert_eq!(reply["METHOD_ERROR"], *code, "{at}: {reply}"),
                None => assert_eq!(reply["METHOD_STATUS"], json!(1), "{at}: {reply}"),
            }
        } else if let Some(date) = step.get("bill_run") {
            bill_run(app, cred, date.as_str().unwrap(), &at);
            let (_, reply) = app
                .get_as(
                    cred,
                    "api_code=3&entity_code=119&IncludeLines=1&PageSize=1000",
                )
                .await;
            assert_ok(&reply);
            let new: Vec<&Value> = reply["DATA"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| !invoices_seen.contains(&i["ID"].as_str().unwrap().to_owned()))
                .collect();
            let expected = step["invoices"].as_array().unwrap();
            assert_eq!(
                new.len(),
                expected.len(),
                "{at}: invoices made: {}",
                Value::Array(new.iter().map(|v| (*v).clone()).collect())
            );
            for (got, want) in new.iter().zip(expected) {
                check_invoice(got, want, &at);
                invoices_seen.push(got["ID"].as_str().unwrap().to_owned());
            }
        } else if let Some(n) = step.get("cancel_invoice") {
            let id = &invoices_seen[n.as_u64().unwrap() as usize - 1];
            let body = json!({"api_code": 14, "entity_code": 119, "ID": id, "Rebill": step["Rebill"], "CancelReason": "scenario"});
            let (_, reply) = app.post_as(cred, body).await;
            match step.get("error") {
                Some(code) => assert_eq!(reply["METHOD_ERROR"], *code, "{at}: {reply}"),
                None => assert_ok(&reply),
            }
        } else if let Some(n) = step.get("post_invoice") {
            let id = &invoices_seen[n.as_u64().unwrap() as usize - 1];
            let (_, reply) = app
                .post_as(
                    cred,
                    json!({"api_code": 10, "entity_code": 119, "ID": id, "InvoiceStatus": 3}),
                )
                .await;
            assert_ok(&reply);
            let (_, got) = app
                .get_as(cred, &format!("api_code=3&entity_code=119&ID={id}"))
                .await;
            if let Some(want) = step.get("expect") {
                check_invoice(&got["DATA"][0], want, &at);
            }
        } else if let Some(n) = step.get("pay_invoice") {
            let id = &invoices_seen[n.as_u64().unwrap() as usize - 1];
            let body = json!({"api_code": 10, "entity_code": 119, "ID": id, "InvoiceStatus": 4, "PaidDate": "2024-12-31", "PaymentReference": "wire"});
            let (_, reply) = app.post_as(cred, body).await;
            assert_ok(&reply);
        } else if let Some(ext_id) = step.get("account") {
            let query = format!(
                "api_code=3&entity_code=69&ExtID={}",
                ext_id.as_str().unwrap()
            );
            check_record(app, cred, &query, &step["expect"], &at).await;
        } else if let Some(record) = step.get("record") {
            let query: Vec<String> = record
                .as_object()
                .unwrap()
                .iter()
                .map(|(name, value)| format!("{name}={}", number_text(value)))
                .collect();
            let query = format!("api_code=3&{}", query.join("&"));
            check_record(app, cred, &query, &step["expect"], &at).await;
        } else if let Some(settings) = step.get("settings") {
            let change = SettingsChange {
                auto_post: settings.get("AutoPost").map(|v| v.as_i64() == Some(1)),
                invoice_prefix: settings
                    .get("InvoicePrefix")
                    .map(|v| v.as_str().unwrap().to_owned()),
                ..SettingsChange::default()
            };
            app.app
                .update_tenant_settings(&cred.app_key, change)
                .await
                .unwrap();
        } else {
            panic!("{at}: unknown step {step}");
        }
    }
}

/// Checks the fields of the one record a get by `query` returns.
async fn check_record(
    app: &TestApp,
    cred: &crate::helpers::Cred,
    query: &str,
    expect: &Value,
    at: &str,
) {
    let (_, reply) = app.get_as(cred, query).await;
    assert_ok(&reply);
    assert_eq!(
        reply["DATA"].as_array().map(Vec::len),
        Some(1),
        "{at}: {reply}"
    );
    for (field, want) in expect.as_object().unwrap() {
        assert_eq!(
            number_text(&reply["DATA"][0][field]),
            number_text(want),
            "{at}: {field} of {}",
            reply["DATA"][0]
        );
    }
}

/// Runs the real `dynabill bill-run` for the tenant, against the server's database.
fn bill_run(app: &TestApp, cred: &crate::helpers::Cred, date: &str, at: &str) {
    let output = app
        .dynabill_command()
        .args([
            "bill-run",
            "--date",
            date,
            "--app-key",
            &cred.app_key,
            "--database-url",
            &app.database_url,
        ])
        .env("DYNABILL_LOG", "warn")
        .output()
        .expect("running dynabill bill-run");
    assert!(
        output.status.success(),
        "{at}: bill-run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{at}: summary is not JSON ({e})"));
    assert_eq!(summary["Date"], json!(date), "{at}");
}

fn check_invoice(got: &Value, want: &Value, at: &str) {
    for (field, expected) in want.as_object().unwrap() {
        match field.as_str() {
            "Lines" => {
                let lines = |list: &Value| -> BTreeSet<(i64, String, String, String)> {
                    list.as_array()
                        .unwrap()
                        .iter()
                        .map(|l| match l {
                            Value::Array(a) => (
                                a[0].as_i64().unwrap(),
                                number_text(&a[1]),
                                number_text(&a[2]),
                                number_text(&a[3]),
                            ),
                            obj => (
                                obj["LineType"].as_i64().unwrap(),
                                number_text(&obj["ServiceStart"]),
                                number_text(&obj["ServiceEnd"]),
                                number_text(&obj["Amount"]),
                            ),
                        })
                        .collect()
                };
                assert_eq!(
                    got["Lines"].as_array().map(Vec::len),
                    expected.as_array().map(Vec::len),
                    "{at}: line count in {got}"
                );
                assert_eq!(
                    lines(&got["Lines"]),
                    lines(expected),
                    "{at}: lines of invoice {}",
                    got["ID"]
                );
            }
            "Numbered" => assert_eq!(
                got["InvoiceNumber"].is_string(),
                expected.as_bool().unwrap(),
                "{at}: {got}"
            ),
            "HasPlan" => assert_eq!(
                got["PlanID"].is_string(),
                expected.as_bool().unwrap(),
                "{at}: {got}"
            ),
            _ => assert_eq!(
                number_text(&got[field]),
                number_text(expected),
                "{at}: {field} of {got}"
            ),
        }
    }
}
