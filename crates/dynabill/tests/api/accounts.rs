//! Accounts (69): create-or-update, get, filters, validation, soft delete.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_method_error, assert_ok};
use crate::on_both_backends;

on_both_backends!(
    an_account_is_created_with_defaults_and_read_back_by_id_or_ext_id,
    an_update_changes_only_the_fields_sent,
    create_or_update_by_ext_id_updates_the_existing_account,
    optional_fields_are_cleared_with_null_or_empty,
    invalid_fields_are_refused_naming_the_field_and_change_nothing,
    list_filters_select_accounts,
    deleting_an_account_hides_it_cancels_its_plans_and_retires_its_ext_id,
    naming_an_unknown_account_is_error_3,
    concurrent_upserts_of_one_ext_id_make_one_account,
);

fn account_body(ext_id: &str) -> Value {
    json!({
        "api_code": 10, "entity_code": 69, "ExtID": ext_id, "AccountName": "Acme Inc.",
        "AccountType": 1, "AccountStatus": 1, "Email": "billing@acme.example.com",
    })
}

async fn an_account_is_created_with_defaults_and_read_back_by_id_or_ext_id(app: &TestApp) {
    let mut body = account_body("CRM-1");
    body["Country"] = json!("de");
    body["ExtID2"] = json!(4711);
    body["Phone"] = json!("+49 30 1234");
    let (_, reply) = app.post(body).await;
    assert_ok(&reply);
    assert_eq!(reply["ExtID"], json!("CRM-1"));
    let id = reply["ID"].as_str().unwrap().to_owned();

    let by_id = app
        .get_one(&format!("api_code=3&entity_code=69&ID={id}"))
        .await;
    let by_ext = app.get_one("api_code=3&entity_code=69&ExtID=CRM-1").await;
    assert_eq!(by_id, by_ext);
    assert_eq!(by_id["ID"], json!(id));
    assert_eq!(by_id["AccountName"], json!("Acme Inc."));
    assert_eq!(
        by_id["Country"],
        json!("DE"),
        "countries are stored upper case"
    );
    assert_eq!(
        by_id["ExtID2"],
        json!("4711"),
        "numeric keys are kept as text"
    );
    assert_eq!(
        by_id["Currency"],
        json!("USD"),
        "the tenant's currency by default"
    );
    assert_eq!(by_id["DueDateMethod"], json!(1));
    assert_eq!(by_id["DueDateDays"], json!(30));
    assert_eq!(by_id["InvoiceGrouping"], json!(1));
    assert_eq!(by_id["TaxExempt"], json!(0));
    assert_eq!(by_id["CreditBalance"].to_string(), "0.00");
    assert!(by_id["CreatedAt"].as_str().unwrap().ends_with('Z'));
}

async fn an_update_changes_only_the_fields_sent(app: &TestApp) {
    let id = app
        .create_account("U1", json!({"City": "Berlin", "DueDateDays": 14}))
        .await;
    let before = app.get_one("api_code=3&entity_code=69&ExtID=U1").await;
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 69, "ID": id, "AccountStatus": 3, "currency": "eur"}))
        .await;
    assert_ok(&reply);
    assert_eq!(reply["ID"], json!(id));
    let after = app.get_one("api_code=3&entity_code=69&ExtID=U1").await;
    assert_eq!(after["AccountStatus"], json!(3));
    assert_eq!(after["Currency"], json!("EUR"));
    for unchanged in ["AccountName", "City", "DueDateDays", "Email", "CreatedAt"] {
        assert_eq!(after[unchanged], before[unchanged], "{unchanged}");
    }
    assert_ne!(after["UpdatedAt"], before["UpdatedAt"]);
}

async fn create_or_update_by_ext_id_updates_the_existing_account(app: &TestApp) {
    let id = app.create_account("E1", json!({})).await;
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 69, "extid": "E1", "AccountName": "New name"}))
        .await;
    assert_ok(&reply);
    assert_eq!(
        reply["ID"],
        json!(id),
        "an existing ExtID updates, not creates"
    );
    let (_, list) = app.get("api_code=3&entity_code=69").await;
    assert_eq!(list["TOTAL_COUNT"], json!(1));
    assert_eq!(list["DATA"][0]["AccountName"], json!("New name"));
    // Renaming the ExtID through ID, onto another account's ExtID, is a duplicate.
    app.create_account("E2", json!({})).await;
    let (status, reply) = app
        .post(json!({"api_code": 10, "entity_code": 69, "ID": id, "ExtID": "E2"}))
        .await;
    assert_method_error(status, &reply, "4", "E2");
}

