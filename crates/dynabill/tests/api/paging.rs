//! Keyset paging: `PageSize`, `Cursor`, `TOTAL_COUNT`, `NEXT_CURSOR`.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_method_error, assert_ok};
use crate::on_both_backends;

on_both_backends!(
    pages_walk_every_record_once_in_creation_order,
    page_sizes_and_cursors_are_validated,
    a_cursor_belongs_to_its_list_and_cannot_be_altered,
    a_plain_cursor_of_an_older_server_still_pages_and_counts_again,
    first_page_totals_are_exact_after_deletions_and_status_changes,
    a_range_filter_pages_in_key_order_across_sparse_keys
);

async fn pages_walk_every_record_once_in_creation_order(app: &TestApp) {
    let mut created = Vec::new();
    for n in 0..25 {
        created.push(app.create_account(&format!("P{n:02}"), json!({})).await);
    }
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("api_code=3&entity_code=69&PageSize=10&Cursor={c}"),
            None => "api_code=3&entity_code=69&PageSize=10".to_owned(),
        };
        let (_, reply) = app.get(&query).await;
        assert_ok(&reply);
        // Later pages report the total counted with the first (their cursor
        // carries it), though a record was created meanwhile.
        assert_eq!(
            reply["TOTAL_COUNT"],
            json!(25),
            "the total counts every matching record as the first page saw them"
        );
        pages += 1;
        seen.extend(
            reply["DATA"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["ID"].as_str().unwrap().to_owned()),
        );
        // A record created between pages appears later, never twice.
        if pages == 1 {
            created.push(app.create_account("LATE", json!({})).await);
        }
        match &reply["NEXT_CURSOR"] {
            Value::Null => break,
            Value::String(c) => cursor = Some(c.clone()),
            other => panic!("NEXT_CURSOR must be a string or null, got {other}"),
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "each record once, oldest first");
    let (_, reply) = app.get("api_code=3&entity_code=69&PageSize=10").await;
    assert_eq!(
        reply["TOTAL_COUNT"],
        json!(26),
        "a new first page counts again"
    );
}

/// The `NEXT_CURSOR` of the first page of `query`.
async fn first_cursor(app: &TestApp, query: &str) -> String {
    let (_, reply) = app.get(query).await;
    assert_ok(&reply);
    reply["NEXT_CURSOR"]
        .as_str()
        .expect("a next page")
        .to_owned()
}

async fn a_cursor_belongs_to_its_list_and_cannot_be_altered(app: &TestApp) {
    for n in 0..4 {
        let status = if n % 2 == 0 { 1 } else { 2 };
        app.create_account(&format!("C{n}"), json!({"AccountStatus": status}))
            .await;
    }
    let active = "api_code=3&entity_code=69&PageSize=1&AccountStatus=1";
    let cursor = first_cursor(app, active).await;
    let (_, next) = app.get(&format!("{active}&Cursor={cursor}")).await;
    assert_ok(&next);
    assert_eq!(next["TOTAL_COUNT"], json!(2));
    assert_eq!(next["NEXT_CURSOR"], Value::Null);

    // The same cursor with other filters would report another list's total.
    for other in [
        "api_code=3&entity_code=69&PageSize=1&AccountStatus=2",
        "api_code=3&entity_code=69&PageSize=1",
        "api_code=3&entity_code=71&PageSize=1&AccountStatus=1",
    ] {
        let (status, reply) = app.get(&format!("{other}&Cursor={cursor}")).await;
        assert_method_error(status, &reply, "2", "Cursor");
    }
    // Changing the page size keeps the list.
    let (_, reply) = app
        .get(&format!(
            "api_code=3&entity_code=69&PageSize=5&AccountStatus=1&Cursor={cursor}"
        ))
        .await;
    assert_ok(&reply);

    // An altered cursor: its total changed by hand, re-encoded.
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(&cursor).unwrap()).unwrap();
    let fields: Vec<&str> = text.split('.').collect();
    assert_eq!(fields.len(), 4, "k2.<after>.<total>.<check>: {text}");
    let forged = URL_SAFE_NO_PAD.encode(format!("k2.{}.999.{}", fields[1], fields[3]));
    let (status, reply) = app.get(&format!("{active}&Cursor={forged}")).await;
    assert_method_error(status, &reply, "2", "Cursor");
    // Another tenant cannot use it either.
    let other = app.new_tenant("other").await;
    let (status, reply) = app
        .get_as(&other, &format!("{active}&Cursor={cursor}"))
        .await;
    assert_method_error(status, &reply, "2", "Cursor");
}

async fn a_plain_cursor_of_an_older_server_still_pages_and_counts_again(app: &TestApp) {
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(app.create_account(&format!("K{n}"), json!({})).await);
    }
    use base64::Engine;
    let plain = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("k1.{}", ids[1]));
    let (_, reply) = app
        .get(&format!(
            "api_code=3&entity_code=69&PageSize=2&Cursor={plain}"
        ))
        .await;
    assert_ok(&reply);
    assert_eq!(reply["TOTAL_COUNT"], json!(5), "counted again");
    let listed: Vec<&str> = reply["DATA"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ID"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[3].as_str()]);
    let next = reply["NEXT_CURSOR"].as_str().expect("a next page");
    let (_, reply) = app
        .get(&format!(
            "api_code=3&entity_code=69&PageSize=2&Cursor={next}"
        ))
        .await;
    assert_ok(&reply);
    assert_eq!(reply["TOTAL_COUNT"], json!(5));
    assert_eq!(reply["DATA"][0]["ID"], json!(ids[4]));
}

