//! The contract for recurring items: writes with their history, optimistic
//! concurrency across a whole batch, listing, deletion.

use std::sync::Arc;

use dynabill_app::Store;
use dynabill_app::model::{
    Cancellation, ItemChange, ItemChangeKind, ItemFilter, PageRequest, PlanFields, RecordKey,
    RecurringItemFields,
};
use dynabill_app::store::StoreError;
use dynabill_core::calendar::BillingPeriod;
use dynabill_core::domain::{BillingTiming, PlanId, RecurringItemId};
use jiff::civil::date;
use rust_decimal::{Decimal, dec};

use crate::fixtures::{
    T0, all_items, created, entry, find_item, insert_account, insert_item, insert_plan, item,
    item_ids, minutes, plan, tenant, text, unsequenced, write,
};

/// An item with every field set, to awkward values where a store could slip.
fn full_item(ext_id: &str) -> RecurringItemFields {
    RecurringItemFields {
        ext_id: ext_id.to_owned(),
        product_code: "SKU 'Ω' \"42\"".to_owned(),
        name: "Wartung – Müller 🚀".to_owned(),
        description: Some("line one\nline two".to_owned()),
        tax_code: Some(String::new()),
        billing_period: BillingPeriod::Weekly,
        period_count: 3,
        timing: BillingTiming::InArrears,
        start_date: date(2024, 2, 29),
        end_date: Some(date(2025, 2, 28)),
    }
}

pub async fn a_recurring_item_keeps_every_field_exactly_with_its_first_history_entry(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let anchored = PlanFields {
        billing_day: Some(31),
        auto_renew: true,
        ..plan("plan-1", date(2024, 1, 1))
    };
    let p = insert_plan(&*store, t, &acc, anchored).await;
    let fields = full_item("item-1");
    // Amounts whose text a store could change: a whole number (no added scale), the
    // extremes of the decimal range, many fractional digits.
    let first = ItemChange {
        seq: 0,
        kind: ItemChangeKind::Created,
        effective_date: fields.start_date,
        quantity: Some(dec!(10)),
        unit_price: Some(dec!(1234567890.123456789)),
        discount_percent: Some(dec!(0.5)),
        start_date: fields.start_date,
        end_date: fields.end_date,
        prorate: Some(false),
        credit: Some(true),
        recorded_at: T0,
    };

    let full = store
        .insert_recurring_item(t, p.id, &fields, &first, T0)
        .await
        .unwrap();
    assert_eq!(full.fields, fields);
    assert_eq!(full.plan_id, p.id);
    assert_eq!(full.plan_ext_id, "plan-1");
    assert_eq!(full.account_id, acc.id);
    assert_eq!(full.plan_billing_day, Some(31));
    assert!(full.plan_auto_renew);
    assert_eq!(full.cancellation, None);
    assert_eq!(full.charged_through, None);
    assert_eq!(unsequenced(&full.changes), std::slice::from_ref(&first));
    assert!(full.changes[0].seq > 0, "a stored entry has its position");
    let stored = &full.changes[0];
    assert_eq!(text(stored.quantity).as_deref(), Some("10"));
    assert_eq!(
        text(stored.unit_price).as_deref(),
        Some("1234567890.123456789")
    );
    assert_eq!(text(stored.discount_percent).as_deref(), Some("0.5"));
    assert_eq!(full.created_at, T0);
    assert_eq!(full.updated_at, T0);
    assert_eq!(full.deleted_at, None);
    assert_eq!(full.version, 1);
    assert_eq!(find_item(&*store, t, full.id).await, full);
    let by_ext_id = store
        .find_recurring_item(t, &RecordKey::ExtId("item-1".to_owned()))
        .await
        .unwrap();
    assert_eq!(by_ext_id.as_ref(), Some(&full));

    let bare_fields = item("item-2", date(2025, 1, 31));
    let bare_first = ItemChange {
        quantity: Some(Decimal::MAX),
        unit_price: Some(Decimal::MIN),
        discount_percent: Some(dec!(0.0000000000000000000000000001)),
        ..created(&bare_fields, T0)
    };
    let bare = store
        .insert_recurring_item(t, p.id, &bare_fields, &bare_first, T0)
        .await
        .unwrap();
    assert_eq!(
        bare.fields, bare_fields,
        "absent optional fields stay absent"
    );
    assert_eq!(
        unsequenced(&bare.changes),
        std::slice::from_ref(&bare_first)
    );
    assert!(
        bare.changes[0].seq > full.changes[0].seq,
        "a later entry has a later position"
    );
    assert_eq!(
        text(bare.changes[0].quantity),
        Some("79228162514264337593543950335".to_owned())
    );
    assert_eq!(
        text(bare.changes[0].unit_price),
        Some("-79228162514264337593543950335".to_owned())
    );
    assert_eq!(
        text(bare.changes[0].discount_percent),
        Some("0.0000000000000000000000000001".to_owned())
    );
    assert_eq!(find_item(&*store, t, bare.id).await, bare);

    let missing = store
        .find_recurring_item(t, &RecordKey::ExtId("item-9".to_owned()))
        .await
        .unwrap();
    assert_eq!(missing, None);
    let missing = store
        .find_recurring_item(t, &RecordKey::Id(RecurringItemId(bare.id.0 + 1000)))
        .await
        .unwrap();
    assert_eq!(missing, None);

    let renamed = PlanFields {
        billing_day: None,
        auto_renew: false,
        ..plan("plan-renamed", date(2024, 1, 1))
    };
    store
        .update_plan(t, p.id, p.version, &renamed, minutes(1))
        .await
        .unwrap();
    let now = find_item(&*store, t, full.id).await;
    assert_eq!(
        (
            now.plan_ext_id.as_str(),
            now.plan_billing_day,
            now.plan_auto_renew
        ),
        ("plan-renamed", None, false),
        "an item shows its plan as it is now"
    );
    assert_eq!(now.version, full.version, "a plan update is no item write");
}

