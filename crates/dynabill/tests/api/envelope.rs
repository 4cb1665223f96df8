//! The envelope and the error tables: authentication, codes, HTTP statuses.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Cred, TestApp, assert_api_error, assert_method_error, assert_ok};
use crate::on_both_backends;

on_both_backends!(
    every_authentication_failure_is_the_same_401,
    missing_codes_answer_error_0_with_dealhubs_description,
    codes_are_read_from_query_or_body_in_any_case_as_numbers_or_strings,
    malformed_or_conflicting_codes_are_error_2,
    pairs_outside_the_contract_and_pairs_not_built_yet_are_error_6,
    the_wrong_http_method_is_405,
    unknown_paths_are_404_with_the_envelope,
    unreadable_bodies_are_400,
    bodies_over_one_mebibyte_are_413,
    non_json_content_types_are_415_and_a_missing_one_reads_as_json,
    a_closed_database_answers_503,
    health_check_answers_ok,
);

async fn every_authentication_failure_is_the_same_401(app: &TestApp) {
    let good = app.cred.clone();
    let other_tenant = app.new_tenant("other").await;
    let cases = [
        Cred {
            token: "dbt_wrong".into(),
            ..good.clone()
        },
        Cred {
            user: "nobody".into(),
            ..good.clone()
        },
        Cred {
            app_key: "dbk_unknown".into(),
            ..good.clone()
        },
        // A real token of another tenant does not open this one.
        Cred {
            token: other_tenant.token.clone(),
            ..good.clone()
        },
        Cred {
            token: String::new(),
            ..good.clone()
        },
    ];
    let mut bodies = Vec::new();
    for cred in &cases {
        let (status, reply) = app.get_as(cred, "api_code=3&entity_code=69").await;
        assert_api_error(status, &reply, 401);
        bodies.push(reply);
    }
    // No headers at all.
    let bare = reqwest::Client::new()
        .get(format!("{}?api_code=3&entity_code=69", app.endpoint()))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    let bare: serde_json::Value = bare.json().await.unwrap();
    bodies.push(bare);
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every 401 must look the same: {bodies:?}"
    );
    // And a good credential works.
    let (_, reply) = app.get_as(&good, "api_code=3&entity_code=69").await;
    assert_ok(&reply);
}

async fn missing_codes_answer_error_0_with_dealhubs_description(app: &TestApp) {
    for query in ["api_code=3", "entity_code=69", ""] {
        let (status, reply) = app.get(query).await;
        assert_method_error(status, &reply, "0", "API_CODE & ENTITY_CODE Must Get Value");
        assert_eq!(
            reply["METHOD_ERROR_DESCRIPTION"],
            json!("API_CODE & ENTITY_CODE Must Get Value")
        );
    }
    let (status, reply) = app.post(json!({"entity_code": 69, "ExtID": "X"})).await;
    assert_method_error(status, &reply, "0", "Must Get Value");
}

async fn codes_are_read_from_query_or_body_in_any_case_as_numbers_or_strings(app: &TestApp) {
    for query in [
        "API_CODE=3&ENTITY_CODE=69",
        "Api_Code=3&entity_CODE=69",
        "api_code=3&entity_code=069",
    ] {
        let (_, reply) = app.get(query).await;
        assert_ok(&reply);
    }
    let base = json!({"ExtID": "C1", "AccountName": "C", "AccountType": "1", "AccountStatus": 1, "Email": "c@example.com"});
    let mut body = base.clone();
    body["API_CODE"] = json!("10");
    body["Entity_Code"] = json!(69);
    let (_, reply) = app.post(body).await;
    assert_ok(&reply);
    // Codes in the query string of a POST.
    let (_, reply) = app
        .send(|c, url| {
            c.post(format!("{url}?api_code=10&entity_code=69"))
                .json(&json!({"ExtID": "C1", "AccountName": "Renamed"}))
        })
        .await;
    assert_ok(&reply);
    assert_eq!(
        app.get_one("api_code=3&entity_code=69&extid=C1").await["AccountName"],
        json!("Renamed")
    );
}

async fn malformed_or_conflicting_codes_are_error_2(app: &TestApp) {
    let (status, reply) = app.get("api_code=ten&entity_code=69").await;
    assert_method_error(status, &reply, "2", "api_code");
    let (status, reply) = app.post(json!({"api_code": 3.5, "entity_code": 69})).await;
    assert_method_error(status, &reply, "2", "api_code");
    let (status, reply) = app
        .send(|c, url| {
            c.post(format!("{url}?api_code=10&entity_code=69"))
                .json(&json!({"api_code": 11, "entity_code": 69}))
        })
        .await;
    assert_method_error(status, &reply, "2", "api_code");
}

async fn pairs_outside_the_contract_and_pairs_not_built_yet_are_error_6(app: &TestApp) {
    let (status, reply) = app.get("api_code=4&entity_code=69").await;
    assert_method_error(status, &reply, "6", "not supported");
    let (status, reply) = app.post(json!({"api_code": 13, "entity_code": 69})).await;
    assert_method_error(status, &reply, "6", "not supported");
    let (status, reply) = app.get("api_code=3&entity_code=999").await;
    assert_method_error(status, &reply, "6", "not supported");
}

