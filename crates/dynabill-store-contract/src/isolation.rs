//! The contract between tenants: no method lets one tenant see or change another's records.

use std::sync::Arc;

use dynabill_app::Store;
use dynabill_app::model::{
    AccountFilter, ItemChangeKind, ItemFilter, OneTimeMark, PlanFilter, RecordKey,
};
use dynabill_app::store::{IdempotencyClaim, StoreError};
use dynabill_core::domain::{OneTimeItemId, PlanId, RecurringItemId};
use jiff::civil::date;

use crate::fixtures::{
    T0, account, account_ids, all_items, created, credited, entry, find_item, find_one_time,
    insert_account, insert_item, insert_one_time, insert_plan, item, item_ids, minutes, one_time,
    one_time_ids, plan, plan_ids, tenant, write,
};

pub async fn a_tenant_never_sees_or_changes_another_tenants_accounts(store: Arc<dyn Store>) {
    let owner = tenant(&*store, "app-1").await;
    let other = tenant(&*store, "app-2").await;
    let theirs = insert_account(&*store, owner, "shared").await;

    let by_id = store
        .find_account(other, &RecordKey::Id(theirs.id))
        .await
        .unwrap();
    assert_eq!(by_id, None);
    let by_ext_id = store
        .find_account(other, &RecordKey::ExtId("shared".to_owned()))
        .await
        .unwrap();
    assert_eq!(by_ext_id, None);
    let everything = AccountFilter {
        include_deleted: true,
        ..AccountFilter::default()
    };
    assert_eq!(
        account_ids(&*store, other, everything.clone()).await,
        [] as [i64; 0]
    );
    let by_id_filter = AccountFilter {
        id: Some(theirs.id),
        ..everything.clone()
    };
    assert_eq!(
        account_ids(&*store, other, by_id_filter).await,
        [] as [i64; 0]
    );

    let update = store
        .update_account(
            other,
            theirs.id,
            theirs.version,
            &account("stolen"),
            minutes(1),
        )
        .await;
    assert!(
        matches!(update, Err(StoreError::Stale)),
        "expected Stale, got {update:?}"
    );
    let delete = store
        .delete_account(
            other,
            theirs.id,
            theirs.version,
            date(2025, 6, 1),
            minutes(1),
        )
        .await;
    assert!(
        matches!(delete, Err(StoreError::Stale)),
        "expected Stale, got {delete:?}"
    );

    let own = store
        .insert_account(other, &account("shared"), minutes(2))
        .await
        .expect("ExtIDs are unique per tenant, not globally");
    assert_ne!(own.id, theirs.id);
    assert_eq!(account_ids(&*store, owner, everything).await, [theirs.id.0]);
    assert_eq!(
        store
            .find_account(owner, &RecordKey::Id(theirs.id))
            .await
            .unwrap(),
        Some(theirs)
    );
}