async fn first_page_totals_are_exact_after_deletions_and_status_changes(app: &TestApp) {
    for n in 0..6 {
        app.create_account(&format!("T{n}"), json!({})).await;
    }
    let plan = app.create_plan("TP", "T0", json!({})).await;
    assert!(!plan.is_empty());
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 69, "ExtID": "T1", "AccountStatus": 2}))
        .await;
    assert_ok(&reply);
    for ext_id in ["T2", "T3"] {
        let (_, reply) = app
            .post(json!({"api_code": 11, "entity_code": 69, "ExtID": ext_id}))
            .await;
        assert_ok(&reply);
    }
    for (query, expected) in [
        ("", 4),
        ("&IncludeDeleted=1", 6),
        ("&AccountStatus=1", 3),
        ("&AccountStatus=2", 1),
        ("&AccountStatus=1&IncludeDeleted=1", 5),
    ] {
        let (_, reply) = app
            .get(&format!("api_code=3&entity_code=69&PageSize=1{query}"))
            .await;
        assert_ok(&reply);
        assert_eq!(reply["TOTAL_COUNT"], json!(expected), "{query}");
    }
    let (_, reply) = app.get("api_code=3&entity_code=71").await;
    assert_eq!(reply["TOTAL_COUNT"], json!(1));
}

async fn page_sizes_and_cursors_are_validated(app: &TestApp) {
    for query in [
        "PageSize=0",
        "PageSize=1001",
        "PageSize=ten",
        "Cursor=not-a-cursor",
    ] {
        let (status, reply) = app.get(&format!("api_code=3&entity_code=69&{query}")).await;
        let field = query.split('=').next().unwrap();
        assert_method_error(status, &reply, "2", field);
    }
    let (_, reply) = app.get("api_code=3&entity_code=69&PageSize=1000").await;
    assert_ok(&reply);
}

/// Makes the next account's ID at least `next` (IDs of a busy book are sparse
/// for one tenant: others take the numbers between).
async fn skip_account_ids(app: &TestApp, next: i64) {
    if app.database_url.starts_with("sqlite:") {
        // The next rowid is the largest one plus one: move the newest account up.
        app.execute_sql(&format!(
            "UPDATE accounts SET id = {} WHERE id = (SELECT MAX(id) FROM accounts)",
            next - 1
        ))
        .await;
    } else {
        app.execute_sql(&format!(
            "ALTER TABLE accounts ALTER COLUMN id RESTART WITH {next}"
        ))
        .await;
    }
}

/// A filter by a range (`UpdatedSince`) pages through its matches in key order,
/// each once, when they lie far apart in key space and the page must be made of
/// some found in key order and some read through the filter's index (the
/// store's `PageOrder::Probe`, whose window is 2,000 keys): the same records,
/// in the same order, as the unfiltered list filtered by the client.
async fn a_range_filter_pages_in_key_order_across_sparse_keys(app: &TestApp) {
    app.create_account("OLD-1", json!({})).await;
    app.create_account("OLD-2", json!({})).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut n = 0;
    for gap in [2_600, 5_300, 5_320, 9_000] {
        for _ in 0..3 {
            app.create_account(&format!("R{n:02}"), json!({})).await;
            n += 1;
        }
        skip_account_ids(app, gap).await;
    }
    app.create_account("LAST", json!({})).await;
    // Touch an old one: it matches too, at its low ID.
    let (_, reply) = app
        .post(
            json!({"api_code": 10, "entity_code": 69, "ExtID": "OLD-1", "AccountName": "Touched"}),
        )
        .await;
    assert_ok(&reply);
    let since = app.get_one("api_code=3&entity_code=69&ExtID=R00").await["UpdatedAt"]
        .as_str()
        .unwrap()
        .to_owned();

    // What the range must give: every account updated since, by ID.
    let (_, all) = app.get("api_code=3&entity_code=69&PageSize=1000").await;
    let mut expected: Vec<(i64, String)> = all["DATA"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["UpdatedAt"].as_str().unwrap() >= since.as_str())
        .map(|a| {
            (
                a["ID"].as_str().unwrap().parse().unwrap(),
                a["ExtID"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(expected.len(), 14, "{expected:?}");
    assert!(expected.last().unwrap().0 >= 9_000, "{expected:?}");

    for size in [1, 2, 3, 5, 100] {
        let mut seen: Vec<(i64, String)> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query =
                format!("api_code=3&entity_code=69&UpdatedSince={since}&PageSize={size}");
            if let Some(c) = &cursor {
                query.push_str(&format!("&Cursor={c}"));
            }
            let (_, reply) = app.get(&query).await;
            assert_ok(&reply);
            assert_eq!(reply["TOTAL_COUNT"], json!(14));
            let data = reply["DATA"].as_array().unwrap();
            assert!(data.len() <= size);
            seen.extend(data.iter().map(|a| {
                (
                    a["ID"].as_str().unwrap().parse().unwrap(),
                    a["ExtID"].as_str().unwrap().to_owned(),
                )
            }));
            match reply["NEXT_CURSOR"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, expected, "pages of {size}");
    }
}
