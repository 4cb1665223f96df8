//! The contract for one-time items: writes, optimistic concurrency, cancel and
//! delete marks, listing.

use std::sync::Arc;

use dynabill_app::Store;
use dynabill_app::model::{ItemFilter, OneTimeItemFields, OneTimeMark, PageRequest, RecordKey};
use dynabill_app::store::StoreError;
use dynabill_core::domain::{OneTimeItemId, OneTimeStatus, PlanId};
use jiff::civil::date;
use rust_decimal::{Decimal, dec};

use crate::fixtures::{
    T0, all_items, find_one_time, insert_account, insert_one_time, insert_plan, minutes, one_time,
    one_time_ids, plan, tenant,
};

/// A one-time item with every field set, to awkward values where a store could slip.
fn full_one_time(ext_id: &str) -> OneTimeItemFields {
    OneTimeItemFields {
        ext_id: ext_id.to_owned(),
        product_code: "SETUP 'Ω' \"1\"".to_owned(),
        name: "Einrichtung – Müller 🚀".to_owned(),
        description: Some("line one\nline two".to_owned()),
        quantity: dec!(0.000001),
        unit_price: dec!(-1234567890.5),
        charge_date: date(2024, 2, 29),
        tax_code: Some(String::new()),
    }
}

pub async fn a_one_time_item_keeps_every_field_exactly_and_is_found_by_id_and_by_ext_id(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let p = insert_plan(&*store, t, &acc, plan("plan-1", date(2024, 1, 1))).await;
    let fields = full_one_time("once-1");

    let full = store
        .insert_one_time_item(t, p.id, &fields, T0)
        .await
        .unwrap();
    assert_eq!(full.fields, fields);
    assert_eq!(full.fields.quantity.to_string(), "0.000001");
    assert_eq!(full.fields.unit_price.to_string(), "-1234567890.5");
    assert_eq!(full.plan_id, p.id);
    assert_eq!(full.plan_ext_id, "plan-1");
    assert_eq!(full.account_id, acc.id);
    assert_eq!(full.cancelled_at, None);
    assert!(!full.invoiced);
    assert_eq!(full.status(), OneTimeStatus::Pending);
    assert_eq!(full.created_at, T0);
    assert_eq!(full.updated_at, T0);
    assert_eq!(full.deleted_at, None);
    assert_eq!(full.version, 1);
    assert_eq!(find_one_time(&*store, t, full.id).await, full);
    let by_ext_id = store
        .find_one_time_item(t, &RecordKey::ExtId("once-1".to_owned()))
        .await
        .unwrap();
    assert_eq!(by_ext_id.as_ref(), Some(&full));

    let bare_fields = OneTimeItemFields {
        quantity: dec!(10),
        unit_price: Decimal::MAX,
        ..one_time("once-2", date(2025, 1, 31))
    };
    let bare = insert_one_time(&*store, t, &p, bare_fields.clone()).await;
    assert_eq!(
        bare.fields, bare_fields,
        "absent optional fields stay absent"
    );
    assert_eq!(bare.fields.quantity.to_string(), "10", "no scale is added");
    assert_eq!(
        bare.fields.unit_price.to_string(),
        "79228162514264337593543950335"
    );
    assert_eq!(find_one_time(&*store, t, bare.id).await, bare);

    let missing = store
        .find_one_time_item(t, &RecordKey::ExtId("once-9".to_owned()))
        .await
        .unwrap();
    assert_eq!(missing, None);
    let missing = store
        .find_one_time_item(t, &RecordKey::Id(OneTimeItemId(bare.id.0 + 1000)))
        .await
        .unwrap();
    assert_eq!(missing, None);

    store
        .update_plan(
            t,
            p.id,
            p.version,
            &plan("plan-renamed", date(2024, 1, 1)),
            minutes(1),
        )
        .await
        .unwrap();
    assert_eq!(
        find_one_time(&*store, t, full.id).await.plan_ext_id,
        "plan-renamed",
        "an item shows its plan's ExtID as it is now"
    );
}

pub async fn a_one_time_item_ext_id_stays_taken_even_after_the_item_is_deleted(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let one = insert_plan(&*store, t, &acc, plan("plan-1", date(2025, 1, 1))).await;
    let two = insert_plan(&*store, t, &acc, plan("plan-2", date(2025, 1, 1))).await;
    let charge = date(2025, 3, 1);
    let first = insert_one_time(&*store, t, &one, one_time("once-1", charge)).await;

    let again = store
        .insert_one_time_item(t, two.id, &one_time("once-1", charge), minutes(1))
        .await;
    assert!(
        matches!(again, Err(StoreError::ExtIdTaken)),
        "ExtIDs are unique across the tenant's plans, got {again:?}"
    );
    let second = insert_one_time(&*store, t, &two, one_time("once-2", charge)).await;
    let rename = store
        .update_one_time_item(
            t,
            second.id,
            second.version,
            &one_time("once-1", charge),
            OneTimeMark::Fields,
            minutes(2),
        )
        .await;
    assert!(
        matches!(rename, Err(StoreError::ExtIdTaken)),
        "expected ExtIdTaken, got {rename:?}"
    );
    assert_eq!(find_one_time(&*store, t, second.id).await, second);

    store
        .update_one_time_item(
            t,
            first.id,
            first.version,
            &first.fields,
            OneTimeMark::CancelledAndDeleted,
            minutes(3),
        )
        .await
        .unwrap();
    let reused = store
        .insert_one_time_item(t, one.id, &one_time("once-1", charge), minutes(4))
        .await;
    assert!(
        matches!(reused, Err(StoreError::ExtIdTaken)),
        "a deleted item's ExtID must never be reused, got {reused:?}"
    );
    assert_eq!(
        one_time_ids(&*store, t, all_items()).await,
        [first.id.0, second.id.0]
    );
}

