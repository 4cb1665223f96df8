//! `/v1/events`: the event log, written in the transaction of each change.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use super::assert_problem;
use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    account_changes_are_logged_in_order_with_what_changed,
    a_refused_change_logs_nothing,
    changes_through_the_dynamic_door_are_logged_too,
    events_filter_and_page_by_sequence,
    events_are_the_tenants_own,
    a_reader_following_the_log_while_writers_write_misses_nothing,
);

async fn create(app: &TestApp, ext_id: &str) -> i64 {
    let body = json!({
        "ext_id": ext_id, "account_name": "Acme Corp", "account_type": 1,
        "account_status": 1, "email": "billing@acme.example", "currency": "USD",
    });
    let (status, _, created) = app.rest("POST", "/v1/accounts", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_i64().unwrap()
}

async fn events(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, _, page) = app.rest("GET", &format!("/v1/events{query}"), None).await;
    assert_eq!(status, 200, "{page}");
    page["data"].as_array().unwrap().clone()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

async fn account_changes_are_logged_in_order_with_what_changed(app: &TestApp) {
    let id = create(app, "E-1").await;
    let path = format!("/v1/accounts/{id}");
    let (status, _, _) = app
        .rest(
            "PATCH",
            &path,
            Some(json!({"account_name": "Acme Inc", "phone": "+1 555"})),
        )
        .await;
    assert_eq!(status, 200);
    // A change that changes nothing is no event.
    let (status, _, _) = app
        .rest("PATCH", &path, Some(json!({"account_name": "Acme Inc"})))
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = app.rest("DELETE", &path, None).await;
    assert_eq!(status, 204);

    let log = events(app, "").await;
    assert_eq!(
        types(&log),
        ["account.created", "account.updated", "account.deleted"],
        "{log:#?}"
    );
    let sequences: Vec<i64> = log
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(sequences, [1, 2, 3]);
    for e in &log {
        assert!(e["id"].as_str().unwrap().starts_with("evt_"), "{e}");
        assert_eq!(e["object_type"], "account");
        assert_eq!(e["object_id"], id);
        assert_eq!(e["object_ext_id"], "E-1");
    }
    let (created, updated, deleted) = (&log[0], &log[1], &log[2]);
    assert_eq!(created["data"]["previous"], Value::Null);
    assert_eq!(created["data"]["object"]["account_name"], "Acme Corp");
    assert_eq!(created["data"]["object"]["credit_balance"], "0.00");
    assert_eq!(created["object_version"], 1);
    assert_eq!(
        updated["data"]["previous"],
        json!({"account_name": "Acme Corp", "phone": null, "updated_at": created["data"]["object"]["updated_at"]})
    );
    assert_eq!(updated["data"]["object"]["account_name"], "Acme Inc");
    assert_eq!(updated["object_version"], 2);
    assert_eq!(deleted["data"]["object"]["deleted"], true);
    assert_eq!(deleted["data"]["previous"]["deleted"], false);
    // The object is the record as its own GET showed it then.
    let (_, _, now) = app
        .rest("GET", &format!("{path}?include_deleted=true"), None)
        .await;
    assert_eq!(deleted["data"]["object"], now);
    assert_eq!(deleted["occurred_at"], now["deleted_at"]);

    // One event by its ID.
    let event_id = updated["id"].as_str().unwrap();
    let (status, _, one) = app
        .rest("GET", &format!("/v1/events/{event_id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(&one, updated);
    let missing = app.rest("GET", "/v1/events/evt_nope", None).await;
    assert_problem(&missing, 404, "not_found", None);
}

async fn a_refused_change_logs_nothing(app: &TestApp) {
    create(app, "R-1").await;
    let other = create(app, "R-2").await;
    // The ExtID is taken: the update is refused and rolled back, and so is its event.
    let (status, _, body) = app
        .rest(
            "PATCH",
            &format!("/v1/accounts/{other}"),
            Some(json!({"ext_id": "R-1"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, _, body) = app
        .rest(
            "POST",
            "/v1/accounts",
            Some(
                json!({"ext_id": "R-1", "account_name": "Again", "account_type": 1,
                "account_status": 1, "email": "x@acme.example"}),
            ),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let log = events(app, "").await;
    assert_eq!(types(&log), ["account.created", "account.created"]);
    assert_eq!(app.query_count("SELECT COUNT(*) FROM events").await, 2);
    // The next change takes the next number: no gap where the refusals were.
    let (status, _, _) = app
        .rest(
            "PATCH",
            &format!("/v1/accounts/{other}"),
            Some(json!({"account_status": 3})),
        )
        .await;
    assert_eq!(status, 200);
    let log = events(app, "").await;
    assert_eq!(log[2]["sequence"], 3);
    assert_eq!(log[2]["data"]["previous"]["account_status"], 1);
}

async fn changes_through_the_dynamic_door_are_logged_too(app: &TestApp) {
    app.create_account("D-1", json!({})).await;
    let log = events(app, "?type=account.created").await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["object_ext_id"], "D-1");
    let (_, _, account) = app.rest("GET", "/v1/accounts/by-ext-id/D-1", None).await;
    assert_eq!(log[0]["data"]["object"], account);
}

async fn events_filter_and_page_by_sequence(app: &TestApp) {
    let first = create(app, "P-1").await;
    create(app, "P-2").await;
    let (status, _, _) = app
        .rest(
            "PATCH",
            &format!("/v1/accounts/{first}"),
            Some(json!({"account_status": 2})),
        )
        .await;
    assert_eq!(status, 200);
    create(app, "P-3").await;

    assert_eq!(
        types(&events(app, "?type=account.updated").await),
        ["account.updated"]
    );
    assert_eq!(events(app, "?type=account.*").await.len(), 4);
    assert_eq!(events(app, "?type=plan.*").await.len(), 0);
    let of_first = events(app, &format!("?object_type=account&object_id={first}")).await;
    assert_eq!(types(&of_first), ["account.created", "account.updated"]);
    let after = events(app, "?after_sequence=2").await;
    assert_eq!(
        after
            .iter()
            .map(|e| e["sequence"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [3, 4]
    );
    assert_eq!(events(app, "?occurred_from=2999-01-01").await.len(), 0);
    assert_eq!(events(app, "?occurred_before=2999-01-01").await.len(), 4);

    // Pages of two, by cursor, with the count when asked.
    let (_, _, page) = app
        .rest("GET", "/v1/events?limit=2&include=total_count", None)
        .await;
    assert_eq!(page["total_count"], 4);
    assert_eq!(page["has_more"], true);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, _, next) = app
        .rest("GET", &format!("/v1/events?limit=2&cursor={cursor}"), None)
        .await;
    assert_eq!(
        next["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["sequence"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [3, 4]
    );
    assert_eq!(next["has_more"], false);

    let by_id = events(app, &format!("?object_id={first}")).await;
    assert_eq!(by_id.len(), 2);
    let bad = app
        .rest("GET", "/v1/events?object_type=Account", None)
        .await;
    assert_problem(&bad, 422, "invalid_field", Some("object_type"));
    let bad = app.rest("GET", "/v1/events?type=Account", None).await;
    assert_problem(&bad, 422, "invalid_field", Some("type"));
}

async fn events_are_the_tenants_own(app: &TestApp) {
    create(app, "T-1").await;
    let other = app.new_tenant("other").await;
    let (status, _, page) = app
        .rest_as(&other, "GET", "/v1/events?include=total_count", None, &[])
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["total_count"], 0);
    let mine = events(app, "").await;
    let id = mine[0]["id"].as_str().unwrap();
    let reply = app
        .rest_as(&other, "GET", &format!("/v1/events/{id}"), None, &[])
        .await;
    assert_problem(&reply, 404, "not_found", None);
    // The other tenant's numbering is its own, from 1.
    app.create_account_as(&other, "T-1", json!({})).await;
    let (_, _, theirs) = app.rest_as(&other, "GET", "/v1/events", None, &[]).await;
    assert_eq!(theirs["data"][0]["sequence"], 1);
}

/// Eight writers create accounts at once while a reader follows the log with
/// `after_sequence`, as a receiver reconciling would: the reader sees every
/// event exactly once, numbered 1..N without a gap, and never a number below
/// one it has seen.
async fn a_reader_following_the_log_while_writers_write_misses_nothing(app: &TestApp) {
    const WRITERS: usize = 8;
    const EACH: usize = 15;
    let writing = AtomicUsize::new(WRITERS);
    let writers = futures_util::future::join_all((0..WRITERS).map(|w| {
        let writing = &writing;
        async move {
            for n in 0..EACH {
                create(app, &format!("W{w}-{n}")).await;
            }
            writing.fetch_sub(1, Ordering::SeqCst);
        }
    }));
    let reader = async {
        let mut seen: Vec<Value> = Vec::new();
        loop {
            let done = writing.load(Ordering::SeqCst) == 0;
            let after = seen.last().map_or(0, |e| e["sequence"].as_i64().unwrap());
            let page = events(app, &format!("?after_sequence={after}&limit=7")).await;
            if page.is_empty() && done {
                return seen;
            }
            seen.extend(page);
        }
    };
    let ((), seen) = tokio::join!(
        async {
            writers.await;
        },
        reader
    );
    let sequences: Vec<i64> = seen
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    let expected: Vec<i64> = (1..=i64::try_from(WRITERS * EACH).unwrap()).collect();
    assert_eq!(sequences, expected, "every number once, in order, no gap");
    let mut ext_ids: Vec<&str> = seen
        .iter()
        .map(|e| e["object_ext_id"].as_str().unwrap())
        .collect();
    ext_ids.sort_unstable();
    ext_ids.dedup();
    assert_eq!(ext_ids.len(), WRITERS * EACH, "every account's event");
}
