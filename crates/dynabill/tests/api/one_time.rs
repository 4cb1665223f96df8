//! One-time items (75): create-or-update, lists by plan, and the Pending-only rules.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_method_error, assert_ok, merge};
use crate::on_both_backends;

on_both_backends!(
    a_one_time_item_is_pending_until_invoiced_and_may_be_a_credit,
    one_time_items_change_and_go_only_while_pending,
    invalid_one_time_items_are_refused_naming_the_field,
);

fn body(ext_id: &str, extra: Value) -> Value {
    let mut body = json!({"api_code": 10, "entity_code": 75, "ExtID": ext_id, "PlanExtID": "PLAN",
        "ProductCode": "SETUP", "ItemName": "Setup fee", "Quantity": 1, "UnitPrice": 250});
    merge(&mut body, extra);
    body
}

async fn setup(app: &TestApp) {
    app.create_account("ACC", json!({})).await;
    app.create_plan("PLAN", "ACC", json!({"StartDate": "2024-01-01"}))
        .await;
}

async fn a_one_time_item_is_pending_until_invoiced_and_may_be_a_credit(app: &TestApp) {
    setup(app).await;
    let (_, reply) = app.post(body("SETUP-1", json!({}))).await;
    assert_ok(&reply);
    let (_, reply) = app
        .post(body(
            "CREDIT-1",
            json!({"UnitPrice": "-25.50", "ChargeDate": "2024-02-01"}),
        ))
        .await;
    assert_ok(&reply);
    let setup = app.get_one("api_code=3&entity_code=75&ExtID=SETUP-1").await;
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    assert_eq!(
        setup["ChargeDate"],
        json!(today),
        "charged today by default"
    );
    assert_eq!(setup["ItemStatus"], json!(1));
    assert_eq!(setup["UnitPrice"], json!(250));
    let credit = app
        .get_one("api_code=3&entity_code=75&ExtID=CREDIT-1")
        .await;
    assert_eq!(credit["UnitPrice"], json!(-25.5));
    let (_, by_plan) = app.get("api_code=3&entity_code=75&EXTID=PLAN").await;
    assert_eq!(by_plan["TOTAL_COUNT"], json!(2));
    app.mark_one_time_invoiced("SETUP-1").await;
    assert_eq!(
        app.get_one("api_code=3&entity_code=75&ExtID=SETUP-1").await["ItemStatus"],
        json!(2)
    );
}

async fn one_time_items_change_and_go_only_while_pending(app: &TestApp) {
    setup(app).await;
    for ext in ["P1", "P2", "P3"] {
        let (_, reply) = app.post(body(ext, json!({}))).await;
        assert_ok(&reply);
    }
    let (_, reply) = app.post(json!({"api_code": 10, "entity_code": 75, "ExtID": "P1", "Quantity": 3, "Description": "Three"})).await;
    assert_ok(&reply);
    let p1 = app.get_one("api_code=3&entity_code=75&ExtID=P1").await;
    assert_eq!(
        (p1["Quantity"].clone(), p1["Description"].clone()),
        (json!(3), json!("Three"))
    );

    app.mark_one_time_invoiced("P1").await;
    let (status, reply) = app
        .post(json!({"api_code": 10, "entity_code": 75, "ExtID": "P1", "Quantity": 4}))
        .await;
    assert_method_error(status, &reply, "5", "invoiced");
    let (status, reply) = app
        .post(json!({"api_code": 11, "entity_code": 75, "ExtID": "P1"}))
        .await;
    assert_method_error(status, &reply, "5", "invoiced");

    let (_, reply) = app
        .post(json!({"api_code": 11, "entity_code": 75, "ExtID": "P2"}))
        .await;
    assert_ok(&reply);
    let (status, reply) = app.get("api_code=3&entity_code=75&ExtID=P2").await;
    assert_method_error(status, &reply, "3", "P2");
    let p2 = app
        .get_one("api_code=3&entity_code=75&ExtID=P2&IncludeDeleted=1")
        .await;
    assert_eq!(
        (p2["ItemStatus"].clone(), p2["Deleted"].clone()),
        (json!(3), json!(1))
    );

    // Cancelled by its plan: no longer Pending.
    let (_, reply) = app
        .post(
            json!({"api_code": 14, "entity_code": 71, "ExtID": "PLAN", "CancelDate": "2024-01-01"}),
        )
        .await;
    assert_ok(&reply);
    let (status, reply) = app
        .post(json!({"api_code": 10, "entity_code": 75, "ExtID": "P3", "Quantity": 9}))
        .await;
    assert_method_error(status, &reply, "5", "cancelled");
}

async fn invalid_one_time_items_are_refused_naming_the_field(app: &TestApp) {
    setup(app).await;
    let rows: Vec<(Value, &str, &str)> = vec![
        (json!({"Quantity": 0}), "2", "Quantity"),
        (json!({"UnitPrice": "abc"}), "2", "UnitPrice"),
        (json!({"ChargeDate": "2024-13-01"}), "2", "ChargeDate"),
        (json!({"PlanExtID": "NOPE"}), "3", "PlanExtID"),
        (json!({"PlanID": 424242}), "3", "PlanID"),
    ];
    for (change, code, field) in rows {
        let (status, reply) = app.post(body("X", change)).await;
        assert_method_error(status, &reply, code, field);
    }
    for field in ["ProductCode", "ItemName", "Quantity", "UnitPrice"] {
        let mut b = body("X", json!({}));
        b.as_object_mut().unwrap().remove(field);
        let (status, reply) = app.post(b).await;
        assert_method_error(status, &reply, "1", field);
    }
    let (_, list) = app.get("api_code=3&entity_code=75&IncludeDeleted=1").await;
    assert_eq!(list["TOTAL_COUNT"], json!(0));
}
