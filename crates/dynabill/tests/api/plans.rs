//! Account plans (71): create-or-update, filters, derived status, cancel, delete.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_method_error, assert_ok};
use crate::on_both_backends;

on_both_backends!(
    a_plan_takes_its_defaults_from_today_and_its_account,
    a_plan_is_updated_partially_and_never_moves_account,
    invalid_plans_are_refused_naming_the_field,
    plan_status_is_derived_and_filterable,
    cancelling_a_plan_sets_status_2_once,
    deleting_a_plan_hides_it,
);

fn today() -> String {
    jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .date()
        .to_string()
}

async fn a_plan_takes_its_defaults_from_today_and_its_account(app: &TestApp) {
    let account_id = app.create_account("PA", json!({"Currency": "EUR"})).await;
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 71, "ExtID": "SUB1", "AccountID": account_id}))
        .await;
    assert_ok(&reply);
    let plan = app.get_one("api_code=3&entity_code=71&ExtID=SUB1").await;
    assert_eq!(plan["AccountID"], json!(account_id));
    assert_eq!(plan["AccountExtID"], json!("PA"));
    assert_eq!(plan["StartDate"], json!(today()));
    assert!(plan["EndDate"].is_null());
    assert_eq!(plan["RenewalTermMonths"], json!(12));
    assert_eq!(plan["AutoRenew"], json!(0));
    assert_eq!(
        plan["Currency"],
        json!("EUR"),
        "the account's currency by default"
    );
    assert_eq!(plan["PlanStatus"], json!(1));
}

async fn a_plan_is_updated_partially_and_never_moves_account(app: &TestApp) {
    app.create_account("PB", json!({})).await;
    app.create_account("PC", json!({})).await;
    let id = app
        .create_plan("SUB2", "PB", json!({"StartDate": "2024-01-15", "BillingDay": 1, "PONumber": "PO-9", "PlanName": "Gold"}))
        .await;
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 71, "ExtID": "SUB2", "EndDate": "2025-01-15", "AutoRenew": 1}))
        .await;
    assert_ok(&reply);
    assert_eq!(reply["ID"], json!(id));
    let plan = app.get_one("api_code=3&entity_code=71&ExtID=SUB2").await;
    assert_eq!(plan["EndDate"], json!("2025-01-15"));
    assert_eq!(plan["AutoRenew"], json!(1));
    assert_eq!(plan["BillingDay"], json!(1));
    assert_eq!(plan["PONumber"], json!("PO-9"));
    assert_eq!(plan["PlanName"], json!("Gold"));
    // The same ExtID under another account is a duplicate, not a move.
    let (status, reply) = app
        .post(json!({"api_code": 10, "entity_code": 71, "ExtID": "SUB2", "AccountExtID": "PC"}))
        .await;
    assert_method_error(status, &reply, "4", "another account");
    assert_eq!(
        app.get_one("api_code=3&entity_code=71&ExtID=SUB2").await["AccountExtID"],
        json!("PB")
    );
}

async fn invalid_plans_are_refused_naming_the_field(app: &TestApp) {
    app.create_account("PD", json!({})).await;
    let rows: Vec<(Value, &str, &str)> = vec![
        (
            json!({"ExtID": "S", "AccountExtID": "nobody"}),
            "3",
            "AccountExtID",
        ),
        (json!({"ExtID": "S", "AccountID": 99999}), "3", "AccountID"),
        (json!({"ExtID": "S"}), "1", "AccountID"),
        (json!({"AccountExtID": "PD"}), "1", "ExtID"),
        (
            json!({"ExtID": "S", "AccountExtID": "PD", "BillingDay": 0}),
            "2",
            "BillingDay",
        ),
        (
            json!({"ExtID": "S", "AccountExtID": "PD", "BillingDay": 32}),
            "2",
            "BillingDay",
        ),
        (
            json!({"ExtID": "S", "AccountExtID": "PD", "StartDate": "2024-02-30"}),
            "2",
            "StartDate",
        ),
        (
            json!({"ExtID": "S", "AccountExtID": "PD", "StartDate": "1899-12-31"}),
            "2",
            "StartDate",
        ),
        (
            json!({"ExtID": "S", "AccountExtID": "PD", "StartDate": "2024-03-01", "EndDate": "2024-02-01"}),
            "2",
            "EndDate",
        ),
        (
            json!({"ExtID": "S", "AccountExtID": "PD", "StartDate": "2024-03-01", "EndDate": "2024-03-01"}),
            "2",
            "EndDate",
        ),
        (
            json!({"ExtID": "S", "AccountExtID": "PD", "AutoRenew": 5}),
            "2",
            "AutoRenew",
        ),
        (
            json!({"ExtID": "S", "AccountExtID": "PD", "RenewalTermMonths": 0}),
            "2",
            "RenewalTermMonths",
        ),
        (
            json!({"ExtID": "S", "AccountExtID": "PD", "Currency": "dollars"}),
            "2",
            "Currency",
        ),
        (
            json!({"ExtID": "S", "AccountExtID": "PD", "Notes": "n".repeat(4001)}),
            "2",
            "Notes",
        ),
    ];
    for (fields, code, field) in rows {
        let mut body = json!({"api_code": 10, "entity_code": 71});
        crate::helpers::merge(&mut body, fields);
        let (status, reply) = app.post(body).await;
        assert_method_error(status, &reply, code, field);
    }
    let (_, list) = app.get("api_code=3&entity_code=71").await;
    assert_eq!(list["TOTAL_COUNT"], json!(0), "no failed call wrote a plan");
}

