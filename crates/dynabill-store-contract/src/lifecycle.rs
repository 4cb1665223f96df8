//! The contract for the store as a whole: migrations and health checks.

use std::sync::Arc;

use dynabill_app::Store;
use dynabill_app::model::RecordKey;

use crate::fixtures::{insert_account, tenant};

pub async fn migrating_again_keeps_the_data_and_the_store_answers_pings(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;

    store.migrate().await.expect("migrations are idempotent");
    store.ping().await.expect("a migrated store answers pings");

    assert_eq!(store.tenant_count().await.unwrap(), 1);
    let found = store.find_account(t, &RecordKey::Id(acc.id)).await.unwrap();
    assert_eq!(found, Some(acc));
}