async fn optional_fields_are_cleared_with_null_or_empty(app: &TestApp) {
    app.create_account(
        "O1",
        json!({"Phone": "123", "City": "Paris", "Country": "FR"}),
    )
    .await;
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 69, "ExtID": "O1", "Phone": null, "City": "", "Country": ""}))
        .await;
    assert_ok(&reply);
    let account = app.get_one("api_code=3&entity_code=69&ExtID=O1").await;
    assert!(
        account["Phone"].is_null() && account["City"].is_null() && account["Country"].is_null(),
        "{account}"
    );
}

async fn invalid_fields_are_refused_naming_the_field_and_change_nothing(app: &TestApp) {
    app.create_account("V1", json!({})).await;
    let before = app.get("api_code=3&entity_code=69").await.1;
    // (changes to a valid create body, expected code, field the description names)
    let rows: Vec<(Value, &str, &str)> = vec![
        (json!({"ExtID": null}), "1", "ExtID"),
        (json!({"AccountName": null}), "2", "AccountName"),
        (json!({"Email": "not-an-email"}), "2", "Email"),
        (json!({"Email": "x@localhost"}), "2", "Email"),
        (json!({"AccountType": 3}), "2", "AccountType"),
        (json!({"AccountType": "business"}), "2", "AccountType"),
        (json!({"AccountStatus": 0}), "2", "AccountStatus"),
        (json!({"Country": "USA"}), "2", "Country"),
        (json!({"Currency": "XYZ"}), "2", "Currency"),
        (json!({"DueDateMethod": 3}), "2", "DueDateMethod"),
        (json!({"DueDateDays": -1}), "2", "DueDateDays"),
        (json!({"InvoiceGrouping": 2}), "2", "InvoiceGrouping"),
        (json!({"TaxExempt": 2}), "2", "TaxExempt"),
        (json!({"AccountName": "x".repeat(256)}), "2", "AccountName"),
        (json!({"Address": "x".repeat(4001)}), "2", "Address"),
        (json!({"AccountName": "nul\u{0}byte"}), "2", "AccountName"),
        (json!({"AccountName": {"nested": true}}), "2", "AccountName"),
        (json!({"ID": "abc"}), "2", "ID"),
    ];
    for (change, code, field) in rows {
        let mut body = account_body("NEW-1");
        crate::helpers::merge(&mut body, change.clone());
        if change.get("ExtID").is_some_and(Value::is_null) {
            body.as_object_mut().unwrap().remove("ExtID");
        }
        let (status, reply) = app.post(body).await;
        assert_method_error(status, &reply, code, field);
    }
    // Missing required fields on create, each named.
    for field in ["AccountName", "AccountType", "AccountStatus", "Email"] {
        let mut body = account_body("NEW-2");
        body.as_object_mut().unwrap().remove(field);
        let (status, reply) = app.post(body).await;
        assert_method_error(status, &reply, "1", field);
    }
    // Unknown fields are ignored.
    let mut body = account_body("NEW-3");
    body["Favourite colour"] = json!("green");
    let (_, reply) = app.post(body).await;
    assert_ok(&reply);
    let after = app.get("api_code=3&entity_code=69").await.1;
    assert_eq!(
        after["TOTAL_COUNT"],
        json!(2),
        "only the valid create wrote anything"
    );
    assert_eq!(after["DATA"][0], before["DATA"][0]);
}

