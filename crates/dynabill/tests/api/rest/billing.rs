//! Invoices, bill runs, the upcoming-invoice preview, taxes and the tenant's
//! own resources, through `/v1`.

use serde_json::{Value, json};

use super::assert_problem;
use crate::helpers::TestApp;
use crate::{on_both_backends, on_both_backends_with};

on_both_backends!(
    the_preview_is_what_the_bill_run_then_creates,
    an_invoice_goes_from_draft_to_paid_and_another_is_cancelled_and_rebilled,
    a_tax_service_taxes_an_invoice_waiting_in_pending_tax,
    tax_rates_and_settings_are_managed_through_rest,
    another_tenant_gets_404_for_every_invoice_and_preview,
    an_invoice_reads_the_same_through_both_doors,
);

on_both_backends_with!(crate::helpers::spawn_with_test_clock_alone: the_test_clock_is_read_and_moved_through_rest);

/// An account with a plan from 2026-01-01 (billing day 1), ten seats at 49.50 a
/// month and a one-time charge; returns the account's ID.
async fn book(app: &TestApp, ext_id: &str) -> i64 {
    let (_, _, account) = app
        .rest(
            "POST",
            "/v1/accounts",
            Some(json!({"ext_id": ext_id, "account_name": "Acme", "account_type": 1,
                "account_status": 1, "email": "billing@acme.example", "country": "US", "state": "CA"})),
        )
        .await;
    let account = account["id"].as_i64().expect("an account");
    let (_, _, plan) = app
        .rest(
            "POST",
            &format!("/v1/accounts/{account}/plans"),
            Some(json!({"ext_id": format!("{ext_id}-P"), "start_date": "2026-01-01", "billing_day": 1})),
        )
        .await;
    let plan = plan["id"].as_i64().expect("a plan");
    let (status, _, _) = app
        .rest(
            "POST",
            &format!("/v1/plans/{plan}/recurring-items"),
            Some(json!({"ext_id": format!("{ext_id}-S"), "product_code": "SEAT", "item_name": "Seats",
                "quantity": "10", "unit_price": "49.50", "billing_period": 1})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _, _) = app
        .rest(
            "POST",
            &format!("/v1/plans/{plan}/one-time-items"),
            Some(json!({"ext_id": format!("{ext_id}-O"), "product_code": "SETUP", "item_name": "Setup",
                "quantity": "1", "unit_price": "100", "charge_date": "2026-01-01"})),
        )
        .await;
    assert_eq!(status, 201);
    account
}

async fn bill_run(app: &TestApp, date: &str) -> Value {
    let (status, _, summary) = app
        .rest("POST", "/v1/bill-runs", Some(json!({"date": date})))
        .await;
    assert_eq!(status, 200, "{summary}");
    summary
}

/// The fields a preview and the invoice written from it share.
fn comparable(invoice: &Value) -> Value {
    let mut invoice = invoice.clone();
    let object = invoice.as_object_mut().unwrap();
    for written_only in [
        "id",
        "invoice_number",
        "account_ext_id",
        "memo",
        "paid_date",
        "payment_reference",
        "cancel_reason",
        "tax_error",
        "tax_attempts",
        "next_tax_attempt",
        "created_at",
        "updated_at",
    ] {
        object.remove(written_only);
    }
    for line in object["lines"].as_array_mut().unwrap() {
        line.as_object_mut().unwrap().remove("id");
    }
    invoice
}

async fn the_preview_is_what_the_bill_run_then_creates(app: &TestApp) {
    let account = book(app, "A").await;
    let other = book(app, "B").await;
    let (status, _, preview) = app
        .rest(
            "GET",
            &format!("/v1/accounts/{account}/upcoming-invoices?date=2026-01-01"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    let preview = preview.as_array().unwrap().clone();
    assert_eq!(preview.len(), 1);
    assert_eq!(preview[0]["total"], "595.00");
    assert_eq!(preview[0]["lines"].as_array().unwrap().len(), 2);

    let (status, _, dry) = app
        .rest(
            "POST",
            "/v1/bill-runs",
            Some(json!({"date": "2026-01-01", "dry_run": true})),
        )
        .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["invoices"], 2);
    assert_eq!(dry["totals"]["USD"], "1190.00");
    let dry_invoices = dry["upcoming_invoices"].as_array().unwrap();
    assert_eq!(dry_invoices[0], preview[0]);
    assert_eq!(dry_invoices[1]["account_id"], other);
    let (_, _, none_yet) = app
        .rest("GET", "/v1/invoices?include=total_count", None)
        .await;
    assert_eq!(none_yet["total_count"], 0, "a dry run writes nothing");

    let summary = bill_run(app, "2026-01-01").await;
    assert_eq!(summary["dry_run"], false);
    assert_eq!(summary["invoices"], 2);
    assert!(summary.get("upcoming_invoices").is_none());
    let (_, _, created) = app
        .rest(
            "GET",
            &format!("/v1/invoices?account_id={account}&include=lines,total_count"),
            None,
        )
        .await;
    assert_eq!(created["total_count"], 1);
    let created = &created["data"][0];
    let mut expected = comparable(&preview[0]);
    expected.as_object_mut().unwrap().remove("account_id");
    let mut got = comparable(created);
    got.as_object_mut().unwrap().remove("account_id");
    assert_eq!(
        got, expected,
        "the bill run created what the preview showed"
    );
    assert_eq!(created["account_id"], account);

    let (_, _, after) = app
        .rest(
            "GET",
            &format!("/v1/accounts/{account}/upcoming-invoices?date=2026-01-01"),
            None,
        )
        .await;
    assert_eq!(after, json!([]), "billed: nothing more is due on that day");
    let (_, _, next) = app
        .rest(
            "GET",
            &format!("/v1/accounts/{account}/upcoming-invoices?date=2026-02-01"),
            None,
        )
        .await;
    assert_eq!(next[0]["total"], "495.00");
    assert_eq!(next[0]["lines"][0]["service_start"], "2026-02-01");
    assert_eq!(next[0]["lines"][0]["service_end"], "2026-02-28");

    let (_, _, inactive) = app
        .rest(
            "PATCH",
            &format!("/v1/accounts/{other}"),
            Some(json!({"account_status": 2})),
        )
        .await;
    assert_eq!(inactive["account_status"], 2);
    let (_, _, nothing) = app
        .rest(
            "GET",
            &format!("/v1/accounts/{other}/upcoming-invoices?date=2026-02-01"),
            None,
        )
        .await;
    assert_eq!(nothing, json!([]), "an inactive account is not billed");
    let reply = app
        .rest(
            "GET",
            &format!("/v1/accounts/{account}/upcoming-invoices?date=2026-13-01"),
            None,
        )
        .await;
    assert_problem(&reply, 422, "invalid_field", Some("date"));
}

async fn an_invoice_goes_from_draft_to_paid_and_another_is_cancelled_and_rebilled(app: &TestApp) {
    let (status, _, settings) = app
        .rest("PATCH", "/v1/settings", Some(json!({"auto_post": false})))
        .await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["auto_post"], false);
    let account = book(app, "A").await;
    bill_run(app, "2026-01-01").await;
    let (_, _, listed) = app
        .rest(
            "GET",
            &format!("/v1/invoices?account_id={account}&invoice_status=1"),
            None,
        )
        .await;
    let invoice = &listed["data"][0];
    let id = invoice["id"].as_i64().unwrap();
    assert_eq!(invoice["invoice_status"], 1);
    assert!(invoice.get("lines").is_none());
    let (_, _, with_lines) = app
        .rest("GET", &format!("/v1/invoices/{id}?include=lines"), None)
        .await;
    assert_eq!(with_lines["lines"].as_array().unwrap().len(), 2);

    let (status, _, changed) = app
        .rest(
            "PATCH",
            &format!("/v1/invoices/{id}"),
            Some(json!({"memo": "Thanks", "due_date": "2026-02-15"})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["memo"], "Thanks");
    assert_eq!(changed["due_date"], "2026-02-15");
    let (status, _, posted) = app
        .rest("POST", &format!("/v1/invoices/{id}/post"), None)
        .await;
    assert_eq!(status, 200, "{posted}");
    assert_eq!(posted["invoice_status"], 3);
    assert!(
        posted["invoice_number"]
            .as_str()
            .is_some_and(|n| n.starts_with("INV-"))
    );
    let refused = app
        .rest(
            "PATCH",
            &format!("/v1/invoices/{id}"),
            Some(json!({"memo": "late"})),
        )
        .await;
    assert_problem(&refused, 409, "not_allowed", None);
    let (status, _, paid) = app
        .rest(
            "POST",
            &format!("/v1/invoices/{id}/pay"),
            Some(json!({"paid_date": "2026-01-20", "payment_reference": "WIRE-1"})),
        )
        .await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["invoice_status"], 4);
    assert_eq!(paid["paid_date"], "2026-01-20");
    assert_eq!(paid["payment_reference"], "WIRE-1");
    let reply = app
        .rest("POST", &format!("/v1/invoices/{id}/post"), None)
        .await;
    assert_problem(&reply, 409, "not_allowed", None);

    bill_run(app, "2026-02-01").await;
    let (_, _, february) = app
        .rest(
            "GET",
            "/v1/invoices?invoice_date_from=2026-02-01&invoice_date_to=2026-02-01",
            None,
        )
        .await;
    let second = february["data"][0]["id"].as_i64().unwrap();
    let (status, _, cancelled) = app
        .rest(
            "POST",
            &format!("/v1/invoices/{second}/cancel"),
            Some(json!({"cancel_reason": "Billed in error", "rebill": true})),
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["invoice_status"], 5);
    assert_eq!(cancelled["cancel_reason"], "Billed in error");
    let (_, _, rebill) = app
        .rest(
            "GET",
            &format!("/v1/accounts/{account}/upcoming-invoices?date=2026-02-01"),
            None,
        )
        .await;
    assert_eq!(
        rebill[0]["total"], "495.00",
        "the rebill bills February again: {rebill}"
    );
}

async fn a_tax_service_taxes_an_invoice_waiting_in_pending_tax(app: &TestApp) {
    let (status, _, settings) = app
        .rest("PATCH", "/v1/settings", Some(json!({"tax_mode": 2})))
        .await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["tax_mode"], 2);
    book(app, "A").await;
    bill_run(app, "2026-01-01").await;
    let (_, _, lines) = app.rest("GET", "/v1/tax/pending-lines", None).await;
    assert_eq!(lines["data"].as_array().unwrap().len(), 2, "{lines}");
    let invoice = lines["data"][0]["invoice_id"].as_i64().unwrap();
    assert_eq!(lines["data"][0]["state"], "CA");
    // Waiting for the tax service is no billing issue at first; a day on, it is.
    let (_, _, issues) = app.rest("GET", "/v1/insights/billing-issues", None).await;
    assert_eq!(issues["total"], 0, "{issues}");
    app.execute_sql(&format!(
        "UPDATE invoices SET updated_at = updated_at - 90000000000 WHERE id = {invoice}"
    ))
    .await;
    let (_, _, issues) = app.rest("GET", "/v1/insights/billing-issues", None).await;
    assert_eq!(issues["total"], 1, "{issues}");
    let reason = &issues["data"][0]["reasons"][0];
    assert_eq!(
        (reason["code"].clone(), reason["invoices"].clone()),
        (json!("tax_pending"), json!(1)),
        "{issues}"
    );
    let (_, _, only) = app
        .rest(
            "GET",
            &format!("/v1/tax/pending-lines?invoice_id={invoice}"),
            None,
        )
        .await;
    assert_eq!(only["data"], lines["data"]);
    let items: Vec<Value> = lines["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            json!({"id": line["line_id"], "tax_code": "SW054000",
                "taxes": [{"description": "CA State Tax", "amount": "7.25"}]})
        })
        .collect();
    let reply = app
        .rest(
            "POST",
            &format!("/v1/invoices/{invoice}/taxes"),
            Some(json!({"items": [{"id": 1, "taxes": [{"description": "x", "amount": 1.5}]}]})),
        )
        .await;
    assert_problem(
        &reply,
        422,
        "invalid_field",
        Some("items[0].taxes[0].amount"),
    );
    let (status, _, taxed) = app
        .rest(
            "POST",
            &format!("/v1/invoices/{invoice}/taxes"),
            Some(json!({"items": items})),
        )
        .await;
    assert_eq!(status, 200, "{taxed}");
    assert_eq!(taxed["invoice_status"], 3);
    assert_eq!(taxed["tax_total"], "14.50");
    assert_eq!(taxed["lines"][0]["taxes"][0]["amount"], "7.25");
    let (_, _, none) = app.rest("GET", "/v1/tax/pending-lines", None).await;
    assert_eq!(none["data"], json!([]));
}

