//! The storage contract, run against SQLite (a fresh database file per test).

use std::sync::Arc;

use dynabill_app::Store;
use dynabill_sqlite::SqliteStore;
use dynabill_store_contract::{TestStore, contract_tests, fresh_sqlite_url};

async fn migrated_store() -> Option<TestStore> {
    let (dir, url) = fresh_sqlite_url();
    let store = SqliteStore::connect(&url).await.expect("opening SQLite");
    store.migrate().await.expect("migrating SQLite");
    Some(TestStore::sqlite(Arc::new(store), dir))
}

contract_tests!(migrated_store);