pub async fn a_one_time_item_needs_a_live_plan_of_its_tenant(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let other = tenant(&*store, "app-2").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let gone = insert_plan(&*store, t, &acc, plan("gone", date(2025, 1, 1))).await;
    store
        .delete_plan(t, gone.id, gone.version, date(2025, 6, 1), minutes(1))
        .await
        .unwrap();
    let their_account = insert_account(&*store, other, "acc-1").await;
    let theirs = insert_plan(
        &*store,
        other,
        &their_account,
        plan("theirs", date(2025, 1, 1)),
    )
    .await;
    let fields = one_time("once-1", date(2025, 7, 1));

    for (plan_id, what) in [
        (gone.id, "a deleted plan"),
        (PlanId(theirs.id.0 + 1000), "an unknown plan"),
        (theirs.id, "another tenant's plan"),
    ] {
        let refused = store
            .insert_one_time_item(t, plan_id, &fields, minutes(2))
            .await;
        assert!(
            matches!(refused, Err(StoreError::Stale)),
            "expected Stale for {what}, got {refused:?}"
        );
    }
    assert_eq!(one_time_ids(&*store, t, all_items()).await, [] as [i64; 0]);
    assert_eq!(
        one_time_ids(&*store, other, all_items()).await,
        [] as [i64; 0]
    );
}

pub async fn a_one_time_item_update_applies_only_at_its_version_and_may_cancel_or_delete_it(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let p = insert_plan(&*store, t, &acc, plan("plan-1", date(2025, 1, 1))).await;
    let before = insert_one_time(&*store, t, &p, full_one_time("once-1")).await;

    let changed = OneTimeItemFields {
        quantity: dec!(3),
        ..one_time("once-1b", date(2025, 4, 30))
    };
    let after = store
        .update_one_time_item(
            t,
            before.id,
            before.version,
            &changed,
            OneTimeMark::Fields,
            minutes(1),
        )
        .await
        .unwrap();
    assert_eq!(
        after.fields, changed,
        "optional fields set to None are cleared"
    );
    assert_eq!(after.version, before.version + 1);
    assert_eq!(after.created_at, T0);
    assert_eq!(after.updated_at, minutes(1));
    assert_eq!(after.cancelled_at, None);
    assert_eq!(after.deleted_at, None);
    assert_eq!(after.plan_id, p.id);
    assert_eq!(find_one_time(&*store, t, before.id).await, after);

    let stale = store
        .update_one_time_item(
            t,
            before.id,
            before.version,
            &changed,
            OneTimeMark::CancelledAndDeleted,
            minutes(2),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::Stale)),
        "expected Stale, got {stale:?}"
    );
    let unknown = store
        .update_one_time_item(
            t,
            OneTimeItemId(before.id.0 + 1000),
            1,
            &changed,
            OneTimeMark::Fields,
            minutes(2),
        )
        .await;
    assert!(
        matches!(unknown, Err(StoreError::Stale)),
        "expected Stale for an unknown item, got {unknown:?}"
    );
    assert_eq!(
        find_one_time(&*store, t, before.id).await,
        after,
        "a refused update changes nothing"
    );

    let cancelled = store
        .update_one_time_item(
            t,
            after.id,
            after.version,
            &changed,
            OneTimeMark::Cancelled,
            minutes(3),
        )
        .await
        .unwrap();
    assert_eq!(cancelled.cancelled_at, Some(minutes(3)));
    assert_eq!(cancelled.deleted_at, None);
    assert_eq!(cancelled.status(), OneTimeStatus::Cancelled);
    assert_eq!(cancelled.version, after.version + 1);
    let kept = store
        .update_one_time_item(
            t,
            cancelled.id,
            cancelled.version,
            &changed,
            OneTimeMark::Fields,
            minutes(4),
        )
        .await
        .unwrap();
    assert_eq!(
        kept.cancelled_at,
        Some(minutes(3)),
        "a write without the cancel mark does not undo a cancellation"
    );
    let deleted = store
        .update_one_time_item(
            t,
            kept.id,
            kept.version,
            &changed,
            OneTimeMark::CancelledAndDeleted,
            minutes(5),
        )
        .await
        .unwrap();
    assert_eq!(
        deleted.cancelled_at,
        Some(minutes(3)),
        "cancelled again, it keeps its first cancellation time"
    );
    assert_eq!(deleted.deleted_at, Some(minutes(5)));
    assert_eq!(deleted.updated_at, minutes(5));
    assert_eq!(find_one_time(&*store, t, before.id).await, deleted);
    let by_ext_id = store
        .find_one_time_item(t, &RecordKey::ExtId("once-1b".to_owned()))
        .await
        .unwrap();
    assert_eq!(
        by_ext_id,
        Some(deleted),
        "a deleted item is still found by key"
    );
    assert_eq!(
        one_time_ids(&*store, t, ItemFilter::default()).await,
        [] as [i64; 0]
    );

    let other = insert_one_time(&*store, t, &p, one_time("once-2", date(2025, 5, 1))).await;
    let deleted_only = store
        .update_one_time_item(
            t,
            other.id,
            other.version,
            &other.fields,
            OneTimeMark::Deleted,
            minutes(6),
        )
        .await
        .unwrap();
    assert_eq!(deleted_only.deleted_at, Some(minutes(6)));
    assert_eq!(deleted_only.cancelled_at, None, "the marks are independent");
}

