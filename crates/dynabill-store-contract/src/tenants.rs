//! The contract for tenants and their API users.

use std::sync::Arc;

use dynabill_app::Store;
use dynabill_app::store::{NewApiUser, StoreError, TenantRow};

use crate::fixtures::{T0, minutes, new_tenant_with_user};

fn assert_same_tenant(found: &TenantRow, created: &TenantRow) {
    assert_eq!(found.id, created.id);
    assert_eq!(found.app_key, created.app_key);
    assert_eq!(found.name, created.name);
    assert_eq!(found.currency, created.currency);
    assert_eq!(found.time_zone, created.time_zone);
    assert_eq!(found.created_at, created.created_at);
}

pub async fn a_new_tenant_is_found_by_its_app_key_together_with_its_first_user(
    store: Arc<dyn Store>,
) {
    assert_eq!(store.tenant_count().await.unwrap(), 0);
    let (new, user) = new_tenant_with_user("app-1", "api", 7);

    let created = store.create_tenant(&new, &user, T0).await.unwrap();
    assert_eq!(created.app_key, "app-1");
    assert_eq!(created.name, new.name);
    assert_eq!(created.currency, "EUR");
    assert_eq!(created.time_zone, "Europe/Berlin");
    assert_eq!(
        created.created_at, T0,
        "the timestamp keeps its microseconds"
    );

    let found = store.tenant_by_app_key("app-1").await.unwrap().unwrap();
    assert_same_tenant(&found, &created);
    let (tenant, hash) = store.credential("app-1", "api").await.unwrap().unwrap();
    assert_same_tenant(&tenant, &created);
    assert_eq!(hash, [7; 32]);
    assert_eq!(store.tenant_count().await.unwrap(), 1);
}

pub async fn an_app_key_belongs_to_one_tenant_and_a_refused_tenant_leaves_nothing_behind(
    store: Arc<dyn Store>,
) {
    let (first, user) = new_tenant_with_user("app-1", "api", 1);
    let first = store.create_tenant(&first, &user, T0).await.unwrap();
    let (second, user) = new_tenant_with_user("app-2", "api", 2);
    let second = store.create_tenant(&second, &user, T0).await.unwrap();
    assert_ne!(first.id, second.id);

    let (again, user) = new_tenant_with_user("app-1", "intruder", 3);
    let refused = store.create_tenant(&again, &user, minutes(1)).await;
    assert!(
        refused.is_err(),
        "a second tenant took app key app-1: {refused:?}"
    );

    assert_eq!(store.tenant_count().await.unwrap(), 2);
    assert_eq!(
        store
            .credential("app-1", "intruder")
            .await
            .unwrap()
            .map(|c| c.1),
        None
    );
    let found = store.tenant_by_app_key("app-1").await.unwrap().unwrap();
    assert_same_tenant(&found, &first);
}

pub async fn a_user_name_is_unique_within_its_tenant_only(store: Arc<dyn Store>) {
    let (one, user) = new_tenant_with_user("app-1", "api", 1);
    let one = store.create_tenant(&one, &user, T0).await.unwrap();
    let (two, user) = new_tenant_with_user("app-2", "api", 2);
    store
        .create_tenant(&two, &user, T0)
        .await
        .expect("another tenant may have a user of the same name");

    let duplicate = NewApiUser {
        user_name: "api".to_owned(),
        token_hash: [9; 32],
    };
    let refused = store.add_api_user(one.id, &duplicate, minutes(1)).await;
    assert!(
        matches!(refused, Err(StoreError::UserNameTaken)),
        "expected UserNameTaken, got {refused:?}"
    );
    let (_, hash) = store.credential("app-1", "api").await.unwrap().unwrap();
    assert_eq!(hash, [1; 32], "the refused user did not replace the first");

    let ops = NewApiUser {
        user_name: "ops".to_owned(),
        token_hash: [5; 32],
    };
    store.add_api_user(one.id, &ops, minutes(1)).await.unwrap();
    let (tenant, hash) = store.credential("app-1", "ops").await.unwrap().unwrap();
    assert_eq!(tenant.id, one.id);
    assert_eq!(hash, [5; 32]);
}

pub async fn a_credential_needs_the_right_app_key_and_a_user_of_that_tenant(store: Arc<dyn Store>) {
    let (one, user) = new_tenant_with_user("app-1", "api", 1);
    store.create_tenant(&one, &user, T0).await.unwrap();
    let (two, user) = new_tenant_with_user("app-2", "ops", 2);
    store.create_tenant(&two, &user, T0).await.unwrap();

    assert!(store.credential("app-1", "api").await.unwrap().is_some());
    assert!(store.credential("app-9", "api").await.unwrap().is_none());
    assert!(store.credential("app-1", "nobody").await.unwrap().is_none());
    assert!(
        store.credential("app-1", "ops").await.unwrap().is_none(),
        "a user of app-2 must not authenticate for app-1"
    );
    assert!(store.credential("app-2", "api").await.unwrap().is_none());
    assert!(store.tenant_by_app_key("app-9").await.unwrap().is_none());
}