pub async fn a_recurring_item_ext_id_stays_taken_even_after_the_item_is_deleted(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let one = insert_plan(&*store, t, &acc, plan("plan-1", date(2025, 1, 1))).await;
    let two = insert_plan(&*store, t, &acc, plan("plan-2", date(2025, 1, 1))).await;
    let start = date(2025, 1, 1);
    let first = insert_item(&*store, t, &one, item("item-1", start)).await;

    let fields = item("item-1", start);
    let again = store
        .insert_recurring_item(t, two.id, &fields, &created(&fields, T0), minutes(1))
        .await;
    assert!(
        matches!(again, Err(StoreError::ExtIdTaken)),
        "ExtIDs are unique across the tenant's plans, got {again:?}"
    );
    let second = insert_item(&*store, t, &two, item("item-2", start)).await;
    let renamed = item("item-1", start);
    let change = entry(ItemChangeKind::Updated, start, &renamed, minutes(2));
    let rename = store
        .write_recurring_items(t, None, &[write(&second, renamed, change)], minutes(2))
        .await;
    assert!(
        matches!(rename, Err(StoreError::ExtIdTaken)),
        "expected ExtIdTaken, got {rename:?}"
    );
    assert_eq!(
        find_item(&*store, t, second.id).await,
        second,
        "a refused rename changes nothing, nor appends to the history"
    );

    let mut delete = write(
        &first,
        first.fields.clone(),
        entry(ItemChangeKind::Deleted, start, &first.fields, minutes(3)),
    );
    delete.deleted = true;
    store
        .write_recurring_items(t, None, &[delete], minutes(3))
        .await
        .unwrap();
    let reused = store
        .insert_recurring_item(t, one.id, &fields, &created(&fields, T0), minutes(4))
        .await;
    assert!(
        matches!(reused, Err(StoreError::ExtIdTaken)),
        "a deleted item's ExtID must never be reused, got {reused:?}"
    );
    assert_eq!(
        item_ids(&*store, t, all_items()).await,
        [first.id.0, second.id.0]
    );
}

