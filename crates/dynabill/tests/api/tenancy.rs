//! Tenant isolation: a tenant never sees or changes another tenant's records.

use serde_json::json;

use crate::helpers::{TestApp, assert_method_error, assert_ok};
use crate::on_both_backends;

on_both_backends!(
    a_second_tenant_sees_none_of_the_first_tenants_records_and_cannot_change_them,
    a_second_tenant_cannot_see_or_touch_the_first_tenants_items,
);

async fn a_second_tenant_sees_none_of_the_first_tenants_records_and_cannot_change_them(
    app: &TestApp,
) {
    let a_id = app
        .create_account("SHARED", json!({"AccountName": "Tenant A's"}))
        .await;
    let plan_id = app
        .create_plan("SHARED-PLAN", "SHARED", json!({"StartDate": "2024-01-01"}))
        .await;
    let b = app.new_tenant("second").await;

    for query in [
        "api_code=3&entity_code=69".to_owned(),
        "api_code=3&entity_code=71".to_owned(),
        "api_code=3&entity_code=69&IncludeDeleted=1".to_owned(),
    ] {
        let (_, reply) = app.get_as(&b, &query).await;
        assert_ok(&reply);
        assert_eq!(reply["TOTAL_COUNT"], json!(0), "{query}");
    }
    let (status, reply) = app
        .get_as(&b, &format!("api_code=3&entity_code=69&ID={a_id}"))
        .await;
    assert_method_error(status, &reply, "3", "ID");
    let (status, reply) = app
        .get_as(&b, "api_code=3&entity_code=69&ExtID=SHARED")
        .await;
    assert_method_error(status, &reply, "3", "SHARED");
    let (status, reply) = app
        .post_as(
            &b,
            json!({"api_code": 10, "entity_code": 69, "ID": a_id, "AccountName": "Hijacked"}),
        )
        .await;
    assert_method_error(status, &reply, "3", "ID");
    let (status, reply) = app
        .post_as(&b, json!({"api_code": 11, "entity_code": 69, "ID": a_id}))
        .await;
    assert_method_error(status, &reply, "3", "ID");
    let (status, reply) = app
        .post_as(
            &b,
            json!({"api_code": 14, "entity_code": 71, "ID": plan_id}),
        )
        .await;
    assert_method_error(status, &reply, "3", "ID");
    let (status, reply) = app
        .post_as(
            &b,
            json!({"api_code": 10, "entity_code": 71, "ExtID": "B-PLAN", "AccountID": a_id}),
        )
        .await;
    assert_method_error(status, &reply, "3", "AccountID");

    // ExtIDs are per tenant: B's "SHARED" is B's own record.
    let b_id = app
        .create_account_as(&b, "SHARED", json!({"AccountName": "Tenant B's"}))
        .await;
    assert_ne!(b_id, a_id);
    let a_account = app.get_one("api_code=3&entity_code=69&ExtID=SHARED").await;
    assert_eq!(a_account["AccountName"], json!("Tenant A's"));
    assert_eq!(
        app.get_one("api_code=3&entity_code=71&ExtID=SHARED-PLAN")
            .await["PlanStatus"],
        json!(1)
    );
}

async fn a_second_tenant_cannot_see_or_touch_the_first_tenants_items(app: &TestApp) {
    app.create_account("ACC", json!({})).await;
    app.create_plan("PLAN", "ACC", json!({"StartDate": "2024-01-01"}))
        .await;
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 110, "ExtID": "ITEM", "PlanExtID": "PLAN", "ProductCode": "P",
            "ItemName": "I", "Quantity": 1, "UnitPrice": 1, "BillingPeriod": 1}))
        .await;
    assert_ok(&reply);
    let item_id = reply["ID"].as_str().unwrap().to_owned();
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 75, "ExtID": "FEE", "PlanExtID": "PLAN", "ProductCode": "P",
            "ItemName": "F", "Quantity": 1, "UnitPrice": 1}))
        .await;
    assert_ok(&reply);
    let b = app.new_tenant("second").await;
    for query in ["api_code=3&entity_code=110", "api_code=3&entity_code=75"] {
        let (_, reply) = app.get_as(&b, query).await;
        assert_eq!(reply["TOTAL_COUNT"], json!(0), "{query}");
    }
    let (status, reply) = app
        .get_as(&b, "api_code=3&entity_code=110&EXTID=PLAN")
        .await;
    assert_method_error(status, &reply, "3", "PLAN");
    let (status, reply) = app
        .post_as(
            &b,
            json!({"api_code": 13, "entity_code": 110, "ID": item_id, "Quantity": 5}),
        )
        .await;
    assert_method_error(status, &reply, "3", "ID");
    let (status, reply) = app
        .post_as(
            &b,
            json!({"api_code": 14, "entity_code": 110, "ExtID": "ITEM"}),
        )
        .await;
    assert_method_error(status, &reply, "3", "ITEM");
    let (status, reply) = app
        .post_as(
            &b,
            json!({"api_code": 11, "entity_code": 75, "ExtID": "FEE"}),
        )
        .await;
    assert_method_error(status, &reply, "3", "FEE");
    let (status, reply) = app
        .post_as(&b, json!({"api_code": 10, "entity_code": 110, "ExtID": "B-ITEM", "PlanExtID": "PLAN", "ProductCode": "P",
            "ItemName": "I", "Quantity": 1, "UnitPrice": 1, "BillingPeriod": 1}))
        .await;
    assert_method_error(status, &reply, "3", "PlanExtID");
    let item = app.get_one("api_code=3&entity_code=110&ExtID=ITEM").await;
    assert_eq!(
        (item["Quantity"].clone(), item["ItemStatus"].clone()),
        (json!(1), json!(1))
    );
}
