//! The contract for tenants and their API users.

use std::sync::Arc;

use dynabill_app::Store;
use dynabill_app::store::{NewApiUser, StoreError, StoredTenant};
use jiff::civil::{Date, date};

use crate::fixtures::{T0, minutes, new_tenant_with_user};

/// What `update_tenant_settings` and `set_test_today` write, as one comparable value.
type Settings = (String, bool, String, i64, i64, i64, Option<Date>);

fn settings(row: &StoredTenant) -> Settings {
    (
        row.time_zone.clone(),
        row.auto_post,
        row.invoice_prefix.clone(),
        row.bill_run_hour,
        row.proration_policy,
        row.rounding,
        row.test_today,
    )
}

fn assert_same_tenant(found: &StoredTenant, created: &StoredTenant) {
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

pub async fn a_new_tenant_has_the_default_settings_and_keeps_the_ones_written(
    store: Arc<dyn Store>,
) {
    let (new, user) = new_tenant_with_user("app-1", "api", 1);
    let created = store.create_tenant(&new, &user, T0).await.unwrap();
    let defaults = (
        "Europe/Berlin".to_owned(),
        true,
        "INV-".to_owned(),
        2,
        1,
        1,
        None,
    );
    assert_eq!(settings(&created), defaults, "the defaults of a new tenant");
    let (other, user) = new_tenant_with_user("app-2", "api", 2);
    let other = store.create_tenant(&other, &user, T0).await.unwrap();

    // Everything a store could slip on: a non-ASCII prefix with a quote, the
    // extreme hours, the other codes, a disabled auto-post.
    let wanted = StoredTenant {
        time_zone: "America/Argentina/Buenos_Aires".to_owned(),
        auto_post: false,
        invoice_prefix: "RÉ-'2025'/".to_owned(),
        bill_run_hour: 23,
        proration_policy: 2,
        rounding: 2,
        ..created.clone()
    };
    store
        .update_tenant_settings(created.id, &wanted)
        .await
        .unwrap();
    let expected = settings(&wanted);
    let found = store.tenant_by_app_key("app-1").await.unwrap().unwrap();
    assert_eq!(settings(&found), expected);
    assert_same_tenant_except_time_zone(&found, &created);
    let (by_credential, _) = store.credential("app-1", "api").await.unwrap().unwrap();
    assert_eq!(settings(&by_credential), expected);

    // Only the settings and the time zone are written: not the name, nor the test clock.
    let renamed = StoredTenant {
        name: "ignored".to_owned(),
        app_key: "ignored".to_owned(),
        currency: "JPY".to_owned(),
        bill_run_hour: 0,
        auto_post: true,
        invoice_prefix: String::new(),
        test_today: Some(date(2030, 1, 1)),
        ..wanted.clone()
    };
    store
        .update_tenant_settings(created.id, &renamed)
        .await
        .unwrap();
    let found = store.tenant_by_app_key("app-1").await.unwrap().unwrap();
    assert_eq!(
        settings(&found),
        (
            "America/Argentina/Buenos_Aires".to_owned(),
            true,
            String::new(),
            0,
            2,
            2,
            None
        )
    );
    assert_same_tenant_except_time_zone(&found, &created);
    assert!(store.tenant_by_app_key("ignored").await.unwrap().is_none());

    let untouched = store.tenant_by_app_key("app-2").await.unwrap().unwrap();
    assert_eq!(
        settings(&untouched),
        settings(&other),
        "another tenant keeps its settings"
    );
}

fn assert_same_tenant_except_time_zone(found: &StoredTenant, created: &StoredTenant) {
    assert_eq!(found.id, created.id);
    assert_eq!(found.app_key, created.app_key);
    assert_eq!(found.name, created.name);
    assert_eq!(found.currency, created.currency);
    assert_eq!(found.created_at, created.created_at);
}

pub async fn a_tenants_test_clock_date_is_set_and_cleared(store: Arc<dyn Store>) {
    let (one, user) = new_tenant_with_user("app-1", "api", 1);
    let one = store.create_tenant(&one, &user, T0).await.unwrap();
    let (two, user) = new_tenant_with_user("app-2", "api", 2);
    store.create_tenant(&two, &user, T0).await.unwrap();

    store
        .set_test_today(one.id, Some(date(2024, 2, 29)))
        .await
        .unwrap();
    let found = store.tenant_by_app_key("app-1").await.unwrap().unwrap();
    assert_eq!(found.test_today, Some(date(2024, 2, 29)));
    let (by_credential, _) = store.credential("app-1", "api").await.unwrap().unwrap();
    assert_eq!(by_credential.test_today, Some(date(2024, 2, 29)));
    let other = store.tenant_by_app_key("app-2").await.unwrap().unwrap();
    assert_eq!(other.test_today, None, "only that tenant's clock moved");

    store
        .set_test_today(one.id, Some(date(9999, 12, 31)))
        .await
        .unwrap();
    let found = store.tenant_by_app_key("app-1").await.unwrap().unwrap();
    assert_eq!(found.test_today, Some(date(9999, 12, 31)));
    assert_eq!(settings(&found).0, "Europe/Berlin", "the settings stay");
    assert!(found.auto_post);

    store.set_test_today(one.id, None).await.unwrap();
    let found = store.tenant_by_app_key("app-1").await.unwrap().unwrap();
    assert_eq!(found.test_today, None);
}

pub async fn a_scheduled_run_is_claimed_once_per_date_and_tenant(store: Arc<dyn Store>) {
    let (one, user) = new_tenant_with_user("app-1", "api", 1);
    let one = store.create_tenant(&one, &user, T0).await.unwrap();
    let (two, user) = new_tenant_with_user("app-2", "api", 2);
    let two = store.create_tenant(&two, &user, T0).await.unwrap();
    let day = date(2025, 6, 15);

    assert!(store.claim_scheduled_run(one.id, day).await.unwrap());
    assert!(
        !store.claim_scheduled_run(one.id, day).await.unwrap(),
        "a date is claimed once"
    );
    assert!(
        store.claim_scheduled_run(two.id, day).await.unwrap(),
        "each tenant has its own runs"
    );
    assert!(
        store
            .claim_scheduled_run(one.id, date(2025, 6, 16))
            .await
            .unwrap()
    );
    assert!(
        !store.claim_scheduled_run(one.id, day).await.unwrap(),
        "an earlier date than the last run taken is not claimed again"
    );
    assert!(
        !store
            .claim_scheduled_run(one.id, date(2025, 6, 16))
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_scheduled_run(one.id, date(2026, 1, 1))
            .await
            .unwrap()
    );
    assert!(!store.claim_scheduled_run(two.id, day).await.unwrap());
}

pub async fn tenants_are_listed_oldest_first_with_their_settings(store: Arc<dyn Store>) {
    assert!(store.list_tenants().await.unwrap().is_empty());
    let mut created = Vec::new();
    for (n, key) in ["app-c", "app-a", "app-b"].into_iter().enumerate() {
        let (new, user) = new_tenant_with_user(key, "api", n as u8);
        created.push(
            store
                .create_tenant(&new, &user, minutes(n as i64))
                .await
                .unwrap(),
        );
    }
    let changed = StoredTenant {
        auto_post: false,
        invoice_prefix: "B-".to_owned(),
        bill_run_hour: 7,
        ..created[2].clone()
    };
    store
        .update_tenant_settings(created[2].id, &changed)
        .await
        .unwrap();
    store
        .set_test_today(created[0].id, Some(date(2025, 1, 31)))
        .await
        .unwrap();

    let listed = store.list_tenants().await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|t| t.app_key.as_str()).collect();
    assert_eq!(keys, ["app-c", "app-a", "app-b"], "in creation (ID) order");
    for (found, made) in listed.iter().zip(&created) {
        assert_same_tenant(found, made);
    }
    assert_eq!(listed[0].test_today, Some(date(2025, 1, 31)));
    assert_eq!(settings(&listed[1]), settings(&created[1]));
    assert_eq!(settings(&listed[2]), settings(&changed));
    assert_eq!(listed.len() as i64, store.tenant_count().await.unwrap());
}

