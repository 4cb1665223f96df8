//! Recurring items (110): create-or-update, lists by plan, history, renew, upsell,
//! cancel, change dates, delete, and every state rule ("5").

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_method_error, assert_ok, merge};
use crate::on_both_backends;

on_both_backends!(
    an_item_takes_its_dates_from_its_plan_and_computes_its_billing_fields,
    listing_by_a_plans_ext_id_lists_every_item_of_that_plan,
    invalid_items_are_refused_naming_the_field_and_nothing_is_written,
    an_upsell_joins_the_history_and_changes_the_terms_from_its_date,
    upsell_rules_answer_error_5_with_the_reason,
    cancelling_an_item_ends_it_and_cannot_be_repeated,
    renewing_extends_the_term_and_refuses_evergreen_items,
    renewing_a_plan_moves_the_items_that_end_with_it,
    dates_change_and_items_are_deleted_only_before_the_first_invoice,
    once_invoiced_terms_change_only_through_their_operations,
    cancelling_a_plan_or_deleting_an_account_cancels_the_items,
    statuses_follow_the_tenants_today,
);

async fn setup(app: &TestApp, plan_extra: Value) {
    app.create_account("ACC", json!({})).await;
    app.create_plan("PLAN", "ACC", plan_extra).await;
}

fn item_body(ext_id: &str, extra: Value) -> Value {
    let mut body = json!({
        "api_code": 10, "entity_code": 110, "ExtID": ext_id, "PlanExtID": "PLAN", "ProductCode": "SKU-1",
        "ItemName": "Seats", "Quantity": 10, "UnitPrice": "10.00", "BillingPeriod": 1,
    });
    merge(&mut body, extra);
    body
}

async fn create_item(app: &TestApp, ext_id: &str, extra: Value) -> String {
    let (_, reply) = app.post(item_body(ext_id, extra)).await;
    assert_ok(&reply);
    reply["ID"].as_str().unwrap().to_owned()
}

async fn item(app: &TestApp, ext_id: &str) -> Value {
    app.get_one(&format!(
        "api_code=3&entity_code=110&ExtID={ext_id}&IncludeHistory=1"
    ))
    .await
}

async fn post(app: &TestApp, body: Value) -> Value {
    let (_, reply) = app.post(body).await;
    assert_ok(&reply);
    reply
}

async fn an_item_takes_its_dates_from_its_plan_and_computes_its_billing_fields(app: &TestApp) {
    setup(
        app,
        json!({"StartDate": "2024-01-15", "EndDate": "2025-01-15", "BillingDay": 1}),
    )
    .await;
    let id = create_item(
        app,
        "I1",
        json!({"TaxCode": "00123", "DiscountPercent": 12.5}),
    )
    .await;
    let i = item(app, "I1").await;
    assert_eq!(i["ID"], json!(id));
    assert_eq!(i["StartDate"], json!("2024-01-15"));
    assert_eq!(i["EndDate"], json!("2025-01-15"));
    assert_eq!(i["Quantity"], json!(10));
    assert_eq!(i["UnitPrice"], json!(10));
    assert_eq!(i["DiscountPercent"], json!(12.5));
    assert_eq!(i["TaxCode"], json!("00123"), "leading zeros are kept");
    assert_eq!(i["BillingPeriodCount"], json!(1));
    assert_eq!(i["BillingTiming"], json!(1));
    assert_eq!(i["ItemStatus"], json!(3), "the term ended in 2025: expired");
    assert!(i["ChargedThroughDate"].is_null());
    assert_eq!(
        i["NextBillingDate"],
        json!("2024-01-15"),
        "in advance: billed from its start"
    );
    assert_eq!(i["PlanExtID"], json!("PLAN"));
    let history = i["History"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["Change"], json!("Created"));
    assert_eq!(history[0]["Quantity"], json!(10));

    create_item(
        app,
        "I2",
        json!({"BillingTiming": 2, "StartDate": "2024-02-10"}),
    )
    .await;
    let arrears = item(app, "I2").await;
    assert_eq!(
        arrears["NextBillingDate"],
        json!("2024-03-01"),
        "in arrears: billed at its first period's end (BillingDay 1)"
    );
    // Without IncludeHistory there is no History field.
    let plain = app.get_one("api_code=3&entity_code=110&ExtID=I2").await;
    assert!(plain.get("History").is_none());
}