pub async fn listing_one_time_items_filters_by_id_ext_id_plan_and_deletion(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let start = date(2025, 1, 1);
    let one = insert_plan(&*store, t, &acc, plan("plan-1", start)).await;
    let two = insert_plan(&*store, t, &acc, plan("plan-2", start)).await;
    let o1 = insert_one_time(&*store, t, &one, one_time("o-1", start))
        .await
        .id
        .0;
    let o2 = insert_one_time(&*store, t, &two, one_time("o-2", start))
        .await
        .id
        .0;
    let o3 = insert_one_time(&*store, t, &one, one_time("o-3", start)).await;
    store
        .update_one_time_item(
            t,
            o3.id,
            o3.version,
            &o3.fields,
            OneTimeMark::CancelledAndDeleted,
            minutes(1),
        )
        .await
        .unwrap();
    let o3 = o3.id.0;

    let ids = |filter: ItemFilter<OneTimeItemId>| one_time_ids(&*store, t, filter);
    assert_eq!(ids(ItemFilter::default()).await, [o1, o2]);
    assert_eq!(ids(all_items()).await, [o1, o2, o3]);
    let by_id = ItemFilter {
        id: Some(OneTimeItemId(o2)),
        ..ItemFilter::default()
    };
    assert_eq!(ids(by_id).await, [o2]);
    let by_ext_id = ItemFilter {
        ext_id: Some("o-1".to_owned()),
        ..ItemFilter::default()
    };
    assert_eq!(ids(by_ext_id).await, [o1]);
    let deleted_by_ext_id = ItemFilter {
        ext_id: Some("o-3".to_owned()),
        ..ItemFilter::default()
    };
    assert_eq!(ids(deleted_by_ext_id).await, [] as [i64; 0]);
    let by_plan = ItemFilter {
        plan_id: Some(one.id),
        ..all_items()
    };
    assert_eq!(ids(by_plan).await, [o1, o3]);
    let by_other_plan = ItemFilter {
        plan_id: Some(two.id),
        ..ItemFilter::default()
    };
    assert_eq!(ids(by_other_plan).await, [o2]);
    let by_plan_and_ext_id = ItemFilter {
        plan_id: Some(two.id),
        ext_id: Some("o-1".to_owned()),
        ..all_items()
    };
    assert_eq!(ids(by_plan_and_ext_id).await, [] as [i64; 0]);
}

pub async fn one_time_item_pages_follow_id_order_with_the_full_total_and_a_resume_key(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let start = date(2025, 1, 1);
    let one = insert_plan(&*store, t, &acc, plan("plan-1", start)).await;
    let two = insert_plan(&*store, t, &acc, plan("plan-2", start)).await;
    let mut on_one = Vec::new();
    for n in 0..5 {
        let on = if n % 2 == 0 { &one } else { &two };
        let o = insert_one_time(&*store, t, on, one_time(&format!("o-{n}"), start)).await;
        if n % 2 == 0 {
            on_one.push(o);
        }
    }

    let filter = ItemFilter {
        plan_id: Some(one.id),
        ..ItemFilter::default()
    };
    let first = store
        .list_one_time_items(
            t,
            &filter,
            PageRequest {
                size: 2,
                after: None,
                counted: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.total, 3);
    assert_eq!(first.items, on_one[..2]);
    assert_eq!(first.next_after, Some(on_one[1].id.0));
    let rest = store
        .list_one_time_items(
            t,
            &filter,
            PageRequest {
                size: 2,
                after: first.next_after,
                counted: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.total, 3);
    assert_eq!(rest.items, on_one[2..]);
    assert_eq!(rest.next_after, None);
}
