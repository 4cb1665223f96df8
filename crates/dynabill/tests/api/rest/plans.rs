//! `/v1/plans`, `/v1/accounts/{id}/plans`, and the items under them.

use serde_json::{Value, json};

use super::assert_problem;
use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    a_plan_and_its_items_live_their_whole_life_through_rest,
    plan_and_item_problems_name_the_field_and_change_nothing,
    another_tenant_gets_404_for_every_plan_and_item,
    plans_and_items_read_the_same_through_both_doors,
    a_deleted_parent_is_gone_from_its_lists_unless_deleted_records_are_asked_for,
);

/// A deleted account's plans, and a deleted plan's items, are not listed under
/// it: the parent is 404 there as on its own URL, unless `include_deleted=true`.
async fn a_deleted_parent_is_gone_from_its_lists_unless_deleted_records_are_asked_for(
    app: &TestApp,
) {
    let account = account(app, "GONE").await;
    let plan = plan(app, account, "GONE-P").await;
    for path in [
        format!("/v1/accounts/{account}/plans"),
        format!("/v1/plans/{plan}/recurring-items"),
    ] {
        let (status, _, _) = app.rest("GET", &path, None).await;
        assert_eq!(status, 200, "{path} before the delete");
    }
    let (status, _, _) = app
        .rest("DELETE", &format!("/v1/accounts/{account}"), None)
        .await;
    assert_eq!(status, 204);
    // The account's plan (cancelled with it, not deleted) still lists its items;
    // a plan deleted on its own does not.
    let (status, _, _) = app
        .rest("GET", &format!("/v1/plans/{plan}/recurring-items"), None)
        .await;
    assert_eq!(status, 200);
    let other = self::account(app, "STAYS").await;
    let deleted = self::plan(app, other, "STAYS-P").await;
    let (status, _, _) = app
        .rest("DELETE", &format!("/v1/plans/{deleted}"), None)
        .await;
    assert_eq!(status, 204);
    let path = format!("/v1/plans/{deleted}/recurring-items");
    let (status, _, _) = app.rest("GET", &path, None).await;
    assert_eq!(status, 404);
    let (status, _, _) = app
        .rest("GET", &format!("{path}?include_deleted=true"), None)
        .await;
    assert_eq!(status, 200);
    let (status, _, listed) = app
        .rest("GET", &format!("/v1/accounts/{account}/plans"), None)
        .await;
    assert_eq!(status, 404, "{listed}");
    let (status, _, listed) = app
        .rest(
            "GET",
            &format!("/v1/accounts/{account}/plans?include_deleted=true"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["data"][0]["id"], json!(plan));
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

async fn plan(app: &TestApp, account: i64, ext_id: &str) -> i64 {
    let (status, headers, created) = app
        .rest(
            "POST",
            &format!("/v1/accounts/{account}/plans"),
            Some(
                json!({"ext_id": ext_id, "start_date": "2026-01-15", "end_date": "2027-01-15",
                "billing_day": 1, "po_number": "PO-1"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    assert_eq!(headers["location"], format!("/v1/plans/{id}").as_str());
    id
}

fn seats(ext_id: &str) -> Value {
    json!({"ext_id": ext_id, "product_code": "SEAT", "item_name": "Seats", "quantity": "10",
        "unit_price": "49.50", "billing_period": 1})
}

async fn a_plan_and_its_items_live_their_whole_life_through_rest(app: &TestApp) {
    let account = account(app, "ACC").await;
    let plan = plan(app, account, "SUB").await;
    let (_, _, read) = app.rest("GET", &format!("/v1/plans/{plan}"), None).await;
    assert_eq!(read["account_id"], account);
    assert_eq!(read["account_ext_id"], "ACC");
    assert_eq!(read["end_date"], "2027-01-15");
    assert_eq!(read["billing_day"], 1);
    assert_eq!(read["auto_renew"], false);
    let (_, _, by_ext) = app.rest("GET", "/v1/plans/by-ext-id/SUB", None).await;
    assert_eq!(by_ext, read);
    let (_, _, listed) = app
        .rest(
            "GET",
            &format!("/v1/accounts/{account}/plans?include=total_count"),
            None,
        )
        .await;
    assert_eq!(listed["total_count"], 1);
    assert_eq!(listed["data"][0], read);
    let (_, _, changed) = app
        .rest(
            "PATCH",
            &format!("/v1/plans/{plan}"),
            Some(json!({"auto_renew": true, "po_number": null})),
        )
        .await;
    assert_eq!(changed["auto_renew"], true);
    assert_eq!(changed["po_number"], Value::Null);

    let (status, headers, item) = app
        .rest(
            "POST",
            &format!("/v1/plans/{plan}/recurring-items"),
            Some(seats("SEATS")),
        )
        .await;
    assert_eq!(status, 201, "{item}");
    let item_id = item["id"].as_i64().unwrap();
    assert_eq!(
        headers["location"],
        format!("/v1/recurring-items/{item_id}").as_str()
    );
    assert_eq!(item["quantity"], "10");
    assert_eq!(item["unit_price"], "49.5");
    assert_eq!(item["start_date"], "2026-01-15");
    assert_eq!(item["end_date"], "2027-01-15");
    assert_eq!(item["plan_ext_id"], "SUB");

    let (status, _, upsold) = app
        .rest(
            "POST",
            &format!("/v1/recurring-items/{item_id}/upsell"),
            Some(json!({"quantity": "12", "effective_date": "2026-01-15"})),
        )
        .await;
    assert_eq!(status, 200, "{upsold}");
    assert_eq!(upsold["quantity"], "12");
    let (_, _, renewed) = app
        .rest(
            "POST",
            &format!("/v1/recurring-items/{item_id}/renew"),
            Some(json!({"renewal_term_months": 6})),
        )
        .await;
    assert_eq!(renewed["end_date"], "2027-07-15", "{renewed}");
    let (_, _, moved) = app
        .rest(
            "POST",
            &format!("/v1/recurring-items/{item_id}/change-dates"),
            Some(json!({"start_date": "2026-02-01"})),
        )
        .await;
    assert_eq!(moved["start_date"], "2026-02-01", "{moved}");
    let (_, _, with_history) = app
        .rest(
            "GET",
            &format!("/v1/recurring-items/{item_id}?include=history"),
            None,
        )
        .await;
    let changes: Vec<&str> = with_history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["Created", "Upsell", "Renewal", "DatesChanged"]);
    let (_, _, plain) = app
        .rest("GET", &format!("/v1/recurring-items/{item_id}"), None)
        .await;
    assert!(plain.get("history").is_none());
    let (_, _, listed) = app
        .rest(
            "GET",
            &format!("/v1/plans/{plan}/recurring-items?include=history,total_count"),
            None,
        )
        .await;
    assert_eq!(listed["total_count"], 1);
    assert_eq!(listed["data"][0]["history"].as_array().unwrap().len(), 4);

    let (status, _, one_time) = app
        .rest(
            "POST",
            &format!("/v1/plans/{plan}/one-time-items"),
            Some(
                json!({"ext_id": "SETUP", "product_code": "SETUP", "item_name": "Setup",
                "quantity": "1", "unit_price": "-25.5", "charge_date": "2026-01-20"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{one_time}");
    let one_time_id = one_time["id"].as_i64().unwrap();
    assert_eq!(one_time["unit_price"], "-25.5");
    assert_eq!(one_time["item_status"], 1);
    let (_, _, changed) = app
        .rest(
            "PATCH",
            &format!("/v1/one-time-items/{one_time_id}"),
            Some(json!({"item_name": "Onboarding"})),
        )
        .await;
    assert_eq!(changed["item_name"], "Onboarding");
    let (_, _, by_ext) = app
        .rest("GET", "/v1/one-time-items/by-ext-id/SETUP", None)
        .await;
    assert_eq!(by_ext, changed);
    let (status, _, _) = app
        .rest("DELETE", &format!("/v1/one-time-items/{one_time_id}"), None)
        .await;
    assert_eq!(status, 204);
    let (_, _, listed) = app
        .rest(
            "GET",
            "/v1/one-time-items?include=total_count&include_deleted=true",
            None,
        )
        .await;
    assert_eq!(listed["total_count"], 1);
    assert_eq!(listed["data"][0]["deleted"], true);

    let (status, _, cancelled) = app
        .rest(
            "POST",
            &format!("/v1/recurring-items/{item_id}/cancel"),
            Some(json!({"cancel_date": "2026-06-01", "credit_mode": 0})),
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["cancel_date"], "2026-06-01");
    assert_eq!(cancelled["credit_mode"], 0);

    let (status, _, renewed) = app
        .rest(
            "POST",
            &format!("/v1/plans/{plan}/renew"),
            Some(json!({"end_date": "2028-01-15"})),
        )
        .await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["end_date"], "2028-01-15");
    let (status, _, cancelled) = app
        .rest(
            "POST",
            &format!("/v1/plans/{plan}/cancel"),
            Some(json!({"cancel_date": "2026-07-01"})),
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["cancel_date"], "2026-07-01");
    let refused = app
        .rest(
            "POST",
            &format!("/v1/plans/{plan}/recurring-items"),
            Some(seats("LATE")),
        )
        .await;
    assert_problem(&refused, 409, "not_allowed", None);
    assert_eq!(refused.2["method_error"], "5");
}

async fn plan_and_item_problems_name_the_field_and_change_nothing(app: &TestApp) {
    let account = account(app, "ACC").await;
    let reply = app
        .rest(
            "POST",
            &format!("/v1/accounts/{account}/plans"),
            Some(json!({"start_date": "2026-01-01"})),
        )
        .await;
    assert_problem(&reply, 422, "missing_field", Some("ext_id"));
    let reply = app
        .rest(
            "POST",
            &format!("/v1/accounts/{account}/plans"),
            Some(json!({"ext_id": "P", "start_date": "2026-02-30"})),
        )
        .await;
    assert_problem(&reply, 422, "invalid_field", Some("start_date"));
    let reply = app
        .rest(
            "POST",
            &format!("/v1/accounts/{account}/plans"),
            Some(json!({"ext_id": "P", "start_date": "2026-02-01", "end_date": "2026-01-01"})),
        )
        .await;
    assert_problem(&reply, 422, "invalid_field", Some("end_date"));
    let reply = app
        .rest(
            "POST",
            "/v1/accounts/999999/plans",
            Some(json!({"ext_id": "P"})),
        )
        .await;
    assert_problem(&reply, 404, "not_found", None);
    let (_, _, listed) = app.rest("GET", "/v1/plans?include=total_count", None).await;
    assert_eq!(listed["total_count"], 0);

    let plan = plan(app, account, "SUB").await;
    let reply = app
        .rest(
            "POST",
            &format!("/v1/accounts/{account}/plans"),
            Some(json!({"ext_id": "SUB"})),
        )
        .await;
    assert_problem(&reply, 409, "duplicate", None);
    let mut bad = seats("S");
    bad["quantity"] = json!(10);
    let reply = app
        .rest(
            "POST",
            &format!("/v1/plans/{plan}/recurring-items"),
            Some(bad),
        )
        .await;
    assert_problem(&reply, 422, "invalid_field", Some("quantity"));
    let mut bad = seats("S");
    bad["discount_percent"] = json!("150");
    let reply = app
        .rest(
            "POST",
            &format!("/v1/plans/{plan}/recurring-items"),
            Some(bad),
        )
        .await;
    assert_problem(&reply, 422, "invalid_field", Some("discount_percent"));
    let reply = app
        .rest("POST", "/v1/plans/999999/recurring-items", Some(seats("S")))
        .await;
    assert_problem(&reply, 404, "not_found", None);
    let reply = app
        .rest("POST", "/v1/recurring-items/999999/cancel", Some(json!({})))
        .await;
    assert_problem(&reply, 404, "not_found", None);
    let reply = app
        .rest("GET", "/v1/plans/999999/recurring-items", None)
        .await;
    assert_problem(&reply, 404, "not_found", None);
    let (_, _, listed) = app
        .rest("GET", "/v1/recurring-items?include=total_count", None)
        .await;
    assert_eq!(listed["total_count"], 0);

    let (_, _, item) = app
        .rest(
            "POST",
            &format!("/v1/plans/{plan}/recurring-items"),
            Some(seats("S")),
        )
        .await;
    let id = item["id"].as_i64().unwrap();
    let reply = app
        .rest(
            "POST",
            &format!("/v1/recurring-items/{id}/cancel"),
            Some(json!({"cancel_at": 2, "cancel_date": "2026-03-01"})),
        )
        .await;
    assert_problem(&reply, 422, "invalid_field", Some("cancel_at"));
    let reply = app
        .rest(
            "POST",
            &format!("/v1/recurring-items/{id}/renew"),
            Some(json!({"end_date": "2028-01-01", "renewal_term_months": 3})),
        )
        .await;
    assert_problem(&reply, 422, "invalid_field", Some("renewal_term_months"));
    let (_, _, unchanged) = app
        .rest("GET", &format!("/v1/recurring-items/{id}"), None)
        .await;
    assert_eq!(unchanged, item);
}

async fn another_tenant_gets_404_for_every_plan_and_item(app: &TestApp) {
    let account = account(app, "ACC").await;
    let plan = plan(app, account, "SUB").await;
    let (_, _, item) = app
        .rest(
            "POST",
            &format!("/v1/plans/{plan}/recurring-items"),
            Some(seats("S")),
        )
        .await;
    let item = item["id"].as_i64().unwrap();
    let other = app.new_tenant("other").await;
    for (method, path, body) in [
        ("GET", format!("/v1/accounts/{account}/plans"), None),
        (
            "POST",
            format!("/v1/accounts/{account}/plans"),
            Some(json!({"ext_id": "X"})),
        ),
        ("GET", format!("/v1/plans/{plan}"), None),
        ("GET", "/v1/plans/by-ext-id/SUB".to_owned(), None),
        (
            "PATCH",
            format!("/v1/plans/{plan}"),
            Some(json!({"notes": "x"})),
        ),
        ("POST", format!("/v1/plans/{plan}/cancel"), Some(json!({}))),
        ("POST", format!("/v1/plans/{plan}/renew"), Some(json!({}))),
        ("DELETE", format!("/v1/plans/{plan}"), None),
        ("GET", format!("/v1/plans/{plan}/recurring-items"), None),
        (
            "POST",
            format!("/v1/plans/{plan}/recurring-items"),
            Some(seats("X")),
        ),
        ("GET", format!("/v1/recurring-items/{item}"), None),
        ("GET", "/v1/recurring-items/by-ext-id/S".to_owned(), None),
        (
            "PATCH",
            format!("/v1/recurring-items/{item}"),
            Some(json!({"item_name": "x"})),
        ),
        (
            "POST",
            format!("/v1/recurring-items/{item}/upsell"),
            Some(json!({"quantity": "2", "effective_date": "2026-02-01"})),
        ),
        (
            "POST",
            format!("/v1/recurring-items/{item}/cancel"),
            Some(json!({})),
        ),
        ("DELETE", format!("/v1/recurring-items/{item}"), None),
    ] {
        let reply = app.rest_as(&other, method, &path, body, &[]).await;
        assert_problem(&reply, 404, "not_found", None);
    }
    let (_, _, mine) = app.rest("GET", &format!("/v1/plans/{plan}"), None).await;
    assert_eq!(mine["plan_status"], 1);
    assert_eq!(mine["notes"], Value::Null);
}

async fn plans_and_items_read_the_same_through_both_doors(app: &TestApp) {
    app.create_account("D", json!({})).await;
    let plan = app
        .create_plan(
            "DP",
            "D",
            json!({"StartDate": "2026-01-01", "BillingDay": 5}),
        )
        .await;
    let (_, reply) = app
        .post(
            json!({"api_code": 10, "entity_code": 110, "ExtID": "DI", "PlanExtID": "DP",
            "ProductCode": "P", "ItemName": "I", "Quantity": 2.5, "UnitPrice": "10.10",
            "BillingPeriod": 2, "DiscountPercent": 5}),
        )
        .await;
    crate::helpers::assert_ok(&reply);
    let dynamic = app.get_one("api_code=3&entity_code=110&ExtID=DI").await;
    let (_, _, rest) = app
        .rest("GET", "/v1/recurring-items/by-ext-id/DI", None)
        .await;
    assert_eq!(dynamic["ID"], rest["id"].to_string());
    assert_eq!(dynamic["PlanID"], plan);
    assert_eq!(rest["plan_id"].to_string(), plan);
    assert_eq!(
        dynamic["Quantity"].to_string(),
        rest["quantity"].as_str().unwrap()
    );
    assert_eq!(
        dynamic["UnitPrice"].to_string(),
        rest["unit_price"].as_str().unwrap()
    );
    assert_eq!(
        dynamic["DiscountPercent"].to_string(),
        rest["discount_percent"].as_str().unwrap()
    );
    assert_eq!(dynamic["BillingPeriod"], rest["billing_period"]);
    assert_eq!(dynamic["NextBillingDate"], rest["next_billing_date"]);
    assert_eq!(dynamic["ItemStatus"], rest["item_status"]);

    let (_, _, created) = app
        .rest(
            "POST",
            &format!("/v1/plans/{plan}/recurring-items"),
            Some(seats("RI")),
        )
        .await;
    let dynamic = app.get_one("api_code=3&entity_code=110&ExtID=RI").await;
    assert_eq!(dynamic["ID"], created["id"].to_string());
    assert_eq!(
        dynamic["UnitPrice"].to_string(),
        created["unit_price"].as_str().unwrap()
    );
    let dynamic_plan = app.get_one("api_code=3&entity_code=71&ExtID=DP").await;
    let (_, _, rest_plan) = app.rest("GET", &format!("/v1/plans/{plan}"), None).await;
    assert_eq!(dynamic_plan["BillingDay"], rest_plan["billing_day"]);
    assert_eq!(dynamic_plan["StartDate"], rest_plan["start_date"]);
    assert_eq!(dynamic_plan["PlanStatus"], rest_plan["plan_status"]);
    assert_eq!(dynamic_plan["UpdatedAt"], rest_plan["updated_at"]);
}
