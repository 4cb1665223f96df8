//! `Idempotency-Key`: retries replay the stored response and change nothing.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_method_error, assert_ok};
use crate::on_both_backends;

on_both_backends!(
    a_retry_with_the_same_key_and_body_replays_and_changes_nothing,
    keys_are_per_tenant,
    a_request_whose_client_went_away_finishes_and_its_retry_replays_it
);

async fn a_retry_with_the_same_key_and_body_replays_and_changes_nothing(app: &TestApp) {
    let cred = app.cred.clone();
    let body = json!({"api_code": 10, "entity_code": 69, "ExtID": "IDEM", "AccountName": "First",
        "AccountType": 1, "AccountStatus": 1, "Email": "i@example.com"});
    let (_, first) = app.post_idempotent(&cred, "key-1", body.clone()).await;
    assert_ok(&first);
    // Someone changes the account meanwhile; the retry must not undo that.
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 69, "ExtID": "IDEM", "AccountName": "Changed"}))
        .await;
    assert_ok(&reply);
    let before = app.get_one("api_code=3&entity_code=69&ExtID=IDEM").await;
    let (_, retry) = app.post_idempotent(&cred, "key-1", body.clone()).await;
    assert_eq!(retry, first, "the stored response is replayed");
    assert_eq!(
        app.get_one("api_code=3&entity_code=69&ExtID=IDEM").await,
        before,
        "and nothing changed"
    );

    // Same key, another body.
    let mut other = body.clone();
    other["AccountName"] = json!("Other");
    let (status, reply) = app.post_idempotent(&cred, "key-1", other).await;
    assert_method_error(status, &reply, "7", "Idempotency-Key");

    // A failed request is replayed as it failed, even once the cause is gone.
    let bad = json!({"api_code": 14, "entity_code": 71, "ExtID": "LATER"});
    let (status, reply) = app.post_idempotent(&cred, "key-2", bad.clone()).await;
    assert_method_error(status, &reply, "3", "LATER");
    app.create_plan("LATER", "IDEM", json!({})).await;
    let (status, replay) = app.post_idempotent(&cred, "key-2", bad).await;
    assert_method_error(status, &replay, "3", "LATER");
    assert_eq!(
        app.get_one("api_code=3&entity_code=71&ExtID=LATER").await["PlanStatus"],
        json!(1)
    );

    let (status, reply) = app.post_idempotent(&cred, &"k".repeat(300), body).await;
    assert_method_error(status, &reply, "2", "Idempotency-Key");
}

async fn keys_are_per_tenant(app: &TestApp) {
    let b = app.new_tenant("second").await;
    let body = json!({"api_code": 10, "entity_code": 69, "ExtID": "K", "AccountName": "K",
        "AccountType": 2, "AccountStatus": 1, "Email": "k@example.com"});
    let (_, a) = app
        .post_idempotent(&app.cred, "same-key", body.clone())
        .await;
    let (_, b_reply) = app.post_idempotent(&b, "same-key", body).await;
    assert_ok(&a);
    assert_ok(&b_reply);
    assert_ne!(a["ID"], b_reply["ID"], "each tenant's key is its own");
}

/// A client gives up waiting (a timeout, a dropped connection) while its create
/// waits for the database: the create still finishes, once, and a retry with the
/// same key gets its answer, on the dynamic door and on the REST face.
async fn a_request_whose_client_went_away_finishes_and_its_retry_replays_it(app: &TestApp) {
    let body = json!({"api_code": 10, "entity_code": 69, "ExtID": "GONE", "AccountName": "Gone",
        "AccountType": 1, "AccountStatus": 1, "Email": "g@example.com"});
    let rest_body = json!({"ext_id": "GONE-REST", "account_name": "Gone", "account_type": 1,
        "account_status": 1, "email": "r@example.com"});
    let impatient = |request: reqwest::RequestBuilder| {
        request
            .header("AppKey", &app.cred.app_key)
            .header("UserName", &app.cred.user)
            .header("AccessToken", &app.cred.token)
            .timeout(Duration::from_millis(300))
    };

    let hold = app.hold_writes().await;
    let gave_up = impatient(app.client.post(app.endpoint()))
        .header("Idempotency-Key", "gone-1")
        .json(&body)
        .send()
        .await;
    assert!(gave_up.is_err(), "the create waits for the held database");
    let gave_up = impatient(app.client.post(format!("{}/v1/accounts", app.base)))
        .header("Idempotency-Key", "gone-2")
        .json(&rest_body)
        .send()
        .await;
    assert!(gave_up.is_err(), "the REST create waits too");
    // The server notices the closed connections while the writes wait.
    tokio::time::sleep(Duration::from_millis(300)).await;
    hold.release().await;

    let replayed =
        retry_until_answered(|| app.post_idempotent(&app.cred, "gone-1", body.clone())).await;
    assert_ok(&replayed);
    let account = app.get_one("api_code=3&entity_code=69&ExtID=GONE").await;
    assert_eq!(
        replayed["ID"], account["ID"],
        "the retry answers the first create"
    );

    let (status, _, created) = retry_until_created(app, &rest_body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["ext_id"], json!("GONE-REST"));
    for ext_id in ["GONE", "GONE-REST"] {
        assert_eq!(
            app.query_count(&format!(
                "SELECT COUNT(*) FROM accounts WHERE ext_id = '{ext_id}'"
            ))
            .await,
            1,
            "{ext_id} was created once"
        );
    }
}

/// Retries a dynamic-door request while it answers "7" (still in flight).
async fn retry_until_answered<F: Future<Output = (StatusCode, Value)>>(
    send: impl Fn() -> F,
) -> Value {
    for _ in 0..100 {
        let (_, reply) = send().await;
        if reply["METHOD_ERROR"] != json!("7") {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the key stayed in flight after its client went away");
}

async fn retry_until_created(
    app: &TestApp,
    body: &Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    for _ in 0..100 {
        let answer = app
            .rest_as(
                &app.cred,
                "POST",
                "/v1/accounts",
                Some(body.clone()),
                &[("Idempotency-Key", "gone-2")],
            )
            .await;
        if answer.0 != StatusCode::CONFLICT {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the REST key stayed in flight after its client went away");
}