async fn the_wrong_http_method_is_405(app: &TestApp) {
    let (status, reply) = app.get("api_code=10&entity_code=69").await;
    assert_api_error(status, &reply, 405);
    let (status, reply) = app.post(json!({"api_code": 3, "entity_code": 69})).await;
    assert_api_error(status, &reply, 405);
    let (status, reply) = app
        .send(|c, url| c.put(url).json(&json!({"api_code": 10, "entity_code": 69})))
        .await;
    assert_api_error(status, &reply, 405);
    let (status, reply) = app.send(|c, url| c.delete(url)).await;
    assert_api_error(status, &reply, 405);
    let traced = app
        .client
        .request(
            reqwest::Method::TRACE,
            format!("{}/api/dynamicapi", app.base),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(traced.status(), 405);
    assert_eq!(traced.headers()["allow"], "GET, POST", "RFC 9110 §15.5.6");
}

async fn unknown_paths_are_404_with_the_envelope(app: &TestApp) {
    let (status, reply) = app
        .send(|c, _| c.get(format!("{}/api/other", app.base)))
        .await;
    assert_api_error(status, &reply, 404);
}

async fn unreadable_bodies_are_400(app: &TestApp) {
    for body in [
        "{not json",
        "[1,2,3]",
        "\"a string\"",
        "{\"api_code\": 10,}",
    ] {
        let (status, reply) = app
            .send(|c, url| {
                c.post(url)
                    .header("Content-Type", "application/json")
                    .body(body.to_owned())
            })
            .await;
        assert_api_error(status, &reply, 400);
    }
    let (status, reply) = app.get("api_code=3&entity_code=69&Cursor=%ZZ").await;
    assert_api_error(status, &reply, 400);
}

async fn bodies_over_one_mebibyte_are_413(app: &TestApp) {
    let big = format!(
        "{{\"api_code\":10,\"entity_code\":69,\"Notes\":\"{}\"}}",
        "x".repeat(1 << 20)
    );
    let (status, reply) = app
        .send(|c, url| {
            c.post(url)
                .header("Content-Type", "application/json")
                .body(big)
        })
        .await;
    assert_api_error(status, &reply, 413);
    let (_, list) = app.get("api_code=3&entity_code=69").await;
    assert_eq!(list["TOTAL_COUNT"], json!(0));
}

async fn non_json_content_types_are_415_and_a_missing_one_reads_as_json(app: &TestApp) {
    let body = r#"{"api_code":10,"entity_code":69,"ExtID":"T1","AccountName":"T","AccountType":2,"AccountStatus":1,"Email":"t@example.com"}"#;
    let (status, reply) = app
        .send(|c, url| c.post(url).header("Content-Type", "text/plain").body(body))
        .await;
    assert_api_error(status, &reply, 415);
    let (status, reply) = app.send(|c, url| c.post(url).body(body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_ok(&reply);
    let (_, reply) = app
        .send(|c, url| {
            c.post(url)
                .header("Content-Type", "application/json; charset=utf-8")
                .body(body)
        })
        .await;
    assert_ok(&reply);
}

async fn a_closed_database_answers_503(app: &TestApp) {
    app.app.store().close().await;
    let (status, reply) = app.get("api_code=3&entity_code=69").await;
    assert_api_error(status, &reply, 503);
    let description = reply["METHOD_ERROR_DESCRIPTION"].as_str().unwrap();
    assert!(description.contains("request ID"), "{description}");
    assert!(
        !description.to_lowercase().contains("pool"),
        "no internals leak: {description}"
    );
}

async fn health_check_answers_ok(app: &TestApp) {
    let response = reqwest::get(format!("{}/healthz", app.base)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

mod rate_limit {
    use super::*;
    use crate::helpers::{Backend, spawn_with};

    /// A tenant over its rate gets 429; another tenant is unaffected; the bucket refills.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tenant_over_its_rate_limit_gets_429_and_others_do_not() {
        let options = dynabill_http::HttpOptions {
            rate_limit: Some(dynabill_http::RateLimit {
                per_second: 5.0,
                burst: 2.0,
            }),
            ..dynabill_http::HttpOptions::default()
        };
        let app = spawn_with(Backend::Sqlite, options).await.unwrap();
        for _ in 0..2 {
            let (_, reply) = app.get("api_code=3&entity_code=69").await;
            assert_ok(&reply);
        }
        let (status, reply) = app.get("api_code=3&entity_code=69").await;
        assert_api_error(status, &reply, 429);
        let other = app.new_tenant("other").await;
        let (_, reply) = app.get_as(&other, "api_code=3&entity_code=69").await;
        assert_ok(&reply);
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let (_, reply) = app.get("api_code=3&entity_code=69").await;
        assert_ok(&reply);
        app.stop().await;
    }
}
