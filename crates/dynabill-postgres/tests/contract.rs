//! The storage contract, run against PostgreSQL (a fresh schema per test) when
//! `DYNABILL_TEST_POSTGRES_URL` is set.

use std::sync::Arc;

use dynabill_app::Store;
use dynabill_postgres::PgStore;
use dynabill_store_contract::{TestStore, contract_tests, fresh_postgres_schema};

async fn migrated_store() -> Option<TestStore> {
    let Some(schema) = fresh_postgres_schema().await else {
        println!("skipped: DYNABILL_TEST_POSTGRES_URL unset");
        return None;
    };
    let store = PgStore::connect(schema.url())
        .await
        .expect("connecting to PostgreSQL");
    store.migrate().await.expect("migrating PostgreSQL");
    Some(TestStore::postgres(Arc::new(store), schema))
}

contract_tests!(migrated_store);