pub async fn a_tenant_never_sees_or_changes_another_tenants_plans(store: Arc<dyn Store>) {
    let owner = tenant(&*store, "app-1").await;
    let other = tenant(&*store, "app-2").await;
    let theirs = insert_account(&*store, owner, "acc").await;
    let their_plan = insert_plan(&*store, owner, &theirs, plan("plan", date(2025, 1, 1))).await;
    let own = insert_account(&*store, other, "acc").await;
    let today = date(2025, 6, 15);

    let by_id = store
        .find_plan(other, &RecordKey::Id(their_plan.id))
        .await
        .unwrap();
    assert_eq!(by_id, None);
    let by_ext_id = store
        .find_plan(other, &RecordKey::ExtId("plan".to_owned()))
        .await
        .unwrap();
    assert_eq!(by_ext_id, None);
    for filter in [
        PlanFilter::default(),
        PlanFilter {
            account_id: Some(theirs.id),
            ..PlanFilter::default()
        },
        PlanFilter {
            account_ext_id: Some("acc".to_owned()),
            ..PlanFilter::default()
        },
    ] {
        let everything = PlanFilter {
            include_deleted: true,
            ..filter
        };
        assert_eq!(
            plan_ids(&*store, other, everything, today).await,
            [] as [i64; 0]
        );
    }

    let id = their_plan.id;
    let version = their_plan.version;
    let update = store
        .update_plan(
            other,
            id,
            version,
            &plan("stolen", date(2025, 1, 1)),
            minutes(1),
        )
        .await;
    assert!(matches!(update, Err(StoreError::Stale)), "got {update:?}");
    let cancel = store
        .cancel_plan(other, id, version, credited(today), minutes(1))
        .await;
    assert!(matches!(cancel, Err(StoreError::Stale)), "got {cancel:?}");
    let delete = store
        .delete_plan(other, id, version, today, minutes(1))
        .await;
    assert!(matches!(delete, Err(StoreError::Stale)), "got {delete:?}");
    let on_their_account = store
        .insert_plan(
            other,
            theirs.id,
            &plan("sneaky", date(2025, 1, 1)),
            minutes(1),
        )
        .await;
    assert!(
        matches!(on_their_account, Err(StoreError::Stale)),
        "a plan must not hang from another tenant's account, got {on_their_account:?}"
    );
    store
        .delete_account(other, own.id, own.version, today, minutes(2))
        .await
        .unwrap();

    assert_eq!(
        store.find_plan(owner, &RecordKey::Id(id)).await.unwrap(),
        Some(their_plan),
        "the owner's plan is untouched"
    );
    let own_plans = PlanFilter {
        include_deleted: true,
        ..PlanFilter::default()
    };
    assert_eq!(
        plan_ids(&*store, other, own_plans, today).await,
        [] as [i64; 0]
    );
    let own_account = insert_account(&*store, other, "acc-2").await;
    store
        .insert_plan(other, own_account.id, &plan("plan", date(2025, 1, 1)), T0)
        .await
        .expect("plan ExtIDs are unique per tenant, not globally");
}

pub async fn a_tenant_never_sees_or_settles_another_tenants_idempotency_keys(
    store: Arc<dyn Store>,
) {
    let one = tenant(&*store, "app-1").await;
    let two = tenant(&*store, "app-2").await;
    let hash = [3; 32];
    let claim = |t, at| {
        let store = Arc::clone(&store);
        async move {
            store
                .claim_idempotency_key(
                    t,
                    "k",
                    &hash,
                    at,
                    crate::idempotency::held(at),
                    minutes(-60),
                )
                .await
                .unwrap()
        }
    };

    assert_eq!(claim(one, T0).await, IdempotencyClaim::Claimed);
    assert_eq!(
        claim(two, T0).await,
        IdempotencyClaim::Claimed,
        "same key, other tenant"
    );
    store
        .complete_idempotency_key(one, "k", 200, b"one")
        .await
        .unwrap();
    assert_eq!(claim(two, minutes(1)).await, IdempotencyClaim::InFlight);
    store.release_idempotency_key(two, "k").await.unwrap();
    assert_eq!(
        claim(one, minutes(2)).await,
        IdempotencyClaim::Replay {
            status: 200,
            body: b"one".to_vec()
        }
    );
    assert_eq!(claim(two, minutes(3)).await, IdempotencyClaim::Claimed);
    store
        .complete_idempotency_key(two, "k", 201, b"two")
        .await
        .unwrap();
    assert_eq!(
        claim(one, minutes(4)).await,
        IdempotencyClaim::Replay {
            status: 200,
            body: b"one".to_vec()
        }
    );
    assert_eq!(
        claim(two, minutes(4)).await,
        IdempotencyClaim::Replay {
            status: 201,
            body: b"two".to_vec()
        }
    );
}

