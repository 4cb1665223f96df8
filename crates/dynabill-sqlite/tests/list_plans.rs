//! Every list filter the dynamic door offers is served by an index on SQLite: no
//! list's count or page reads a whole table (`EXPLAIN QUERY PLAN`, on a database
//! never analyzed, as SQLite databases here are).

use dynabill_app::Store;
use dynabill_core::domain::TenantId;
use dynabill_sqlite::SqliteStore;
use dynabill_store_contract::fresh_sqlite_url;

#[tokio::test]
async fn every_list_filter_is_served_by_an_index() {
    let (_dir, url) = fresh_sqlite_url();
    let store = SqliteStore::connect(&url).await.expect("opening SQLite");
    store.migrate().await.expect("migrating SQLite");
    let plans = store
        .list_query_plans(TenantId(1))
        .await
        .expect("explaining the lists");
    assert!(
        plans.len() >= 100,
        "every list and filter, got {}",
        plans.len()
    );
    // The range filters' first read, a window of keys in key order, is among them.
    assert!(
        plans
            .iter()
            .filter(|p| p.case.ends_with("window in key order"))
            .count()
            >= 4,
        "the windows of the range filters are planned too"
    );
    let problems: Vec<String> = plans.iter().flat_map(|p| p.problems()).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