/// The tax settings `update_tenant_settings` writes, as one comparable value.
type TaxSettings = (
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn tax_settings(row: &StoredTenant) -> TaxSettings {
    (
        row.tax_mode,
        row.avatax_url.clone(),
        row.avatax_account_id.clone(),
        row.avatax_license_key.clone(),
        row.avatax_company_code.clone(),
    )
}

pub async fn a_tenants_tax_mode_and_avatax_settings_are_kept_with_the_license_key(
    store: Arc<dyn Store>,
) {
    let (new, user) = new_tenant_with_user("app-1", "api", 1);
    let created = store.create_tenant(&new, &user, T0).await.unwrap();
    let untaxed = (0, None, None, None, None);
    assert_eq!(
        tax_settings(&created),
        untaxed,
        "a new tenant taxes nothing"
    );
    let (other, user) = new_tenant_with_user("app-2", "api", 2);
    let other = store.create_tenant(&other, &user, T0).await.unwrap();

    // Everything a store could slip on: quotes, a backslash, SQL wildcards and
    // non-ASCII in the secret, a long key.
    let avatax = StoredTenant {
        tax_mode: 3,
        avatax_url: Some("https://sandbox-rest.avatax.com/".to_owned()),
        avatax_account_id: Some("2000123456".to_owned()),
        avatax_license_key: Some(format!("{}'\"\\%_Ω", "0123456789ABCDEF".repeat(4))),
        avatax_company_code: Some("DEFAULT – Müller".to_owned()),
        ..created.clone()
    };
    store
        .update_tenant_settings(created.id, &avatax)
        .await
        .unwrap();
    let expected = tax_settings(&avatax);
    let found = store.tenant_by_app_key("app-1").await.unwrap().unwrap();
    assert_eq!(tax_settings(&found), expected);
    assert_eq!(
        settings(&found),
        settings(&created),
        "the other settings stay"
    );
    assert_same_tenant(&found, &created);
    let (by_credential, _) = store.credential("app-1", "api").await.unwrap().unwrap();
    assert_eq!(tax_settings(&by_credential), expected);
    let listed = store.list_tenants().await.unwrap();
    assert_eq!(tax_settings(&listed[0]), expected);
    assert_eq!(
        tax_settings(&listed[1]),
        untaxed,
        "another tenant keeps its settings"
    );

    // Every mode is kept; settings written as absent are cleared, an empty one stays empty.
    for mode in [2, 1, 0] {
        let changed = StoredTenant {
            tax_mode: mode,
            avatax_url: None,
            avatax_account_id: Some(String::new()),
            avatax_license_key: None,
            avatax_company_code: None,
            ..found.clone()
        };
        store
            .update_tenant_settings(created.id, &changed)
            .await
            .unwrap();
        let found = store.tenant_by_app_key("app-1").await.unwrap().unwrap();
        assert_eq!(
            tax_settings(&found),
            (mode, None, Some(String::new()), None, None)
        );
    }
    let untouched = store.tenant_by_app_key("app-2").await.unwrap().unwrap();
    assert_eq!(tax_settings(&untouched), tax_settings(&other));
}