pub async fn a_recurring_item_needs_a_live_plan_of_its_tenant(store: Arc<dyn Store>) {
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
    let fields = item("item-1", date(2025, 1, 1));
    let first = created(&fields, T0);

    for (plan_id, what) in [
        (gone.id, "a deleted plan"),
        (PlanId(theirs.id.0 + 1000), "an unknown plan"),
        (theirs.id, "another tenant's plan"),
    ] {
        let refused = store
            .insert_recurring_item(t, plan_id, &fields, &first, minutes(2))
            .await;
        assert!(
            matches!(refused, Err(StoreError::Stale)),
            "expected Stale for {what}, got {refused:?}"
        );
    }
    assert_eq!(item_ids(&*store, t, all_items()).await, [] as [i64; 0]);
    assert_eq!(item_ids(&*store, other, all_items()).await, [] as [i64; 0]);
}

pub async fn recurring_item_writes_apply_only_at_their_versions_and_all_or_nothing(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let start = date(2025, 1, 1);
    let end = date(2026, 1, 1);
    let ending = PlanFields {
        end_date: Some(end),
        ..plan("plan-1", start)
    };
    let p = insert_plan(&*store, t, &acc, ending.clone()).await;
    insert_plan(&*store, t, &acc, plan("plan-other", start)).await;
    let with_end = |ext_id: &str| RecurringItemFields {
        end_date: Some(end),
        ..item(ext_id, start)
    };
    let a = insert_item(&*store, t, &p, with_end("item-a")).await;
    let b = insert_item(&*store, t, &p, with_end("item-b")).await;

    // The plan renewed, `a` renewed with a new price, `b` cancelled without credit.
    let renewed_plan = PlanFields {
        end_date: Some(date(2027, 1, 1)),
        ..ending.clone()
    };
    let a_fields = RecurringItemFields {
        end_date: Some(date(2027, 1, 1)),
        ..a.fields.clone()
    };
    let a_change = ItemChange {
        unit_price: Some(dec!(12.75)),
        ..entry(ItemChangeKind::Renewal, end, &a_fields, minutes(1))
    };
    let a_write = write(&a, a_fields.clone(), a_change.clone());
    let b_fields = RecurringItemFields {
        end_date: Some(date(2025, 7, 1)),
        ..b.fields.clone()
    };
    let b_change = ItemChange {
        credit: Some(false),
        ..entry(
            ItemChangeKind::Cancellation,
            date(2025, 7, 1),
            &b_fields,
            minutes(1),
        )
    };
    let mut b_write = write(&b, b_fields.clone(), b_change.clone());
    b_write.cancellation = Some(Cancellation {
        date: date(2025, 7, 1),
        credit: false,
    });

    let unchanged = || async {
        let plan_now = store
            .find_plan(t, &RecordKey::Id(p.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(plan_now, p, "a refused batch leaves the plan as it was");
        assert_eq!(find_item(&*store, t, a.id).await, a, "and item a");
        assert_eq!(find_item(&*store, t, b.id).await, b, "and item b");
    };

    let mut b_stale = b_write.clone();
    b_stale.version += 1;
    let mut unknown = b_write.clone();
    unknown.id = RecurringItemId(b.id.0 + 1000);
    let mut a_taken = a_write.clone();
    a_taken.fields.ext_id = "item-b".to_owned();
    let taken_plan = PlanFields {
        ext_id: "plan-other".to_owned(),
        ..renewed_plan.clone()
    };
    let refused = [
        (
            Some((p.id, p.version, &renewed_plan)),
            vec![a_write.clone(), b_stale],
            "the last item is stale",
        ),
        (
            Some((p.id, p.version + 1, &renewed_plan)),
            vec![a_write.clone(), b_write.clone()],
            "the plan is stale",
        ),
        (None, vec![a_write.clone(), unknown], "an item is unknown"),
    ];
    for (plan_write, writes, why) in refused {
        let result = store
            .write_recurring_items(t, plan_write, &writes, minutes(1))
            .await;
        assert!(
            matches!(result, Err(StoreError::Stale)),
            "expected Stale when {why}, got {result:?}"
        );
        unchanged().await;
    }
    let result = store
        .write_recurring_items(
            t,
            Some((p.id, p.version, &renewed_plan)),
            &[b_write.clone(), a_taken],
            minutes(1),
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::ExtIdTaken)),
        "expected ExtIdTaken for an item renamed to a taken ExtID, got {result:?}"
    );
    unchanged().await;
    let result = store
        .write_recurring_items(
            t,
            Some((p.id, p.version, &taken_plan)),
            &[a_write.clone(), b_write.clone()],
            minutes(1),
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::ExtIdTaken)),
        "expected ExtIdTaken for the plan renamed to a taken ExtID, got {result:?}"
    );
    unchanged().await;

    store
        .write_recurring_items(
            t,
            Some((p.id, p.version, &renewed_plan)),
            &[a_write.clone(), b_write.clone()],
            minutes(1),
        )
        .await
        .unwrap();
    let plan_now = store
        .find_plan(t, &RecordKey::Id(p.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(plan_now.fields, renewed_plan);
    assert_eq!(plan_now.version, p.version + 1);
    assert_eq!(plan_now.updated_at, minutes(1));
    let a_now = find_item(&*store, t, a.id).await;
    assert_eq!(a_now.fields, a_fields);
    assert_eq!(a_now.cancellation, None);
    assert_eq!(a_now.version, a.version + 1);
    assert_eq!(a_now.updated_at, minutes(1));
    assert_eq!(a_now.created_at, T0);
    assert_eq!(
        unsequenced(&a_now.changes),
        unsequenced(&[a.changes[0].clone(), a_change])
    );
    assert_eq!(
        a_now.changes[0], a.changes[0],
        "an entry keeps its position"
    );
    assert_eq!(text(a_now.changes[1].unit_price).as_deref(), Some("12.75"));
    let b_now = find_item(&*store, t, b.id).await;
    assert_eq!(b_now.fields, b_fields);
    assert_eq!(
        b_now.cancellation,
        Some(Cancellation {
            date: date(2025, 7, 1),
            credit: false
        })
    );
    assert_eq!(b_now.version, b.version + 1);
    assert_eq!(
        unsequenced(&b_now.changes),
        unsequenced(&[b.changes[0].clone(), b_change])
    );

    let replay = store
        .write_recurring_items(
            t,
            Some((p.id, p.version, &renewed_plan)),
            &[a_write, b_write],
            minutes(2),
        )
        .await;
    assert!(
        matches!(replay, Err(StoreError::Stale)),
        "a batch read before the last write is stale, got {replay:?}"
    );
    assert_eq!(find_item(&*store, t, a.id).await, a_now);
    assert_eq!(find_item(&*store, t, b.id).await, b_now);

    store
        .write_recurring_items(t, Some((p.id, plan_now.version, &ending)), &[], minutes(3))
        .await
        .expect("a batch may change the plan alone");
    let plan_later = store
        .find_plan(t, &RecordKey::Id(p.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(plan_later.fields, ending);
    assert_eq!(plan_later.version, plan_now.version + 1);
    assert_eq!(find_item(&*store, t, a.id).await, a_now);
}

pub async fn an_items_history_grows_in_the_order_of_its_writes(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let p = insert_plan(&*store, t, &acc, plan("plan-1", date(2025, 1, 1))).await;
    let x = insert_item(&*store, t, &p, item("item-x", date(2025, 1, 1))).await;
    let y = insert_item(&*store, t, &p, item("item-y", date(2025, 2, 1))).await;
    let mut expected_x = x.changes.clone();
    let mut expected_y = y.changes.clone();

    // Entries keep the order they were made in, not their effective dates; entries of
    // two items interleave without mixing.
    let upsell =
        |effective, quantity: Option<Decimal>, unit_price: Option<Decimal>, prorate, at| {
            ItemChange {
                quantity,
                unit_price,
                prorate: Some(prorate),
                ..entry(ItemChangeKind::Upsell, effective, &x.fields, at)
            }
        };
    let y_moved = RecurringItemFields {
        start_date: date(2025, 3, 1),
        ..y.fields.clone()
    };
    let steps: Vec<(bool, ItemChange)> = vec![
        (
            true,
            upsell(date(2025, 5, 1), Some(dec!(12)), None, true, minutes(1)),
        ),
        (
            false,
            entry(
                ItemChangeKind::DatesChanged,
                date(2025, 3, 1),
                &y_moved,
                minutes(2),
            ),
        ),
        (
            true,
            upsell(date(2025, 3, 1), None, Some(dec!(-0.25)), false, minutes(3)),
        ),
        (
            true,
            ItemChange {
                discount_percent: Some(dec!(12.5)),
                ..entry(
                    ItemChangeKind::Updated,
                    date(2025, 1, 1),
                    &x.fields,
                    minutes(4),
                )
            },
        ),
        (
            false,
            ItemChange {
                credit: Some(true),
                ..entry(
                    ItemChangeKind::Cancellation,
                    date(2025, 9, 1),
                    &y_moved,
                    minutes(5),
                )
            },
        ),
    ];
    for (on_x, change) in steps {
        let id = if on_x { x.id } else { y.id };
        let current = find_item(&*store, t, id).await;
        let fields = RecurringItemFields {
            start_date: change.start_date,
            end_date: change.end_date,
            ..current.fields.clone()
        };
        let at = change.recorded_at;
        store
            .write_recurring_items(t, None, &[write(&current, fields, change.clone())], at)
            .await
            .unwrap();
        if on_x {
            expected_x.push(change);
        } else {
            expected_y.push(change);
        }
    }

    let x_now = find_item(&*store, t, x.id).await;
    assert_eq!(unsequenced(&x_now.changes), unsequenced(&expected_x));
    assert_eq!(x_now.version, x.version + 3);
    assert_eq!(text(x_now.changes[2].unit_price).as_deref(), Some("-0.25"));
    assert_eq!(
        text(x_now.changes[3].discount_percent).as_deref(),
        Some("12.5")
    );
    let y_now = find_item(&*store, t, y.id).await;
    assert_eq!(unsequenced(&y_now.changes), unsequenced(&expected_y));
    // Positions follow the order the writes were made in, across items.
    let order = [
        x_now.changes[1].seq,
        y_now.changes[1].seq,
        x_now.changes[2].seq,
        x_now.changes[3].seq,
        y_now.changes[2].seq,
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "seqs follow the order of writes: {order:?}"
    );
    assert_eq!(y_now.fields.start_date, date(2025, 3, 1));
    let listed = store
        .list_recurring_items(t, &ItemFilter::default(), crate::fixtures::EVERYTHING)
        .await
        .unwrap();
    assert_eq!(
        listed.items,
        [x_now, y_now],
        "a listed item carries the same history as a found one"
    );
}

pub async fn a_deleted_recurring_item_is_listed_only_on_request_but_found_by_key(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let p = insert_plan(&*store, t, &acc, plan("plan-1", date(2025, 1, 1))).await;
    let kept = insert_item(&*store, t, &p, item("kept", date(2025, 1, 1))).await;
    let gone = insert_item(&*store, t, &p, item("gone", date(2025, 1, 1))).await;

    let mut delete = write(
        &gone,
        gone.fields.clone(),
        entry(
            ItemChangeKind::Deleted,
            date(2025, 6, 1),
            &gone.fields,
            minutes(1),
        ),
    );
    delete.deleted = true;
    store
        .write_recurring_items(t, None, &[delete], minutes(1))
        .await
        .unwrap();
    let deleted = find_item(&*store, t, gone.id).await;
    assert_eq!(deleted.deleted_at, Some(minutes(1)));
    assert_eq!(deleted.version, gone.version + 1);
    assert_eq!(
        deleted.changes.last().map(|c| c.kind),
        Some(ItemChangeKind::Deleted)
    );
    let by_ext_id = store
        .find_recurring_item(t, &RecordKey::ExtId("gone".to_owned()))
        .await
        .unwrap();
    assert_eq!(by_ext_id.as_ref(), Some(&deleted));
    assert_eq!(
        item_ids(&*store, t, ItemFilter::default()).await,
        [kept.id.0]
    );
    assert_eq!(
        item_ids(&*store, t, all_items()).await,
        [kept.id.0, gone.id.0]
    );

    // Written again as deleted, it keeps the time it was first deleted.
    let again = write(
        &deleted,
        deleted.fields.clone(),
        entry(
            ItemChangeKind::Updated,
            date(2025, 6, 1),
            &deleted.fields,
            minutes(2),
        ),
    );
    assert!(again.deleted);
    store
        .write_recurring_items(t, None, &[again], minutes(2))
        .await
        .unwrap();
    let still = find_item(&*store, t, gone.id).await;
    assert_eq!(still.deleted_at, Some(minutes(1)));
    assert_eq!(still.updated_at, minutes(2));
}

pub async fn listing_recurring_items_filters_by_id_ext_id_plan_and_deletion(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let start = date(2025, 1, 1);
    let one = insert_plan(&*store, t, &acc, plan("plan-1", start)).await;
    let two = insert_plan(&*store, t, &acc, plan("plan-2", start)).await;
    let i1 = insert_item(&*store, t, &one, item("i-1", start)).await.id.0;
    let i2 = insert_item(&*store, t, &two, item("i-2", start)).await.id.0;
    let i3 = insert_item(&*store, t, &one, item("i-3", start)).await;
    let mut delete = write(
        &i3,
        i3.fields.clone(),
        entry(ItemChangeKind::Deleted, start, &i3.fields, minutes(1)),
    );
    delete.deleted = true;
    store
        .write_recurring_items(t, None, &[delete], minutes(1))
        .await
        .unwrap();
    let i3 = i3.id.0;

    let ids = |filter: ItemFilter<RecurringItemId>| item_ids(&*store, t, filter);
    assert_eq!(ids(ItemFilter::default()).await, [i1, i2]);
    assert_eq!(ids(all_items()).await, [i1, i2, i3]);
    let by_id = ItemFilter {
        id: Some(RecurringItemId(i2)),
        ..ItemFilter::default()
    };
    assert_eq!(ids(by_id).await, [i2]);
    let deleted_by_id = ItemFilter {
        id: Some(RecurringItemId(i3)),
        ..ItemFilter::default()
    };
    assert_eq!(ids(deleted_by_id).await, [] as [i64; 0]);
    let by_ext_id = ItemFilter {
        ext_id: Some("i-1".to_owned()),
        ..ItemFilter::default()
    };
    assert_eq!(ids(by_ext_id).await, [i1]);
    let deleted_by_ext_id = ItemFilter {
        ext_id: Some("i-3".to_owned()),
        ..all_items()
    };
    assert_eq!(ids(deleted_by_ext_id).await, [i3]);
    let by_plan = ItemFilter {
        plan_id: Some(one.id),
        ..ItemFilter::default()
    };
    assert_eq!(ids(by_plan).await, [i1]);
    let by_plan_deleted_too = ItemFilter {
        plan_id: Some(one.id),
        ..all_items()
    };
    assert_eq!(ids(by_plan_deleted_too).await, [i1, i3]);
    let by_plan_and_ext_id = ItemFilter {
        plan_id: Some(two.id),
        ext_id: Some("i-1".to_owned()),
        ..all_items()
    };
    assert_eq!(ids(by_plan_and_ext_id).await, [] as [i64; 0]);
    let unknown = ItemFilter {
        ext_id: Some("i-9".to_owned()),
        ..all_items()
    };
    assert_eq!(ids(unknown).await, [] as [i64; 0]);
}

pub async fn recurring_item_pages_follow_id_order_with_the_full_total_and_a_resume_key(
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
        let i = insert_item(&*store, t, on, item(&format!("i-{n}"), start)).await;
        if n % 2 == 0 {
            on_one.push(i);
        }
    }

    let filter = ItemFilter {
        plan_id: Some(one.id),
        ..ItemFilter::default()
    };
    let first = store
        .list_recurring_items(
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
    assert_eq!(first.items, on_one[..2], "items come with their histories");
    assert_eq!(first.next_after, Some(on_one[1].id.0));
    let rest = store
        .list_recurring_items(
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
    let exact = store
        .list_recurring_items(
            t,
            &filter,
            PageRequest {
                size: 3,
                after: None,
                counted: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(exact.items.len(), 3);
    assert_eq!(exact.next_after, None, "no resume key when nothing is left");
}
