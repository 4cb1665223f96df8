//! The contract for the cascade: cancelling or deleting a plan, or deleting an
//! account, cancels the items that would still run, in the same step.

use std::sync::Arc;

use dynabill_app::Store;
use dynabill_app::model::{
    Cancellation, ItemChangeKind, OneTimeItem, OneTimeItemFields, OneTimeMark, Plan, PlanFields,
    RecurringItem, RecurringItemFields,
};
use dynabill_app::store::StoreError;
use dynabill_core::domain::TenantId;
use jiff::Timestamp;
use jiff::civil::{Date, date};

use crate::fixtures::{
    credited, entry, find_item, find_one_time, insert_account, insert_item, insert_one_time,
    insert_plan, item, minutes, one_time, plan, tenant, unsequenced, write,
};

fn ending(ext_id: &str, start: Date, end: Date) -> RecurringItemFields {
    RecurringItemFields {
        end_date: Some(end),
        ..item(ext_id, start)
    }
}

/// Checks that the cascade cancelled `before` from `from`, with credit, recorded `now`.
async fn assert_cancelled_from(
    store: &dyn Store,
    tenant: TenantId,
    before: &RecurringItem,
    from: Date,
    now: Timestamp,
) {
    let after = find_item(store, tenant, before.id).await;
    let what = &before.fields.ext_id;
    assert_eq!(
        after.cancellation,
        Some(Cancellation {
            date: from,
            credit: true
        }),
        "{what} is cancelled from {from}, with credit"
    );
    let fields = RecurringItemFields {
        end_date: Some(from),
        ..before.fields.clone()
    };
    assert_eq!(after.fields, fields, "{what} now ends on {from}");
    assert_eq!(after.version, before.version + 1, "{what}");
    assert_eq!(after.updated_at, now, "{what}");
    assert_eq!(after.deleted_at, None, "{what}");
    let mut history = before.changes.clone();
    history.push(dynabill_app::model::ItemChange {
        credit: Some(true),
        ..entry(ItemChangeKind::Cancellation, from, &fields, now)
    });
    assert_eq!(
        unsequenced(&after.changes),
        unsequenced(&history),
        "{what}'s history records the cancellation"
    );
}

async fn assert_one_time_cancelled(
    store: &dyn Store,
    tenant: TenantId,
    before: &OneTimeItem,
    now: Timestamp,
) {
    let after = find_one_time(store, tenant, before.id).await;
    let what = &before.fields.ext_id;
    assert_eq!(after.cancelled_at, Some(now), "{what} is cancelled");
    assert_eq!(after.fields, before.fields, "{what}");
    assert_eq!(after.version, before.version + 1, "{what}");
    assert_eq!(after.updated_at, now, "{what}");
    assert_eq!(after.deleted_at, None, "{what}");
}

async fn assert_untouched(store: &dyn Store, tenant: TenantId, items: &[&RecurringItem]) {
    for before in items {
        assert_eq!(
            &find_item(store, tenant, before.id).await,
            *before,
            "{} is left alone",
            before.fields.ext_id
        );
    }
}

async fn assert_one_time_untouched(store: &dyn Store, tenant: TenantId, items: &[&OneTimeItem]) {
    for before in items {
        assert_eq!(
            &find_one_time(store, tenant, before.id).await,
            *before,
            "{} is left alone",
            before.fields.ext_id
        );
    }
}

async fn find_plan(store: &dyn Store, tenant: TenantId, plan: &Plan) -> Plan {
    store
        .find_plan(tenant, &dynabill_app::model::RecordKey::Id(plan.id))
        .await
        .unwrap()
        .unwrap()
}

