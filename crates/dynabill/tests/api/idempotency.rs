//! `Idempotency-Key`: retries replay the stored response and change nothing.

use serde_json::json;

use crate::helpers::{TestApp, assert_method_error, assert_ok};
use crate::on_both_backends;

on_both_backends!(
    a_retry_with_the_same_key_and_body_replays_and_changes_nothing,
    keys_are_per_tenant
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
