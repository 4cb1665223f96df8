//! Keyset paging: `PageSize`, `Cursor`, `TOTAL_COUNT`, `NEXT_CURSOR`.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_method_error, assert_ok};
use crate::on_both_backends;

on_both_backends!(
    pages_walk_every_record_once_in_creation_order,
    page_sizes_and_cursors_are_validated
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
        let expected_total = if pages == 0 { 25 } else { 26 };
        assert_eq!(
            reply["TOTAL_COUNT"],
            json!(expected_total),
            "the total counts every matching record"
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