pub async fn cancelling_a_plan_cancels_its_running_items_from_the_later_of_their_start_and_the_date(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let start = date(2025, 1, 1);
    let p = insert_plan(&*store, t, &acc, plan("plan-1", start)).await;
    let q = insert_plan(&*store, t, &acc, plan("plan-2", start)).await;
    let day = date(2025, 6, 15);
    let s = &*store;

    let running = insert_item(s, t, &p, item("running", start)).await;
    let future = insert_item(
        s,
        t,
        &p,
        ending("future", date(2025, 9, 1), date(2026, 9, 1)),
    )
    .await;
    let ends_after = insert_item(s, t, &p, ending("ends-after", start, date(2025, 6, 16))).await;
    let ends_on = insert_item(s, t, &p, ending("ends-on", start, day)).await;
    let ended = insert_item(s, t, &p, ending("ended", start, date(2025, 6, 1))).await;
    let to_cancel = insert_item(s, t, &p, item("cancelled", start)).await;
    let cancelled_fields = RecurringItemFields {
        end_date: Some(date(2025, 7, 1)),
        ..to_cancel.fields.clone()
    };
    let mut cancel = write(
        &to_cancel,
        cancelled_fields.clone(),
        entry(
            ItemChangeKind::Cancellation,
            date(2025, 7, 1),
            &cancelled_fields,
            minutes(1),
        ),
    );
    cancel.cancellation = Some(Cancellation {
        date: date(2025, 7, 1),
        credit: false,
    });
    let to_delete = insert_item(s, t, &p, item("deleted", start)).await;
    let mut delete = write(
        &to_delete,
        to_delete.fields.clone(),
        entry(
            ItemChangeKind::Deleted,
            start,
            &to_delete.fields,
            minutes(1),
        ),
    );
    delete.deleted = true;
    store
        .write_recurring_items(t, None, &[cancel, delete], minutes(1))
        .await
        .unwrap();
    let cancelled = find_item(s, t, to_cancel.id).await;
    let deleted = find_item(s, t, to_delete.id).await;
    let elsewhere = insert_item(s, t, &q, item("elsewhere", start)).await;

    let before = insert_one_time(s, t, &p, one_time("o-before", date(2025, 6, 14))).await;
    let on = insert_one_time(s, t, &p, one_time("o-on", day)).await;
    let after = insert_one_time(s, t, &p, one_time("o-after", date(2025, 12, 1))).await;
    let o_cancelled = insert_one_time(s, t, &p, one_time("o-cancelled", date(2025, 7, 1))).await;
    let o_cancelled = store
        .update_one_time_item(
            t,
            o_cancelled.id,
            o_cancelled.version,
            &o_cancelled.fields,
            OneTimeMark::Cancelled,
            minutes(1),
        )
        .await
        .unwrap();
    let o_deleted = insert_one_time(s, t, &p, one_time("o-deleted", date(2025, 7, 1))).await;
    let o_deleted = store
        .update_one_time_item(
            t,
            o_deleted.id,
            o_deleted.version,
            &o_deleted.fields,
            OneTimeMark::Deleted,
            minutes(1),
        )
        .await
        .unwrap();
    let o_elsewhere = insert_one_time(s, t, &q, one_time("o-elsewhere", date(2025, 7, 1))).await;

    let all = [
        &running,
        &future,
        &ends_after,
        &ends_on,
        &ended,
        &cancelled,
        &deleted,
        &elsewhere,
    ];
    let all_one_time = [&before, &on, &after, &o_cancelled, &o_deleted, &o_elsewhere];
    let stale = store
        .cancel_plan(t, p.id, p.version + 1, credited(day), minutes(5))
        .await;
    assert!(
        matches!(stale, Err(StoreError::Stale)),
        "expected Stale, got {stale:?}"
    );
    assert_untouched(s, t, &all).await;
    assert_one_time_untouched(s, t, &all_one_time).await;

    let now = minutes(5);
    let plan_now = store
        .cancel_plan(t, p.id, p.version, credited(day), now)
        .await
        .unwrap();
    assert_eq!(plan_now.cancel_date, Some(day));

    assert_cancelled_from(s, t, &running, day, now).await;
    assert_cancelled_from(s, t, &ends_after, day, now).await;
    assert_cancelled_from(s, t, &future, date(2025, 9, 1), now).await;
    assert_untouched(s, t, &[&ends_on, &ended, &cancelled, &deleted, &elsewhere]).await;
    assert_one_time_cancelled(s, t, &on, now).await;
    assert_one_time_cancelled(s, t, &after, now).await;
    assert_one_time_untouched(s, t, &[&before, &o_cancelled, &o_deleted, &o_elsewhere]).await;
}