async fn listing_by_a_plans_ext_id_lists_every_item_of_that_plan(app: &TestApp) {
    setup(app, json!({"StartDate": "2024-01-01"})).await;
    app.create_plan("OTHER", "ACC", json!({"StartDate": "2024-01-01"}))
        .await;
    create_item(app, "A", json!({})).await;
    create_item(app, "B", json!({})).await;
    create_item(app, "C", json!({"PlanExtID": "OTHER"})).await;
    let ext_ids = |reply: &Value| -> Vec<String> {
        reply["DATA"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["ExtID"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, reply) = app.get("api_code=3&entity_code=110&EXTID=PLAN").await;
    assert_eq!(ext_ids(&reply), ["A", "B"]);
    assert_eq!(reply["TOTAL_COUNT"], json!(2));
    let (_, reply) = app.get("api_code=3&entity_code=110&ExtID=C").await;
    assert_eq!(
        ext_ids(&reply),
        ["C"],
        "an item's own ExtID still gets that item"
    );
    let (_, reply) = app.get("api_code=3&entity_code=110&PlanExtID=OTHER").await;
    assert_eq!(ext_ids(&reply), ["C"]);
    let plan_id = app.get_one("api_code=3&entity_code=71&ExtID=PLAN").await["ID"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, reply) = app
        .get(&format!("api_code=3&entity_code=110&PlanID={plan_id}"))
        .await;
    assert_eq!(ext_ids(&reply), ["A", "B"]);
    let (status, reply) = app.get("api_code=3&entity_code=110&ExtID=NOTHING").await;
    assert_method_error(status, &reply, "3", "NOTHING");
    let (status, reply) = app.get("api_code=3&entity_code=110&PlanExtID=NOPLAN").await;
    assert_method_error(status, &reply, "3", "NOPLAN");
}

async fn invalid_items_are_refused_naming_the_field_and_nothing_is_written(app: &TestApp) {
    setup(app, json!({"StartDate": "2024-01-01"})).await;
    let rows: Vec<(Value, &str, &str)> = vec![
        (json!({"Quantity": -1}), "2", "Quantity"),
        (json!({"Quantity": 0}), "2", "Quantity"),
        (json!({"Quantity": "lots"}), "2", "Quantity"),
        (json!({"UnitPrice": -5}), "2", "UnitPrice"),
        (json!({"UnitPrice": "1.1234567"}), "2", "UnitPrice"),
        (json!({"UnitPrice": 1e13}), "2", "UnitPrice"),
        (json!({"BillingPeriod": 7}), "2", "BillingPeriod"),
        (json!({"BillingPeriod": 0}), "2", "BillingPeriod"),
        (json!({"BillingPeriodCount": 0}), "2", "BillingPeriodCount"),
        (
            json!({"BillingPeriodCount": 1001}),
            "2",
            "BillingPeriodCount",
        ),
        (json!({"BillingTiming": 3}), "2", "BillingTiming"),
        (json!({"DiscountPercent": 101}), "2", "DiscountPercent"),
        (json!({"DiscountPercent": -1}), "2", "DiscountPercent"),
        (
            json!({"StartDate": "2024-03-01", "EndDate": "2024-02-01"}),
            "2",
            "EndDate",
        ),
        (json!({"StartDate": "3000-01-01"}), "2", "StartDate"),
        (json!({"PlanExtID": "NOPE"}), "3", "PlanExtID"),
        (json!({"PlanExtID": null}), "1", "PlanID"),
        (json!({"ProductCode": null}), "2", "ProductCode"),
    ];
    for (change, code, field) in rows {
        let mut body = item_body("BAD", change.clone());
        if change.get("PlanExtID").is_some_and(Value::is_null) {
            body.as_object_mut().unwrap().remove("PlanExtID");
        }
        let (status, reply) = app.post(body).await;
        assert_method_error(status, &reply, code, field);
    }
    for field in [
        "ProductCode",
        "ItemName",
        "Quantity",
        "UnitPrice",
        "BillingPeriod",
        "ExtID",
    ] {
        let mut body = item_body("BAD", json!({}));
        body.as_object_mut().unwrap().remove(field);
        let (status, reply) = app.post(body).await;
        assert_method_error(status, &reply, "1", field);
    }
    let (_, reply) = app
        .post(json!({"api_code": 14, "entity_code": 71, "ExtID": "PLAN"}))
        .await;
    assert_ok(&reply);
    let (status, reply) = app.post(item_body("LATE", json!({}))).await;
    assert_method_error(status, &reply, "5", "cancelled");
    let (_, list) = app.get("api_code=3&entity_code=110&IncludeDeleted=1").await;
    assert_eq!(list["TOTAL_COUNT"], json!(0));
}

async fn an_upsell_joins_the_history_and_changes_the_terms_from_its_date(app: &TestApp) {
    setup(app, json!({"StartDate": "2024-03-01", "BillingDay": 1})).await;
    create_item(app, "U", json!({})).await;
    post(app, json!({"api_code": 13, "entity_code": 110, "ExtID": "U", "Quantity": 15, "EffectiveDate": "2024-03-10"})).await;
    // A future upsell: recorded, not yet in force.
    post(app, json!({"api_code": 13, "entity_code": 110, "ExtID": "U", "UnitPrice": 12, "EffectiveDate": "2999-01-01"})).await;
    // ProrationMode 0: from the next period boundary.
    post(app, json!({"api_code": 13, "entity_code": 110, "ExtID": "U", "Quantity": 20, "EffectiveDate": "2024-05-10", "ProrationMode": 0})).await;
    let i = item(app, "U").await;
    assert_eq!(i["Quantity"], json!(20), "today's quantity");
    assert_eq!(
        i["UnitPrice"],
        json!(10),
        "the 2999 price is not in force yet"
    );
    let history = i["History"].as_array().unwrap();
    let kinds: Vec<&str> = history
        .iter()
        .map(|h| h["Change"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Created", "Upsell", "Upsell", "Upsell"]);
    assert_eq!(history[1]["EffectiveDate"], json!("2024-03-10"));
    assert_eq!(history[1]["Quantity"], json!(15));
    assert!(
        history[1]["UnitPrice"].is_null(),
        "a quantity-only upsell names no price"
    );
    assert_eq!(history[1]["ProrationMode"], json!(1));
    assert_eq!(
        history[3]["EffectiveDate"],
        json!("2024-06-01"),
        "moved to the first boundary after 2024-05-10"
    );
    assert_eq!(history[3]["ProrationMode"], json!(0));
}

async fn upsell_rules_answer_error_5_with_the_reason(app: &TestApp) {
    setup(
        app,
        json!({"StartDate": "2024-03-01", "EndDate": "2025-03-01"}),
    )
    .await;
    create_item(app, "R", json!({})).await;
    let upsell = |extra: Value| {
        let mut body = json!({"api_code": 13, "entity_code": 110, "ExtID": "R"});
        merge(&mut body, extra);
        body
    };
    let (status, reply) = app
        .post(upsell(json!({"EffectiveDate": "2024-04-01"})))
        .await;
    assert_method_error(status, &reply, "1", "Quantity");
    let (status, reply) = app
        .post(upsell(
            json!({"Quantity": 2, "EffectiveDate": "2024-02-01"}),
        ))
        .await;
    assert_method_error(status, &reply, "5", "before the item's StartDate");
    let (status, reply) = app
        .post(upsell(
            json!({"Quantity": 2, "EffectiveDate": "2025-03-01"}),
        ))
        .await;
    assert_method_error(status, &reply, "5", "already ended");
    let (status, reply) = app
        .post(upsell(
            json!({"Quantity": -2, "EffectiveDate": "2024-04-01"}),
        ))
        .await;
    assert_method_error(status, &reply, "2", "Quantity");
    let (status, reply) = app
        .post(upsell(json!({"Quantity": 2, "ProrationMode": 5})))
        .await;
    assert_method_error(status, &reply, "2", "ProrationMode");
    post(
        app,
        json!({"api_code": 14, "entity_code": 110, "ExtID": "R", "CancelDate": "2024-06-01"}),
    )
    .await;
    let (status, reply) = app
        .post(upsell(
            json!({"Quantity": 2, "EffectiveDate": "2024-04-01"}),
        ))
        .await;
    assert_method_error(status, &reply, "5", "cancelled");
    let (status, reply) = app
        .post(json!({"api_code": 13, "entity_code": 110, "ExtID": "GHOST", "Quantity": 1}))
        .await;
    assert_method_error(status, &reply, "3", "GHOST");
}

async fn cancelling_an_item_ends_it_and_cannot_be_repeated(app: &TestApp) {
    setup(app, json!({"StartDate": "2024-01-15", "BillingDay": 1})).await;
    create_item(app, "C1", json!({})).await;
    create_item(app, "C2", json!({})).await;
    let (status, reply) = app
        .post(
            json!({"api_code": 14, "entity_code": 110, "ExtID": "C1", "CancelDate": "2024-01-01"}),
        )
        .await;
    assert_method_error(status, &reply, "5", "before the item's StartDate");
    post(app, json!({"api_code": 14, "entity_code": 110, "ExtID": "C1", "CancelDate": "2024-09-15", "CreditMode": 0})).await;
    let c1 = item(app, "C1").await;
    assert_eq!(c1["ItemStatus"], json!(2));
    assert_eq!(c1["CancelDate"], json!("2024-09-15"));
    assert_eq!(c1["EndDate"], json!("2024-09-15"));
    assert_eq!(c1["CreditMode"], json!(0));
    assert_eq!(c1["History"][1]["Change"], json!("Cancellation"));
    let (status, reply) = app
        .post(json!({"api_code": 14, "entity_code": 110, "ExtID": "C1"}))
        .await;
    assert_method_error(status, &reply, "5", "cancelled");

    // CancelAt 2 on an item never billed: the end of the period containing today.
    post(
        app,
        json!({"api_code": 14, "entity_code": 110, "ExtID": "C2", "CancelAt": 2}),
    )
    .await;
    let c2 = item(app, "C2").await;
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .date();
    let expected = today
        .first_of_month()
        .checked_add(jiff::Span::new().months(1))
        .unwrap();
    assert_eq!(c2["CancelDate"], json!(expected.to_string()));
    assert_eq!(c2["CreditMode"], json!(1), "credit by default");
    let (status, reply) = app
        .post(json!({"api_code": 14, "entity_code": 110, "ExtID": "C2", "CancelAt": 2, "CancelDate": "2025-01-01"}))
        .await;
    assert_method_error(status, &reply, "2", "CancelAt");
}

async fn renewing_extends_the_term_and_refuses_evergreen_items(app: &TestApp) {
    setup(
        app,
        json!({"StartDate": "2024-01-01", "EndDate": "2025-01-01", "RenewalTermMonths": 6}),
    )
    .await;
    create_item(app, "T", json!({})).await;
    create_item(app, "E", json!({"EndDate": null})).await;
    post(
        app,
        json!({"api_code": 12, "entity_code": 110, "ExtID": "T", "UnitPrice": 11}),
    )
    .await;
    let t = item(app, "T").await;
    assert_eq!(
        t["EndDate"],
        json!("2025-07-01"),
        "extended by the plan's RenewalTermMonths"
    );
    let renewal = &t["History"][1];
    assert_eq!(renewal["Change"], json!("Renewal"));
    assert_eq!(
        renewal["EffectiveDate"],
        json!("2025-01-01"),
        "the new price applies from the old end"
    );
    assert_eq!(renewal["UnitPrice"], json!(11));
    post(
        app,
        json!({"api_code": 12, "entity_code": 110, "ExtID": "T", "EndDate": "2026-01-01"}),
    )
    .await;
    assert_eq!(item(app, "T").await["EndDate"], json!("2026-01-01"));
    let (status, reply) = app
        .post(json!({"api_code": 12, "entity_code": 110, "ExtID": "T", "EndDate": "2025-01-01"}))
        .await;
    assert_method_error(status, &reply, "2", "EndDate");
    let (status, reply) = app
        .post(json!({"api_code": 12, "entity_code": 110, "ExtID": "E"}))
        .await;
    assert_method_error(status, &reply, "5", "evergreen");
}

async fn renewing_a_plan_moves_the_items_that_end_with_it(app: &TestApp) {
    setup(
        app,
        json!({"StartDate": "2024-01-01", "EndDate": "2025-01-01"}),
    )
    .await;
    create_item(app, "P1", json!({})).await;
    create_item(app, "P2", json!({"EndDate": "2024-07-01"})).await;
    post(
        app,
        json!({"api_code": 12, "entity_code": 71, "ExtID": "PLAN"}),
    )
    .await;
    assert_eq!(
        app.get_one("api_code=3&entity_code=71&ExtID=PLAN").await["EndDate"],
        json!("2026-01-01")
    );
    assert_eq!(item(app, "P1").await["EndDate"], json!("2026-01-01"));
    assert_eq!(
        item(app, "P2").await["EndDate"],
        json!("2024-07-01"),
        "an item with an end of its own keeps it (BILLING.md §4, Renew)"
    );
    app.create_plan("EVER", "ACC", json!({"StartDate": "2024-01-01"}))
        .await;
    let (status, reply) = app
        .post(json!({"api_code": 12, "entity_code": 71, "ExtID": "EVER"}))
        .await;
    assert_method_error(status, &reply, "5", "evergreen");
}

async fn dates_change_and_items_are_deleted_only_before_the_first_invoice(app: &TestApp) {
    setup(app, json!({"StartDate": "2024-01-01"})).await;
    create_item(app, "D", json!({})).await;
    post(app, json!({"api_code": 15, "entity_code": 110, "ExtID": "D", "StartDate": "2024-02-01", "EndDate": "2024-12-01"})).await;
    let d = item(app, "D").await;
    assert_eq!(
        (d["StartDate"].clone(), d["EndDate"].clone()),
        (json!("2024-02-01"), json!("2024-12-01"))
    );
    assert_eq!(d["History"][1]["Change"], json!("DatesChanged"));
    let (status, reply) = app
        .post(json!({"api_code": 15, "entity_code": 110, "ExtID": "D", "EndDate": "2024-01-15"}))
        .await;
    assert_method_error(status, &reply, "2", "EndDate");
    let (status, reply) = app
        .post(json!({"api_code": 15, "entity_code": 110, "ExtID": "D"}))
        .await;
    assert_method_error(status, &reply, "1", "StartDate");

    app.mark_recurring_billed("D", "2024-03-01").await;
    let (status, reply) = app
        .post(json!({"api_code": 15, "entity_code": 110, "ExtID": "D", "StartDate": "2024-01-01"}))
        .await;
    assert_method_error(status, &reply, "5", "invoiced");
    let (status, reply) = app
        .post(json!({"api_code": 11, "entity_code": 110, "ExtID": "D"}))
        .await;
    assert_method_error(status, &reply, "5", "cancel it (14) instead");

    create_item(app, "GONE", json!({})).await;
    post(
        app,
        json!({"api_code": 11, "entity_code": 110, "ExtID": "GONE"}),
    )
    .await;
    let (status, reply) = app.get("api_code=3&entity_code=110&ExtID=GONE").await;
    assert_method_error(status, &reply, "3", "GONE");
    let gone = app
        .get_one("api_code=3&entity_code=110&ExtID=GONE&IncludeDeleted=1")
        .await;
    assert_eq!(gone["Deleted"], json!(1));
    let (status, reply) = app.post(item_body("GONE", json!({}))).await;
    assert_method_error(status, &reply, "4", "never reused");
}

async fn once_invoiced_terms_change_only_through_their_operations(app: &TestApp) {
    setup(app, json!({"StartDate": "2024-01-01"})).await;
    create_item(app, "INV", json!({})).await;
    // Before the first invoice, create-or-update changes the terms.
    post(app, item_body("INV", json!({"Quantity": 12}))).await;
    assert_eq!(item(app, "INV").await["Quantity"], json!(12));
    app.mark_recurring_billed("INV", "2024-02-01").await;
    let inv = item(app, "INV").await;
    assert_eq!(inv["ChargedThroughDate"], json!("2024-02-01"));
    assert_eq!(inv["NextBillingDate"], json!("2024-02-01"));
    for (field, value, operation) in [
        ("Quantity", json!(20), "upsell (13)"),
        ("UnitPrice", json!(99), "upsell (13)"),
        ("BillingPeriod", json!(2), "upsell (13)"),
        ("StartDate", json!("2024-01-02"), "change dates (15)"),
    ] {
        let (status, reply) = app
            .post(json!({"api_code": 10, "entity_code": 110, "ExtID": "INV", field: value}))
            .await;
        assert_method_error(status, &reply, "5", operation);
    }
    // Descriptive fields still change, and resending the same terms is harmless.
    post(app, json!({"api_code": 10, "entity_code": 110, "ExtID": "INV", "ItemName": "Renamed", "Quantity": 12, "TaxCode": "T1"})).await;
    let inv = item(app, "INV").await;
    assert_eq!(inv["ItemName"], json!("Renamed"));
    assert_eq!(inv["TaxCode"], json!("T1"));
}

async fn cancelling_a_plan_or_deleting_an_account_cancels_the_items(app: &TestApp) {
    setup(app, json!({"StartDate": "2024-01-01"})).await;
    create_item(app, "K1", json!({})).await;
    create_item(app, "K2", json!({"StartDate": "2025-01-01"})).await;
    create_item(app, "ENDED", json!({"EndDate": "2024-03-01"})).await;
    for (ext, date) in [("OT-BEFORE", "2024-05-01"), ("OT-AFTER", "2024-07-01")] {
        post(app, json!({"api_code": 10, "entity_code": 75, "ExtID": ext, "PlanExtID": "PLAN", "ProductCode": "FEE",
            "ItemName": "Fee", "Quantity": 1, "UnitPrice": 50, "ChargeDate": date})).await;
    }
    post(
        app,
        json!({"api_code": 14, "entity_code": 71, "ExtID": "PLAN", "CancelDate": "2024-06-15"}),
    )
    .await;
    let k1 = item(app, "K1").await;
    assert_eq!(
        (k1["ItemStatus"].clone(), k1["CancelDate"].clone()),
        (json!(2), json!("2024-06-15"))
    );
    assert_eq!(
        item(app, "K2").await["CancelDate"],
        json!("2025-01-01"),
        "a future item is cancelled at its start"
    );
    let ended = item(app, "ENDED").await;
    assert!(
        ended["CancelDate"].is_null(),
        "an item that had already ended is left alone"
    );
    let one_time = |ext: &'static str| async move {
        app.get_one(&format!("api_code=3&entity_code=75&ExtID={ext}"))
            .await
    };
    assert_eq!(
        one_time("OT-BEFORE").await["ItemStatus"],
        json!(1),
        "charged before the cancel date: still owed"
    );
    assert_eq!(one_time("OT-AFTER").await["ItemStatus"], json!(3));

    app.create_account("ACC2", json!({})).await;
    app.create_plan("PLAN2", "ACC2", json!({"StartDate": "2024-01-01"}))
        .await;
    create_item(app, "K3", json!({"PlanExtID": "PLAN2"})).await;
    post(
        app,
        json!({"api_code": 11, "entity_code": 69, "ExtID": "ACC2"}),
    )
    .await;
    assert_eq!(item(app, "K3").await["ItemStatus"], json!(2));
}

async fn statuses_follow_the_tenants_today(app: &TestApp) {
    setup(app, json!({"StartDate": "2020-01-01"})).await;
    create_item(app, "ACTIVE", json!({})).await;
    create_item(app, "FUTURE", json!({"StartDate": "2999-01-01"})).await;
    create_item(app, "EXPIRED", json!({"EndDate": "2021-01-01"})).await;
    for (ext, status) in [("ACTIVE", 1), ("FUTURE", 4), ("EXPIRED", 3)] {
        assert_eq!(item(app, ext).await["ItemStatus"], json!(status), "{ext}");
    }
    app.create_plan(
        "AUTO",
        "ACC",
        json!({"StartDate": "2020-01-01", "EndDate": "2021-01-01", "AutoRenew": 1}),
    )
    .await;
    create_item(app, "RENEWS", json!({"PlanExtID": "AUTO"})).await;
    assert_eq!(
        item(app, "RENEWS").await["ItemStatus"],
        json!(1),
        "an auto-renewing plan's item stays active"
    );
}