async fn list_filters_select_accounts(app: &TestApp) {
    app.create_account("F1", json!({"ExtID2": "ERP-1", "AccountStatus": 1}))
        .await;
    app.create_account("F2", json!({"ExtID2": "ERP-2", "AccountStatus": 2}))
        .await;
    app.create_account("F3", json!({"ExtID2": "ERP-2", "AccountStatus": 3}))
        .await;
    let ext_ids = |reply: &Value| -> Vec<String> {
        reply["DATA"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["ExtID"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, r) = app.get("api_code=3&entity_code=69&ExtID2=ERP-2").await;
    assert_eq!(ext_ids(&r), ["F2", "F3"]);
    assert_eq!(r["TOTAL_COUNT"], json!(2));
    let (_, r) = app.get("api_code=3&entity_code=69&AccountStatus=2").await;
    assert_eq!(ext_ids(&r), ["F2"]);
    let (_, r) = app.get("api_code=3&entity_code=69&AccountStatus=9").await;
    assert_method_error(reqwest::StatusCode::OK, &r, "2", "AccountStatus");

    let f1 = app.get_one("api_code=3&entity_code=69&ExtID=F1").await;
    let since = f1["CreatedAt"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 69, "ExtID": "F1", "AccountName": "Touched"}))
        .await;
    assert_ok(&reply);
    let touched = app.get_one("api_code=3&entity_code=69&ExtID=F1").await["UpdatedAt"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, r) = app
        .get(&format!("api_code=3&entity_code=69&UpdatedSince={touched}"))
        .await;
    assert_eq!(ext_ids(&r), ["F1"]);
    let (_, r) = app
        .get(&format!("api_code=3&entity_code=69&UpdatedSince={since}"))
        .await;
    assert_eq!(r["TOTAL_COUNT"], json!(3));
    let (_, r) = app
        .get("api_code=3&entity_code=69&UpdatedSince=2999-01-01")
        .await;
    assert_eq!(r["TOTAL_COUNT"], json!(0));
    let (status, r) = app
        .get("api_code=3&entity_code=69&UpdatedSince=yesterday")
        .await;
    assert_method_error(status, &r, "2", "UpdatedSince");
}

async fn deleting_an_account_hides_it_cancels_its_plans_and_retires_its_ext_id(app: &TestApp) {
    let id = app.create_account("D1", json!({})).await;
    app.create_plan("D1-P1", "D1", json!({"StartDate": "2024-01-01"}))
        .await;
    let (_, reply) = app
        .post(json!({"api_code": 11, "entity_code": 69, "ExtID": "D1"}))
        .await;
    assert_ok(&reply);
    assert_eq!(reply["ID"], json!(id));

    let (_, list) = app.get("api_code=3&entity_code=69").await;
    assert_eq!(
        list["TOTAL_COUNT"],
        json!(0),
        "deleted accounts are hidden from lists"
    );
    let (status, reply) = app.get("api_code=3&entity_code=69&ExtID=D1").await;
    assert_method_error(status, &reply, "3", "D1");
    let deleted = app
        .get_one("api_code=3&entity_code=69&ExtID=D1&IncludeDeleted=1")
        .await;
    assert_eq!(deleted["Deleted"], json!(1));
    assert!(deleted["DeletedAt"].is_string());

    let plan = app.get_one("api_code=3&entity_code=71&ExtID=D1-P1").await;
    assert_eq!(
        plan["PlanStatus"],
        json!(2),
        "the account's plans are cancelled"
    );

    let (status, reply) = app.post(account_body("D1")).await;
    assert_method_error(status, &reply, "4", "never reused");
    let (status, reply) = app
        .post(json!({"api_code": 11, "entity_code": 69, "ID": id}))
        .await;
    assert_method_error(status, &reply, "5", "already deleted");
    let (status, reply) = app.post(json!({"api_code": 11, "entity_code": 69})).await;
    assert_method_error(status, &reply, "1", "ID or ExtID");
}

async fn naming_an_unknown_account_is_error_3(app: &TestApp) {
    let (status, reply) = app.get("api_code=3&entity_code=69&ID=987654").await;
    assert_method_error(status, &reply, "3", "987654");
    let (status, reply) = app
        .post(json!({"api_code": 10, "entity_code": 69, "ID": 987654, "AccountName": "x"}))
        .await;
    assert_method_error(status, &reply, "3", "ID");
    let (status, reply) = app
        .post(json!({"api_code": 11, "entity_code": 69, "ExtID": "ghost"}))
        .await;
    assert_method_error(status, &reply, "3", "ghost");
}

async fn concurrent_upserts_of_one_ext_id_make_one_account(app: &TestApp) {
    let mut tasks = Vec::new();
    for n in 0..20 {
        let client = app.client.clone();
        let url = app.endpoint();
        let cred = app.cred.clone();
        let mut body = account_body("RACE");
        body["AccountName"] = json!(format!("Racer {n}"));
        tasks.push(tokio::spawn(async move {
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
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for task in tasks {
        let reply = task.await.unwrap();
        assert_ok(&reply);
        ids.insert(reply["ID"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "every upsert names the same account: {ids:?}");
    let (_, list) = app.get("api_code=3&entity_code=69&IncludeDeleted=1").await;
    assert_eq!(list["TOTAL_COUNT"], json!(1));
}