async fn tax_rates_and_settings_are_managed_through_rest(app: &TestApp) {
    let (_, _, settings) = app.rest("GET", "/v1/settings", None).await;
    assert_eq!(settings["currency"], "USD");
    assert_eq!(settings["auto_post"], true);
    assert_eq!(settings["avatax_license_key_set"], false);
    let reply = app
        .rest("PATCH", "/v1/settings", Some(json!({"tax_mode": 3})))
        .await;
    assert_problem(&reply, 422, "invalid_field", Some("tax_mode"));
    let reply = app
        .rest(
            "PATCH",
            "/v1/settings",
            Some(json!({"time_zone": "Mars/Olympus"})),
        )
        .await;
    assert_problem(&reply, 422, "invalid_field", Some("time_zone"));
    let (_, _, unchanged) = app.rest("GET", "/v1/settings", None).await;
    assert_eq!(unchanged, settings);
    let (_, _, changed) = app
        .rest(
            "PATCH",
            "/v1/settings",
            Some(json!({"tax_mode": 1, "invoice_prefix": "ACME-", "rounding": "half-even"})),
        )
        .await;
    assert_eq!(changed["tax_mode"], 1);
    assert_eq!(changed["invoice_prefix"], "ACME-");
    assert_eq!(changed["rounding"], "half-even");

    let (status, headers, rate) = app
        .rest(
            "POST",
            "/v1/tax-rates",
            Some(json!({"name": "CA State Tax", "country": "US", "state": "ca", "rate": "7.25"})),
        )
        .await;
    assert_eq!(status, 201, "{rate}");
    let id = rate["id"].as_i64().unwrap();
    assert_eq!(headers["location"], format!("/v1/tax-rates/{id}").as_str());
    assert_eq!(rate["state"], "CA");
    assert_eq!(rate["rate"], "7.25");
    let reply = app
        .rest(
            "POST",
            "/v1/tax-rates",
            Some(json!({"name": "Bad", "country": "US", "rate": "101"})),
        )
        .await;
    assert_problem(&reply, 422, "invalid_field", Some("rate"));
    let (_, _, listed) = app.rest("GET", "/v1/tax-rates", None).await;
    assert_eq!(listed["data"], json!([rate]));

    let account = book(app, "T").await;
    let (_, _, preview) = app
        .rest(
            "GET",
            &format!("/v1/accounts/{account}/upcoming-invoices?date=2026-01-01"),
            None,
        )
        .await;
    assert_eq!(
        preview[0]["tax_total"], "43.14",
        "7.25 % of 595.00, half-even per line: {preview}"
    );

    let (status, _, _) = app
        .rest("DELETE", &format!("/v1/tax-rates/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let reply = app
        .rest("DELETE", &format!("/v1/tax-rates/{id}"), None)
        .await;
    assert_problem(&reply, 404, "not_found", None);
}

async fn another_tenant_gets_404_for_every_invoice_and_preview(app: &TestApp) {
    let account = book(app, "A").await;
    bill_run(app, "2026-01-01").await;
    let (_, _, listed) = app.rest("GET", "/v1/invoices", None).await;
    let invoice = listed["data"][0]["id"].as_i64().unwrap();
    let other = app.new_tenant("other").await;
    for (method, path, body) in [
        ("GET", format!("/v1/invoices/{invoice}"), None),
        (
            "PATCH",
            format!("/v1/invoices/{invoice}"),
            Some(json!({"memo": "x"})),
        ),
        ("POST", format!("/v1/invoices/{invoice}/post"), None),
        (
            "POST",
            format!("/v1/invoices/{invoice}/pay"),
            Some(json!({})),
        ),
        (
            "POST",
            format!("/v1/invoices/{invoice}/cancel"),
            Some(json!({})),
        ),
        (
            "POST",
            format!("/v1/invoices/{invoice}/taxes"),
            Some(json!({"items": []})),
        ),
        (
            "GET",
            format!("/v1/accounts/{account}/upcoming-invoices"),
            None,
        ),
    ] {
        let reply = app.rest_as(&other, method, &path, body, &[]).await;
        assert_problem(&reply, 404, "not_found", None);
    }
    let (_, _, theirs) = app
        .rest_as(&other, "GET", "/v1/invoices?include=total_count", None, &[])
        .await;
    assert_eq!(theirs["total_count"], 0);
    let (_, _, summary) = app
        .rest_as(
            &other,
            "POST",
            "/v1/bill-runs",
            Some(json!({"date": "2026-02-01"})),
            &[],
        )
        .await;
    assert_eq!(
        summary["invoices"], 0,
        "another tenant's run bills none of ours"
    );
    let (_, _, mine) = app
        .rest("GET", &format!("/v1/invoices/{invoice}"), None)
        .await;
    assert_eq!(mine["invoice_status"], 3);
}

async fn the_test_clock_is_read_and_moved_through_rest(app: &TestApp) {
    let (status, _, clock) = app.rest("GET", "/v1/test-clock", None).await;
    assert_eq!(status, 200, "{clock}");
    assert_eq!(clock["frozen"], false);
    let (_, _, moved) = app
        .rest(
            "POST",
            "/v1/test-clock",
            Some(json!({"today": "2026-03-01"})),
        )
        .await;
    assert_eq!(moved, json!({"today": "2026-03-01", "frozen": true}));
    let account = book(app, "C").await;
    let (_, _, preview) = app
        .rest(
            "GET",
            &format!("/v1/accounts/{account}/upcoming-invoices"),
            None,
        )
        .await;
    assert_eq!(
        preview[0]["invoice_date"], "2026-03-01",
        "the preview's default date is the clock's today"
    );
    let (_, _, back) = app
        .rest("POST", "/v1/test-clock", Some(json!({"today": null})))
        .await;
    assert_eq!(back["frozen"], false);
}

async fn an_invoice_reads_the_same_through_both_doors(app: &TestApp) {
    book(app, "A").await;
    bill_run(app, "2026-01-01").await;
    let (_, _, listed) = app.rest("GET", "/v1/invoices?include=lines", None).await;
    let rest = &listed["data"][0];
    let dynamic = app
        .get_one(&format!("api_code=3&entity_code=119&ID={}", rest["id"]))
        .await;
    for (wire, field) in [
        ("InvoiceNumber", "invoice_number"),
        ("InvoiceStatus", "invoice_status"),
        ("InvoiceDate", "invoice_date"),
        ("DueDate", "due_date"),
        ("Currency", "currency"),
        ("CreatedAt", "created_at"),
    ] {
        assert_eq!(dynamic[wire], rest[field], "{wire}");
    }
    for (wire, field) in [
        ("Subtotal", "subtotal"),
        ("TaxTotal", "tax_total"),
        ("Total", "total"),
        ("AmountDue", "amount_due"),
    ] {
        assert_eq!(
            dynamic[wire].to_string(),
            rest[field].as_str().unwrap(),
            "{wire}"
        );
    }
    let lines = dynamic["Lines"].as_array().unwrap();
    assert_eq!(lines.len(), rest["lines"].as_array().unwrap().len());
    for (wire, line) in lines.iter().zip(rest["lines"].as_array().unwrap()) {
        assert_eq!(wire["InvoiceLineID"], line["id"].to_string());
        assert_eq!(wire["Amount"].to_string(), line["amount"].as_str().unwrap());
        assert_eq!(wire["ServiceStart"], line["service_start"]);
        assert_eq!(wire["ServiceEnd"], line["service_end"]);
        assert_eq!(wire["Description"], line["description"]);
    }
}