pub async fn deleting_a_plan_cancels_its_items_as_cancelling_does(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let start = date(2025, 1, 1);
    let p = insert_plan(&*store, t, &acc, plan("plan-1", start)).await;
    let day = date(2025, 6, 15);
    let s = &*store;
    let running = insert_item(s, t, &p, item("running", start)).await;
    let future = insert_item(s, t, &p, item("future", date(2025, 8, 1))).await;
    let ended = insert_item(s, t, &p, ending("ended", start, date(2025, 3, 1))).await;
    let due = insert_one_time(s, t, &p, one_time("o-due", date(2025, 7, 1))).await;
    let past = insert_one_time(s, t, &p, one_time("o-past", date(2025, 2, 1))).await;

    let stale = store
        .delete_plan(t, p.id, p.version + 1, day, minutes(5))
        .await;
    assert!(
        matches!(stale, Err(StoreError::Stale)),
        "expected Stale, got {stale:?}"
    );
    assert_untouched(s, t, &[&running, &future, &ended]).await;
    assert_one_time_untouched(s, t, &[&due, &past]).await;

    let now = minutes(5);
    let deleted = store
        .delete_plan(t, p.id, p.version, day, now)
        .await
        .unwrap();
    assert_eq!(deleted.deleted_at, Some(now));
    assert_eq!(deleted.cancel_date, Some(day));
    assert_cancelled_from(s, t, &running, day, now).await;
    assert_cancelled_from(s, t, &future, date(2025, 8, 1), now).await;
    assert_untouched(s, t, &[&ended]).await;
    assert_one_time_cancelled(s, t, &due, now).await;
    assert_one_time_untouched(s, t, &[&past]).await;
    let still_found = find_item(s, t, running.id).await;
    assert_eq!(
        still_found.deleted_at, None,
        "the items of a deleted plan are cancelled, not deleted"
    );
}

pub async fn deleting_an_account_cancels_the_items_of_all_its_plans(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let other = insert_account(&*store, t, "acc-2").await;
    let day = date(2025, 6, 15);
    let start = date(2025, 1, 1);
    let s = &*store;
    let started = insert_plan(s, t, &acc, plan("started", start)).await;
    let later = date(2025, 9, 1);
    let future = insert_plan(
        s,
        t,
        &acc,
        PlanFields {
            end_date: Some(date(2026, 9, 1)),
            ..plan("future", later)
        },
    )
    .await;
    let elsewhere = insert_plan(s, t, &other, plan("elsewhere", start)).await;

    let running = insert_item(s, t, &started, item("running", start)).await;
    let ended = insert_item(s, t, &started, ending("ended", start, date(2025, 5, 1))).await;
    let upcoming = insert_item(s, t, &future, ending("upcoming", later, date(2026, 9, 1))).await;
    let other_running = insert_item(s, t, &elsewhere, item("other-running", start)).await;
    let due = insert_one_time(s, t, &started, one_time("o-due", date(2025, 6, 30))).await;
    let past = insert_one_time(s, t, &started, one_time("o-past", date(2025, 6, 1))).await;
    let setup = insert_one_time(
        s,
        t,
        &future,
        OneTimeItemFields {
            unit_price: rust_decimal::Decimal::ONE_HUNDRED,
            ..one_time("o-setup", later)
        },
    )
    .await;
    let other_due = insert_one_time(s, t, &elsewhere, one_time("o-other", date(2025, 6, 30))).await;

    let stale = store
        .delete_account(t, acc.id, acc.version + 1, day, minutes(5))
        .await;
    assert!(
        matches!(stale, Err(StoreError::Stale)),
        "expected Stale, got {stale:?}"
    );
    assert_untouched(s, t, &[&running, &ended, &upcoming, &other_running]).await;
    assert_one_time_untouched(s, t, &[&due, &past, &setup, &other_due]).await;

    let now = minutes(5);
    store
        .delete_account(t, acc.id, acc.version, day, now)
        .await
        .unwrap();
    assert_eq!(find_plan(s, t, &started).await.cancel_date, Some(day));
    assert_eq!(find_plan(s, t, &future).await.cancel_date, Some(later));
    assert_cancelled_from(s, t, &running, day, now).await;
    assert_cancelled_from(s, t, &upcoming, later, now).await;
    assert_untouched(s, t, &[&ended, &other_running]).await;
    assert_one_time_cancelled(s, t, &due, now).await;
    assert_one_time_cancelled(s, t, &setup, now).await;
    assert_one_time_untouched(s, t, &[&past, &other_due]).await;
    assert_eq!(find_plan(s, t, &elsewhere).await, elsewhere);
}
