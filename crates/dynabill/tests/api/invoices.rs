//! Invoices (119) through the API: filters, lines, the lifecycle and its rules,
//! the test clock, and the scheduler.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_method_error, assert_ok};
use crate::{on_both_backends, on_both_backends_with};

on_both_backends!(
    invoice_lists_filter_by_account_plan_status_and_date,
    the_invoice_lifecycle_allows_only_its_transitions,
    a_posted_invoice_never_changes_but_its_status_and_payment,
    setting_a_date_needs_the_test_clock,
);

on_both_backends_with!(crate::helpers::spawn_with_test_clock: the_test_clock_moves_today_and_the_scheduler_bills_it);

async fn seed(app: &TestApp) {
    for (account, grouping) in [("A", 1), ("B", 0)] {
        app.create_account(account, json!({"InvoiceGrouping": grouping}))
            .await;
        app.create_plan(
            &format!("{account}-P"),
            account,
            json!({"StartDate": "2024-01-01"}),
        )
        .await;
        let (_, reply) = app
            .post(json!({"api_code": 10, "entity_code": 110, "ExtID": format!("{account}-I"), "PlanExtID": format!("{account}-P"),
                "ProductCode": "SKU", "ItemName": "Seat", "Quantity": 2, "UnitPrice": "12.50", "BillingPeriod": 1}))
            .await;
        assert_ok(&reply);
    }
}

fn bill_run(app: &TestApp, date: &str) -> Value {
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
    serde_json::from_slice(&output.stdout).unwrap()
}

