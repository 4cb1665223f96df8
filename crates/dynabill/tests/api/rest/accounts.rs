//! `/v1/accounts`.

use serde_json::{Value, json};

use super::assert_problem;
use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    an_account_is_created_read_changed_and_deleted,
    account_problems_name_the_field_and_change_nothing,
    accounts_page_with_cursors_and_count_only_when_asked,
    an_idempotent_create_runs_once,
    another_tenant_gets_404_for_every_account_and_changes_nothing,
    an_account_reads_the_same_through_both_doors,
    accounts_take_exactly_what_their_schema_says,
);

fn acme(ext_id: &str) -> Value {
    json!({
        "ext_id": ext_id, "account_name": "Acme Corp", "account_type": 1,
        "account_status": 1, "email": "billing@acme.example", "currency": "EUR",
        "country": "DE", "tax_exempt": true, "due_date_days": 45,
    })
}

async fn an_account_is_created_read_changed_and_deleted(app: &TestApp) {
    let (status, headers, created) = app.rest("POST", "/v1/accounts", Some(acme("A-1"))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("an id");
    assert_eq!(
        headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/v1/accounts/{id}").as_str())
    );
    assert_eq!(created["ext_id"], "A-1");
    assert_eq!(created["currency"], "EUR");
    assert_eq!(created["credit_balance"], "0.00");
    assert_eq!(created["tax_exempt"], true);
    assert_eq!(created["due_date_days"], 45);
    assert_eq!(created["phone"], Value::Null);

    let (status, _, read) = app.rest("GET", &format!("/v1/accounts/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(read, created);
    let (status, _, by_ext) = app.rest("GET", "/v1/accounts/by-ext-id/A-1", None).await;
    assert_eq!(status, 200);
    assert_eq!(by_ext, created);

    let (status, _, changed) = app
        .rest(
            "PATCH",
            &format!("/v1/accounts/{id}"),
            Some(json!({"phone": "+49 30 1234", "account_status": 3})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["phone"], "+49 30 1234");
    assert_eq!(changed["account_status"], 3);
    assert_eq!(changed["account_name"], "Acme Corp");
    let (_, _, cleared) = app
        .rest(
            "PATCH",
            &format!("/v1/accounts/{id}"),
            Some(json!({"phone": null})),
        )
        .await;
    assert_eq!(cleared["phone"], Value::Null);

    let (status, _, body) = app
        .rest("DELETE", &format!("/v1/accounts/{id}"), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(body, Value::Null);
    let gone = app.rest("GET", &format!("/v1/accounts/{id}"), None).await;
    assert_problem(&gone, 404, "not_found", None);
    let (status, _, deleted) = app
        .rest(
            "GET",
            &format!("/v1/accounts/{id}?include_deleted=true"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(deleted["deleted"], true);
}

async fn account_problems_name_the_field_and_change_nothing(app: &TestApp) {
    let mut missing = acme("B-1");
    missing.as_object_mut().unwrap().remove("email");
    let reply = app.rest("POST", "/v1/accounts", Some(missing)).await;
    assert_problem(&reply, 422, "missing_field", Some("email"));
    assert_eq!(reply.2["method_error"], "1");

    let mut bad = acme("B-1");
    bad["account_type"] = json!(7);
    let reply = app.rest("POST", "/v1/accounts", Some(bad)).await;
    assert_problem(&reply, 422, "invalid_field", Some("account_type"));
    assert_eq!(reply.2["method_error"], "2");

    let mut wrong_type = acme("B-1");
    wrong_type["account_type"] = json!("business");
    let reply = app.rest("POST", "/v1/accounts", Some(wrong_type)).await;
    assert_problem(&reply, 422, "invalid_field", Some("account_type"));

    let mut unknown = acme("B-1");
    unknown["AccountName"] = json!("the dynamic door's spelling");
    let reply = app.rest("POST", "/v1/accounts", Some(unknown)).await;
    assert_problem(&reply, 422, "invalid_field", Some("AccountName"));

    let (_, _, listed) = app
        .rest("GET", "/v1/accounts?include=total_count", None)
        .await;
    assert_eq!(listed["total_count"], 0, "nothing was written: {listed}");

    let (status, _, _) = app.rest("POST", "/v1/accounts", Some(acme("B-1"))).await;
    assert_eq!(status, 201);
    let reply = app.rest("POST", "/v1/accounts", Some(acme("B-1"))).await;
    assert_problem(&reply, 409, "duplicate", None);

    let reply = app.rest("GET", "/v1/accounts/999999", None).await;
    assert_problem(&reply, 404, "not_found", None);
    let reply = app.rest("GET", "/v1/accounts/not-a-number", None).await;
    assert_problem(&reply, 404, "not_found", None);
    let reply = app.rest("GET", "/v1/accounts?account_status=9", None).await;
    assert_problem(&reply, 422, "invalid_field", Some("account_status"));
    let reply = app.rest("GET", "/v1/accounts?limit=0", None).await;
    assert_problem(&reply, 422, "invalid_field", Some("limit"));
    let reply = app.rest("GET", "/v1/accounts?colour=blue", None).await;
    assert_problem(&reply, 422, "invalid_field", Some("colour"));
    let reply = app.rest("GET", "/v1/nothing-here", None).await;
    assert_problem(&reply, 404, "not_found", None);

    let text = app
        .client
        .post(format!("{}/v1/accounts", app.base))
        .header("AppKey", &app.cred.app_key)
        .header("UserName", &app.cred.user)
        .header("AccessToken", &app.cred.token)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 415);

    let unauthenticated = app
        .client
        .get(format!("{}/v1/accounts", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(
        unauthenticated.headers()["content-type"],
        "application/problem+json"
    );
}

async fn accounts_page_with_cursors_and_count_only_when_asked(app: &TestApp) {
    for n in 0..5 {
        let (status, _, _) = app
            .rest("POST", "/v1/accounts", Some(acme(&format!("P-{n}"))))
            .await;
        assert_eq!(status, 201);
    }
    let (_, _, first) = app.rest("GET", "/v1/accounts?limit=2", None).await;
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    assert_eq!(first["has_more"], true);
    assert!(first.get("total_count").is_none(), "{first}");
    let mut seen: Vec<String> = Vec::new();
    let mut page = first;
    loop {
        for account in page["data"].as_array().unwrap() {
            seen.push(account["ext_id"].as_str().unwrap().to_owned());
        }
        if page["has_more"] == false {
            assert_eq!(page["next_cursor"], Value::Null);
            break;
        }
        let cursor = page["next_cursor"].as_str().unwrap().to_owned();
        let (status, _, next) = app
            .rest(
                "GET",
                &format!("/v1/accounts?limit=2&include=total_count&cursor={cursor}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{next}");
        assert_eq!(next["total_count"], 5);
        page = next;
    }
    assert_eq!(seen, ["P-0", "P-1", "P-2", "P-3", "P-4"]);
    let (_, _, filtered) = app
        .rest("GET", "/v1/accounts?ext_id=P-3&include=total_count", None)
        .await;
    assert_eq!(filtered["total_count"], 1);
    assert_eq!(filtered["data"][0]["ext_id"], "P-3");
}

async fn an_idempotent_create_runs_once(app: &TestApp) {
    let key = [("Idempotency-Key", "create-acme-1")];
    let first = app
        .rest_as(&app.cred, "POST", "/v1/accounts", Some(acme("I-1")), &key)
        .await;
    assert_eq!(first.0, 201);
    let again = app
        .rest_as(&app.cred, "POST", "/v1/accounts", Some(acme("I-1")), &key)
        .await;
    assert_eq!(again.0, 201, "the first answer again: {}", again.2);
    assert_eq!(again.2, first.2);
    assert_eq!(again.1.get("location"), first.1.get("location"));
    let other = app
        .rest_as(&app.cred, "POST", "/v1/accounts", Some(acme("I-2")), &key)
        .await;
    assert_problem(&other, 409, "idempotency_conflict", None);
    let (_, _, listed) = app
        .rest("GET", "/v1/accounts?include=total_count", None)
        .await;
    assert_eq!(listed["total_count"], 1);

    // A failure is kept too: the retry gets the same problem, and nothing is written.
    let mut bad = acme("I-3");
    bad["account_type"] = json!(9);
    let key = [("Idempotency-Key", "bad-acme")];
    let first = app
        .rest_as(&app.cred, "POST", "/v1/accounts", Some(bad.clone()), &key)
        .await;
    assert_problem(&first, 422, "invalid_field", Some("account_type"));
    let again = app
        .rest_as(&app.cred, "POST", "/v1/accounts", Some(bad), &key)
        .await;
    assert_problem(&again, 422, "invalid_field", Some("account_type"));
}

async fn another_tenant_gets_404_for_every_account_and_changes_nothing(app: &TestApp) {
    let (_, _, created) = app.rest("POST", "/v1/accounts", Some(acme("T-1"))).await;
    let id = created["id"].as_i64().unwrap();
    let other = app.new_tenant("other").await;
    for (method, path, body) in [
        ("GET", format!("/v1/accounts/{id}"), None),
        ("GET", "/v1/accounts/by-ext-id/T-1".to_owned(), None),
        (
            "PATCH",
            format!("/v1/accounts/{id}"),
            Some(json!({"account_name": "Hijacked"})),
        ),
        ("DELETE", format!("/v1/accounts/{id}"), None),
    ] {
        let reply = app.rest_as(&other, method, &path, body, &[]).await;
        assert_problem(&reply, 404, "not_found", None);
    }
    let (_, _, listed) = app
        .rest_as(&other, "GET", "/v1/accounts?include=total_count", None, &[])
        .await;
    assert_eq!(listed["total_count"], 0);
    let (_, _, mine) = app.rest("GET", &format!("/v1/accounts/{id}"), None).await;
    assert_eq!(mine, created);
}

async fn an_account_reads_the_same_through_both_doors(app: &TestApp) {
    let (_, _, rest) = app.rest("POST", "/v1/accounts", Some(acme("E-1"))).await;
    let dynamic = app.get_one("api_code=3&entity_code=69&ExtID=E-1").await;
    assert_eq!(dynamic["ID"], rest["id"].to_string());
    assert_eq!(dynamic["AccountName"], rest["account_name"]);
    assert_eq!(dynamic["Currency"], rest["currency"]);
    assert_eq!(dynamic["Country"], rest["country"]);
    assert_eq!(dynamic["TaxExempt"], json!(1));
    assert_eq!(dynamic["DueDateDays"], rest["due_date_days"]);
    assert_eq!(dynamic["CreatedAt"], rest["created_at"]);
    assert_eq!(dynamic["UpdatedAt"], rest["updated_at"]);
    assert_eq!(
        dynamic["CreditBalance"].to_string(),
        rest["credit_balance"].as_str().unwrap()
    );

    let id = app
        .create_account("E-2", json!({"Phone": "555", "Currency": "JPY"}))
        .await;
    let (_, _, read) = app.rest("GET", &format!("/v1/accounts/{id}"), None).await;
    assert_eq!(read["ext_id"], "E-2");
    assert_eq!(read["phone"], "555");
    assert_eq!(read["currency"], "JPY");
    assert_eq!(read["credit_balance"], "0");
}

/// What contract fuzzing (.ci/fuzz) found: every request the document calls
/// valid is taken, and every one it calls invalid is refused.
async fn accounts_take_exactly_what_their_schema_says(app: &TestApp) {
    // JSON Schema's `integer` is any number with no fraction: 2.0 is 2.
    let mut whole = acme("S-1");
    whole["account_type"] = json!(2.0);
    whole["due_date_days"] = json!(3e1);
    let (status, _, created) = app.rest("POST", "/v1/accounts", Some(whole)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["account_type"], 2);
    assert_eq!(created["due_date_days"], 30);
    let mut fraction = acme("S-2");
    fraction["account_type"] = json!(1.5);
    let reply = app.rest("POST", "/v1/accounts", Some(fraction)).await;
    assert_problem(&reply, 422, "invalid_field", Some("account_type"));

    for taken in [
        "include=total_count,lines",
        "updated_since=2026-01-01",
        "updated_since=2026-01-01T09:30:00.5%2B05:30",
    ] {
        let (status, _, page) = app
            .rest("GET", &format!("/v1/accounts?{taken}"), None)
            .await;
        assert_eq!(status, 200, "{taken}: {page}");
    }
    for (refused, field) in [
        ("include=", "include"),
        ("include=total_count,,lines", "include"),
        ("include=colour", "include"),
        ("cursor=", "cursor"),
        ("cursor=%00", "cursor"),
        ("cursor=a%20b", "cursor"),
        ("updated_since=", "updated_since"),
        ("updated_since=0", "updated_since"),
        ("updated_since=2026-01-01%2009:30:00Z", "updated_since"),
    ] {
        let reply = app
            .rest("GET", &format!("/v1/accounts?{refused}"), None)
            .await;
        assert_problem(&reply, 422, "invalid_field", Some(field));
    }
    // Shaped like a day, not in the calendar: the door's parser refuses it.
    let reply = app
        .rest("GET", "/v1/accounts?updated_since=2026-02-30", None)
        .await;
    assert_problem(&reply, 422, "invalid_field", Some("updated_since"));
}

mod limits {
    use serde_json::json;

    use super::{acme, assert_problem};
    use crate::helpers::{Backend, spawn, spawn_with};

    /// The REST face shares the tenant's rate limit with the dynamic door, and
    /// answers 429 as a problem.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tenant_over_its_rate_limit_gets_a_429_problem_on_either_door() {
        let options = dynabill_http::HttpOptions {
            rate_limit: Some(dynabill_http::RateLimit {
                per_second: 0.5,
                burst: 2.0,
            }),
            ..dynabill_http::HttpOptions::default()
        };
        let app = spawn_with(Backend::Sqlite, options).await.unwrap();
        let (status, _, _) = app.rest("GET", "/v1/accounts", None).await;
        assert_eq!(status, 200);
        let (_, reply) = app.get("api_code=3&entity_code=69").await;
        crate::helpers::assert_ok(&reply);
        let limited = app.rest("GET", "/v1/accounts", None).await;
        assert_problem(&limited, 429, "rate_limited", None);
        app.stop().await;
    }

    /// A body over 1 MiB is 413, and writes nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_over_one_mebibyte_is_a_413_problem() {
        let app = spawn(Backend::Sqlite).await.unwrap();
        let mut big = acme("BIG");
        big["address"] = json!("x".repeat(1 << 20));
        let reply = app.rest("POST", "/v1/accounts", Some(big)).await;
        assert_problem(&reply, 413, "payload_too_large", None);
        let (_, _, listed) = app
            .rest("GET", "/v1/accounts?include=total_count", None)
            .await;
        assert_eq!(listed["total_count"], 0);
        app.stop().await;
    }
}