pub async fn a_tenant_never_sees_or_changes_another_tenants_items(store: Arc<dyn Store>) {
    let owner = tenant(&*store, "app-1").await;
    let other = tenant(&*store, "app-2").await;
    let start = date(2025, 1, 1);
    let today = date(2025, 6, 15);
    let s = &*store;
    let their_account = insert_account(s, owner, "acc").await;
    let their_plan = insert_plan(s, owner, &their_account, plan("plan", start)).await;
    let their_item = insert_item(s, owner, &their_plan, item("item", start)).await;
    let their_one_time = insert_one_time(s, owner, &their_plan, one_time("once", today)).await;

    for key in [
        RecordKey::Id(their_item.id),
        RecordKey::ExtId("item".to_owned()),
    ] {
        assert_eq!(store.find_recurring_item(other, &key).await.unwrap(), None);
    }
    for key in [
        RecordKey::Id(their_one_time.id),
        RecordKey::ExtId("once".to_owned()),
    ] {
        assert_eq!(store.find_one_time_item(other, &key).await.unwrap(), None);
    }
    // Each filter on both lists: the IDs of either kind, the ExtIDs, their plan.
    let filters: [(Option<i64>, Option<&str>, Option<PlanId>); 6] = [
        (None, None, None),
        (Some(their_item.id.0), None, None),
        (Some(their_one_time.id.0), None, None),
        (None, Some("item"), None),
        (None, Some("once"), None),
        (None, None, Some(their_plan.id)),
    ];
    for (id, ext_id, plan_id) in filters {
        let recurring = ItemFilter {
            id: id.map(RecurringItemId),
            ext_id: ext_id.map(str::to_owned),
            plan_id,
            ..all_items()
        };
        let once = ItemFilter {
            id: id.map(OneTimeItemId),
            ext_id: ext_id.map(str::to_owned),
            plan_id,
            ..all_items()
        };
        assert_eq!(item_ids(s, other, recurring).await, [] as [i64; 0]);
        assert_eq!(one_time_ids(s, other, once).await, [] as [i64; 0]);
    }

    let fields = item("sneaky", start);
    let on_their_plan = store
        .insert_recurring_item(
            other,
            their_plan.id,
            &fields,
            &created(&fields, T0),
            minutes(1),
        )
        .await;
    assert!(
        matches!(on_their_plan, Err(StoreError::Stale)),
        "an item must not hang from another tenant's plan, got {on_their_plan:?}"
    );
    let one_time_on_their_plan = store
        .insert_one_time_item(other, their_plan.id, &one_time("sneaky", today), minutes(1))
        .await;
    assert!(
        matches!(one_time_on_their_plan, Err(StoreError::Stale)),
        "got {one_time_on_their_plan:?}"
    );
    let stolen = item("stolen", start);
    let change = entry(ItemChangeKind::Updated, start, &stolen, minutes(1));
    let item_write = store
        .write_recurring_items(
            other,
            None,
            &[write(&their_item, stolen.clone(), change)],
            minutes(1),
        )
        .await;
    assert!(
        matches!(item_write, Err(StoreError::Stale)),
        "got {item_write:?}"
    );
    let plan_write = store
        .write_recurring_items(
            other,
            Some((their_plan.id, their_plan.version, &plan("stolen", start))),
            &[],
            minutes(1),
        )
        .await;
    assert!(
        matches!(plan_write, Err(StoreError::Stale)),
        "got {plan_write:?}"
    );
    let one_time_write = store
        .update_one_time_item(
            other,
            their_one_time.id,
            their_one_time.version,
            &one_time("stolen", today),
            OneTimeMark::CancelledAndDeleted,
            minutes(1),
        )
        .await;
    assert!(
        matches!(one_time_write, Err(StoreError::Stale)),
        "got {one_time_write:?}"
    );

    // The other tenant's records with the same ExtIDs, cancelled and deleted by the
    // cascade, leave the owner's alone.
    let own_account = insert_account(s, other, "acc").await;
    let own_plan = insert_plan(s, other, &own_account, plan("plan", start)).await;
    let own_item = insert_item(s, other, &own_plan, item("item", start)).await;
    assert_ne!(
        own_item.id, their_item.id,
        "ExtIDs are unique per tenant, not globally"
    );
    let own_one_time = insert_one_time(s, other, &own_plan, one_time("once", today)).await;
    assert_ne!(own_one_time.id, their_one_time.id);
    store
        .cancel_plan(
            other,
            own_plan.id,
            own_plan.version,
            credited(today),
            minutes(2),
        )
        .await
        .unwrap();
    store
        .delete_account(
            other,
            own_account.id,
            own_account.version,
            today,
            minutes(3),
        )
        .await
        .unwrap();
    assert!(
        find_item(s, other, own_item.id)
            .await
            .cancellation
            .is_some()
    );

    assert_eq!(find_item(s, owner, their_item.id).await, their_item);
    assert_eq!(
        find_one_time(s, owner, their_one_time.id).await,
        their_one_time
    );
    assert_eq!(item_ids(s, owner, all_items()).await, [their_item.id.0]);
    assert_eq!(
        one_time_ids(s, owner, all_items()).await,
        [their_one_time.id.0]
    );
}