fn ids(reply: &Value) -> Vec<String> {
    reply["DATA"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ID"].as_str().unwrap().to_owned())
        .collect()
}

async fn invoice_lists_filter_by_account_plan_status_and_date(app: &TestApp) {
    seed(app).await;
    let summary = bill_run(app, "2024-01-01");
    assert_eq!(
        (summary["Invoices"].clone(), summary["Lines"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(summary["Totals"]["USD"], json!("50.00"));
    bill_run(app, "2024-02-01");
    let (_, all) = app.get("api_code=3&entity_code=119").await;
    assert_eq!(all["TOTAL_COUNT"], json!(4));
    assert!(
        all["DATA"][0].get("Lines").is_none(),
        "lines only when asked for"
    );
    let (_, a) = app.get("api_code=3&entity_code=119&AccountExtID=A").await;
    assert_eq!(a["TOTAL_COUNT"], json!(2));
    let a_id = app.get_one("api_code=3&entity_code=69&ExtID=A").await["ID"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        ids(&app
            .get(&format!("api_code=3&entity_code=119&AccountID={a_id}"))
            .await
            .1),
        ids(&a)
    );
    let (_, b) = app.get("api_code=3&entity_code=119&AccountExtID=B").await;
    let b_plan = b["DATA"][0]["PlanID"]
        .as_str()
        .expect("per-plan grouping sets PlanID")
        .to_owned();
    assert_eq!(
        app.get(&format!("api_code=3&entity_code=119&PlanID={b_plan}"))
            .await
            .1["TOTAL_COUNT"],
        json!(2)
    );
    let (_, feb) = app
        .get("api_code=3&entity_code=119&InvoiceDateFrom=2024-02-01&InvoiceDateTo=2024-02-29")
        .await;
    assert_eq!(feb["TOTAL_COUNT"], json!(2));
    let first = ids(&all)[0].clone();
    let (_, reply) = app
        .post(json!({"api_code": 14, "entity_code": 119, "ID": first, "CancelReason": "duplicate"}))
        .await;
    assert_ok(&reply);
    assert_eq!(
        app.get("api_code=3&entity_code=119&InvoiceStatus=5")
            .await
            .1["TOTAL_COUNT"],
        json!(1)
    );
    assert_eq!(
        app.get("api_code=3&entity_code=119&InvoiceStatus=3,5")
            .await
            .1["TOTAL_COUNT"],
        json!(4)
    );
    let (status, reply) = app
        .get("api_code=3&entity_code=119&InvoiceStatus=3,9")
        .await;
    assert_method_error(status, &reply, "2", "InvoiceStatus");
    // A single-invoice get carries its lines; an unknown one is error 3.
    let one = app
        .get_one(&format!("api_code=3&entity_code=119&ID={first}"))
        .await;
    assert_eq!(one["Lines"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["CancelReason"], json!("duplicate"));
    assert_eq!(one["Lines"][0]["Amount"].to_string(), "25.00");
    assert_eq!(one["Lines"][0]["ServiceEnd"], json!("2024-01-31"));
    let (status, reply) = app.get("api_code=3&entity_code=119&ID=99999").await;
    assert_method_error(status, &reply, "3", "99999");
    // Invoices are made by bill runs only.
    let (status, reply) = app
        .post(json!({"api_code": 10, "entity_code": 119, "Total": 5}))
        .await;
    assert_method_error(status, &reply, "1", "ID");
    // Another tenant sees none of them.
    let other = app.new_tenant("other").await;
    assert_eq!(
        app.get_as(&other, "api_code=3&entity_code=119").await.1["TOTAL_COUNT"],
        json!(0)
    );
    let (status, reply) = app
        .get_as(&other, &format!("api_code=3&entity_code=119&ID={first}"))
        .await;
    assert_method_error(status, &reply, "3", "ID");
}

async fn the_invoice_lifecycle_allows_only_its_transitions(app: &TestApp) {
    app.app
        .update_tenant_settings(
            &app.cred.app_key,
            dynabill_app::tenants::SettingsChange {
                auto_post: Some(false),
                invoice_prefix: Some("DB-".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    seed(app).await;
    bill_run(app, "2024-01-01");
    let (_, all) = app.get("api_code=3&entity_code=119").await;
    let [draft, other]: [String; 2] = ids(&all).try_into().unwrap();
    let d = app
        .get_one(&format!("api_code=3&entity_code=119&ID={draft}"))
        .await;
    assert_eq!(
        (d["InvoiceStatus"].clone(), d["InvoiceNumber"].clone()),
        (json!(1), Value::Null),
        "AutoPost 0 makes Drafts without numbers"
    );
    // Draft fields change; marking a Draft paid is refused.
    let (_, reply) = app.post(json!({"api_code": 10, "entity_code": 119, "ID": draft, "DueDate": "2024-03-01", "PONumber": "PO-7", "Memo": "Thanks"})).await;
    assert_ok(&reply);
    let (status, reply) = app
        .post(json!({"api_code": 10, "entity_code": 119, "ID": draft, "InvoiceStatus": 4}))
        .await;
    assert_method_error(status, &reply, "5", "only a Posted invoice");
    let (status, reply) = app
        .post(json!({"api_code": 10, "entity_code": 119, "ID": draft, "DueDate": "2023-12-31"}))
        .await;
    assert_method_error(status, &reply, "2", "DueDate");
    // Posting numbers it, gap-free, with the tenant's prefix.
    for id in [&draft, &other] {
        let (_, reply) = app
            .post(json!({"api_code": 10, "entity_code": 119, "ID": id, "InvoiceStatus": 3}))
            .await;
        assert_ok(&reply);
    }
    let posted = app
        .get_one(&format!("api_code=3&entity_code=119&ID={draft}"))
        .await;
    assert_eq!(posted["InvoiceNumber"], json!("DB-000001"));
    assert_eq!(
        (
            posted["DueDate"].clone(),
            posted["PONumber"].clone(),
            posted["Memo"].clone()
        ),
        (json!("2024-03-01"), json!("PO-7"), json!("Thanks"))
    );
    assert_eq!(
        app.get_one(&format!("api_code=3&entity_code=119&ID={other}"))
            .await["InvoiceNumber"],
        json!("DB-000002")
    );
    let (status, reply) = app
        .post(json!({"api_code": 10, "entity_code": 119, "ID": draft, "InvoiceStatus": 3}))
        .await;
    assert_method_error(status, &reply, "5", "only a Draft");
    let (status, reply) = app
        .post(json!({"api_code": 10, "entity_code": 119, "ID": draft, "Memo": "late"}))
        .await;
    assert_method_error(status, &reply, "5", "only while Draft or Pending Tax");
    // The account cannot be deleted while an invoice is unpaid, nor change currency once invoiced.
    let (status, reply) = app
        .post(json!({"api_code": 11, "entity_code": 69, "ExtID": "A"}))
        .await;
    assert_method_error(status, &reply, "5", "unpaid");
    let (status, reply) = app
        .post(json!({"api_code": 10, "entity_code": 69, "ExtID": "A", "Currency": "EUR"}))
        .await;
    assert_method_error(status, &reply, "5", "Currency");
    // Paid, then no more changes and no cancellation.
    let (_, reply) = app.post(json!({"api_code": 10, "entity_code": 119, "ID": draft, "InvoiceStatus": 4, "PaidDate": "2024-02-10", "PaymentReference": "TX-1"})).await;
    assert_ok(&reply);
    let paid = app
        .get_one(&format!("api_code=3&entity_code=119&ID={draft}"))
        .await;
    assert_eq!(
        (
            paid["InvoiceStatus"].clone(),
            paid["PaidDate"].clone(),
            paid["PaymentReference"].clone()
        ),
        (json!(4), json!("2024-02-10"), json!("TX-1"))
    );
    let (status, reply) = app
        .post(json!({"api_code": 14, "entity_code": 119, "ID": draft}))
        .await;
    assert_method_error(status, &reply, "5", "Paid");
    let (status, reply) = app
        .post(json!({"api_code": 10, "entity_code": 119, "ID": other, "InvoiceStatus": 5}))
        .await;
    assert_method_error(status, &reply, "5", "api_code 14");
    let (_, reply) = app
        .post(json!({"api_code": 14, "entity_code": 119, "ID": other, "CancelReason": "wrong"}))
        .await;
    assert_ok(&reply);
    let (status, reply) = app
        .post(json!({"api_code": 14, "entity_code": 119, "ID": other}))
        .await;
    assert_method_error(status, &reply, "5", "Cancelled");
    // With every invoice paid or cancelled, the account can go.
    let (_, reply) = app
        .post(json!({"api_code": 11, "entity_code": 69, "ExtID": "A"}))
        .await;
    assert_ok(&reply);
}

async fn a_posted_invoice_never_changes_but_its_status_and_payment(app: &TestApp) {
    seed(app).await;
    bill_run(app, "2024-01-01");
    let (_, before) = app.get("api_code=3&entity_code=119&IncludeLines=1").await;
    // Everything that can happen later: upsells, cancellations, more bill runs.
    let (_, reply) = app.post(json!({"api_code": 13, "entity_code": 110, "ExtID": "A-I", "Quantity": 5, "EffectiveDate": "2024-01-10"})).await;
    assert_ok(&reply);
    let (_, reply) = app
        .post(
            json!({"api_code": 14, "entity_code": 110, "ExtID": "B-I", "CancelDate": "2024-01-20"}),
        )
        .await;
    assert_ok(&reply);
    bill_run(app, "2024-01-20");
    bill_run(app, "2024-03-01");
    let (_, after) = app
        .get("api_code=3&entity_code=119&IncludeLines=1&PageSize=1000")
        .await;
    for old in before["DATA"].as_array().unwrap() {
        let now = after["DATA"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["ID"] == old["ID"])
            .unwrap();
        assert_eq!(
            now, old,
            "an issued invoice is never edited: corrections are new lines on later invoices"
        );
    }
    assert!(after["TOTAL_COUNT"].as_i64().unwrap() > 2);
}

fn clock(app: &TestApp, body: Value) -> impl Future<Output = Value> + use<> {
    let client = app.client.clone();
    let url = format!("{}/api/testclock", app.base);
    let cred = app.cred.clone();
    async move {
        let response = client
            .post(url)
            .header("AppKey", cred.app_key)
            .header("UserName", cred.user)
            .header("AccessToken", cred.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        response.json::<Value>().await.unwrap()
    }
}

async fn the_test_clock_moves_today_and_the_scheduler_bills_it(app: &TestApp) {
    seed(app).await;
    let reply = clock(app, json!({"Today": "2024-01-01"})).await;
    assert_ok(&reply);
    assert_eq!(reply["DATA"][0]["Today"], json!("2024-01-01"));
    // The scheduler follows the tenant's date: the day's bill run happens without a call.
    let mut invoices = 0;
    for _ in 0..100 {
        invoices = app.get("api_code=3&entity_code=119").await.1["TOTAL_COUNT"]
            .as_i64()
            .unwrap();
        if invoices == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(invoices, 2, "the scheduler billed 2024-01-01");
    // Moving on with BillRun 1 bills at once.
    let reply = clock(app, json!({"Today": "2024-02-01", "BillRun": 1})).await;
    assert_ok(&reply);
    assert_eq!(reply["DATA"][0]["InvoicesCreated"], json!(2), "{reply}");
    // Every default date follows it.
    app.create_plan("LATER", "A", json!({})).await;
    assert_eq!(
        app.get_one("api_code=3&entity_code=71&ExtID=LATER").await["StartDate"],
        json!("2024-02-01")
    );
    // And statuses: the items are active, not future.
    let item = app.get_one("api_code=3&entity_code=110&ExtID=A-I").await;
    assert_eq!(item["ChargedThroughDate"], json!("2024-03-01"));
    let reply = clock(app, json!({"Today": "2025-x"})).await;
    assert_eq!(reply["METHOD_ERROR"], json!("2"));
}

async fn setting_a_date_needs_the_test_clock(app: &TestApp) {
    seed(app).await;
    let clock = |body: Value| {
        let client = app.client.clone();
        let url = format!("{}/api/testclock", app.base);
        let cred = app.cred.clone();
        async move {
            let response = client
                .post(url)
                .header("AppKey", cred.app_key)
                .header("UserName", cred.user)
                .header("AccessToken", cred.token)
                .json(&body)
                .send()
                .await
                .unwrap();
            response.json::<Value>().await.unwrap()
        }
    };
    // The harness's server runs without --test-clock: setting a date is refused.
    let reply = clock(json!({"Today": "2024-01-01"})).await;
    assert_eq!(reply["METHOD_ERROR"], json!("5"), "{reply}");
    assert!(
        reply["METHOD_ERROR_DESCRIPTION"]
            .as_str()
            .unwrap()
            .contains("--test-clock")
    );
}