async fn plan_status_is_derived_and_filterable(app: &TestApp) {
    app.create_account("PE", json!({})).await;
    app.create_account("PF", json!({})).await;
    app.create_plan("ACTIVE", "PE", json!({"StartDate": "2024-01-01"}))
        .await;
    app.create_plan(
        "EXPIRED",
        "PE",
        json!({"StartDate": "2020-01-01", "EndDate": "2021-01-01"}),
    )
    .await;
    app.create_plan(
        "RENEWING",
        "PF",
        json!({"StartDate": "2020-01-01", "EndDate": "2021-01-01", "AutoRenew": 1}),
    )
    .await;
    app.create_plan("CANCELLED", "PF", json!({"StartDate": "2024-01-01"}))
        .await;
    let (_, reply) = app
        .post(json!({"api_code": 14, "entity_code": 71, "ExtID": "CANCELLED"}))
        .await;
    assert_ok(&reply);
    let ext_ids = |reply: &Value| -> Vec<String> {
        reply["DATA"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["ExtID"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ext_ids(&app.get("api_code=3&entity_code=71&PlanStatus=1").await.1),
        ["ACTIVE", "RENEWING"]
    );
    assert_eq!(
        ext_ids(&app.get("api_code=3&entity_code=71&PlanStatus=2").await.1),
        ["CANCELLED"]
    );
    assert_eq!(
        ext_ids(&app.get("api_code=3&entity_code=71&PlanStatus=3").await.1),
        ["EXPIRED"]
    );
    assert_eq!(
        ext_ids(&app.get("api_code=3&entity_code=71&AccountExtID=PF").await.1),
        ["RENEWING", "CANCELLED"]
    );
    let pe = app.get_one("api_code=3&entity_code=69&ExtID=PE").await["ID"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        ext_ids(
            &app.get(&format!("api_code=3&entity_code=71&AccountID={pe}"))
                .await
                .1
        ),
        ["ACTIVE", "EXPIRED"]
    );
}

async fn cancelling_a_plan_sets_status_2_once(app: &TestApp) {
    app.create_account("PG", json!({})).await;
    app.create_plan("C1", "PG", json!({"StartDate": "2024-01-01"}))
        .await;
    let (status, reply) = app
        .post(json!({"api_code": 14, "entity_code": 71, "ExtID": "C1", "CancelDate": "2023-12-31"}))
        .await;
    assert_method_error(status, &reply, "5", "before the plan's StartDate");
    let (_, reply) = app
        .post(json!({"api_code": 14, "entity_code": 71, "ExtID": "C1", "CancelDate": "2024-06-30"}))
        .await;
    assert_ok(&reply);
    let plan = app.get_one("api_code=3&entity_code=71&ExtID=C1").await;
    assert_eq!(plan["PlanStatus"], json!(2));
    assert_eq!(plan["CancelDate"], json!("2024-06-30"));
    let (status, reply) = app
        .post(json!({"api_code": 14, "entity_code": 71, "ExtID": "C1"}))
        .await;
    assert_method_error(status, &reply, "5", "already cancelled");
    let (status, reply) = app
        .post(json!({"api_code": 14, "entity_code": 71, "ExtID": "C1", "CancelDate": "30/06/2024"}))
        .await;
    assert_method_error(status, &reply, "2", "CancelDate");
}

async fn deleting_a_plan_hides_it(app: &TestApp) {
    app.create_account("PH", json!({})).await;
    let id = app
        .create_plan("X1", "PH", json!({"StartDate": "2024-01-01"}))
        .await;
    let (_, reply) = app
        .post(json!({"api_code": 11, "entity_code": 71, "ID": id}))
        .await;
    assert_ok(&reply);
    let (_, list) = app.get("api_code=3&entity_code=71").await;
    assert_eq!(list["TOTAL_COUNT"], json!(0));
    let plan = app
        .get_one("api_code=3&entity_code=71&ExtID=X1&IncludeDeleted=1")
        .await;
    assert_eq!(plan["Deleted"], json!(1));
    assert_eq!(plan["PlanStatus"], json!(2));
    let (status, reply) = app
        .post(json!({"api_code": 10, "entity_code": 71, "ExtID": "X1", "AccountExtID": "PH"}))
        .await;
    assert_method_error(status, &reply, "4", "never reused");
}
