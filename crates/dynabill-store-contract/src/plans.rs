//! The contract for account plans: writes, listing with the derived status, cancel, delete.

use std::sync::Arc;

use dynabill_app::Store;
use dynabill_app::model::{PageRequest, Plan, PlanFields, PlanFilter, RecordKey};
use dynabill_app::store::StoreError;
use dynabill_core::domain::{AccountId, PlanId, PlanStatus};
use jiff::civil::{Date, date};

use crate::fixtures::{
    T0, account, credited, insert_account, insert_plan, minutes, parse, plan, plan_ids, tenant,
};

fn full_plan(ext_id: &str) -> PlanFields {
    PlanFields {
        ext_id: ext_id.to_owned(),
        name: Some("Gold – 'annual' \"plan\" ✓".to_owned()),
        start_date: date(2025, 1, 31),
        end_date: Some(date(2026, 1, 31)),
        auto_renew: true,
        renewal_term_months: 24,
        billing_day: Some(31),
        currency: parse("JPY"),
        po_number: Some("PO-2025-001".to_owned()),
        notes: Some("line one\nline two".to_owned()),
    }
}

async fn find(store: &dyn Store, tenant: dynabill_core::domain::TenantId, id: PlanId) -> Plan {
    store
        .find_plan(tenant, &RecordKey::Id(id))
        .await
        .unwrap()
        .expect("the plan exists")
}

pub async fn a_plan_keeps_every_field_exactly_and_names_its_accounts_current_ext_id(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let fields = full_plan("plan-1");

    let full = store.insert_plan(t, acc.id, &fields, T0).await.unwrap();
    assert_eq!(full.fields, fields);
    assert_eq!(full.account_id, acc.id);
    assert_eq!(full.account_ext_id, "acc-1");
    assert_eq!(full.cancel_date, None);
    assert_eq!(full.created_at, T0);
    assert_eq!(full.updated_at, T0);
    assert_eq!(full.deleted_at, None);
    assert_eq!(full.version, 1);
    assert_eq!(find(&*store, t, full.id).await, full);
    let by_ext_id = store
        .find_plan(t, &RecordKey::ExtId("plan-1".to_owned()))
        .await
        .unwrap();
    assert_eq!(by_ext_id, Some(full.clone()));

    let bare_fields = plan("plan-2", date(2024, 2, 29));
    let bare = store
        .insert_plan(t, acc.id, &bare_fields, T0)
        .await
        .unwrap();
    assert_eq!(
        bare.fields, bare_fields,
        "absent optional fields stay absent"
    );
    assert_eq!(find(&*store, t, bare.id).await, bare);

    let missing = store
        .find_plan(t, &RecordKey::ExtId("plan-9".to_owned()))
        .await
        .unwrap();
    assert_eq!(missing, None);

    store
        .update_account(t, acc.id, acc.version, &account("acc-renamed"), minutes(1))
        .await
        .unwrap();
    assert_eq!(
        find(&*store, t, full.id).await.account_ext_id,
        "acc-renamed",
        "a plan shows its account's ExtID as it is now"
    );
}

pub async fn a_plan_ext_id_is_unique_across_the_tenants_accounts_even_once_deleted(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let one = insert_account(&*store, t, "acc-1").await;
    let two = insert_account(&*store, t, "acc-2").await;
    let first = insert_plan(&*store, t, &one, plan("plan-1", date(2025, 1, 1))).await;

    let again = store
        .insert_plan(t, two.id, &plan("plan-1", date(2025, 1, 1)), T0)
        .await;
    assert!(
        matches!(again, Err(StoreError::ExtIdTaken)),
        "expected ExtIdTaken, got {again:?}"
    );
    let second = insert_plan(&*store, t, &two, plan("plan-2", date(2025, 1, 1))).await;
    let renamed = store
        .update_plan(
            t,
            second.id,
            second.version,
            &plan("plan-1", date(2025, 1, 1)),
            minutes(1),
        )
        .await;
    assert!(
        matches!(renamed, Err(StoreError::ExtIdTaken)),
        "expected ExtIdTaken, got {renamed:?}"
    );
    assert_eq!(find(&*store, t, second.id).await, second);

    store
        .delete_plan(t, first.id, first.version, date(2025, 6, 1), minutes(2))
        .await
        .unwrap();
    let reused = store
        .insert_plan(t, one.id, &plan("plan-1", date(2025, 1, 1)), minutes(3))
        .await;
    assert!(
        matches!(reused, Err(StoreError::ExtIdTaken)),
        "a deleted plan's ExtID must never be reused, got {reused:?}"
    );
}

pub async fn a_plan_update_applies_only_at_the_version_it_was_read(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let before = insert_plan(&*store, t, &acc, full_plan("plan-1")).await;

    let changed = plan("plan-1b", date(2025, 2, 1));
    let after = store
        .update_plan(t, before.id, before.version, &changed, minutes(1))
        .await
        .unwrap();
    assert_eq!(
        after.fields, changed,
        "optional fields set to None are cleared"
    );
    assert_eq!(after.version, before.version + 1);
    assert_eq!(after.created_at, T0);
    assert_eq!(after.updated_at, minutes(1));
    assert_eq!(after.account_id, acc.id);
    assert_eq!(find(&*store, t, before.id).await, after);

    let stale = store
        .update_plan(
            t,
            before.id,
            before.version,
            &full_plan("plan-1"),
            minutes(2),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::Stale)),
        "expected Stale, got {stale:?}"
    );
    let unknown = store
        .update_plan(t, PlanId(before.id.0 + 1000), 1, &changed, minutes(2))
        .await;
    assert!(
        matches!(unknown, Err(StoreError::Stale)),
        "expected Stale for an unknown plan, got {unknown:?}"
    );
    assert_eq!(
        find(&*store, t, before.id).await,
        after,
        "a refused update changes nothing"
    );
}

pub async fn a_plan_cannot_be_added_to_a_deleted_or_unknown_account(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let gone = insert_account(&*store, t, "gone").await;
    store
        .delete_account(t, gone.id, gone.version, date(2025, 6, 1), minutes(1))
        .await
        .unwrap();

    let on_deleted = store
        .insert_plan(t, gone.id, &plan("plan-1", date(2025, 1, 1)), minutes(2))
        .await;
    assert!(
        matches!(on_deleted, Err(StoreError::Stale)),
        "expected Stale for a deleted account, got {on_deleted:?}"
    );
    let on_unknown = store
        .insert_plan(
            t,
            AccountId(gone.id.0 + 1000),
            &plan("plan-2", date(2025, 1, 1)),
            minutes(2),
        )
        .await;
    assert!(
        matches!(on_unknown, Err(StoreError::Stale)),
        "expected Stale for an unknown account, got {on_unknown:?}"
    );
    let everything = PlanFilter {
        include_deleted: true,
        ..PlanFilter::default()
    };
    assert_eq!(
        plan_ids(&*store, t, everything, date(2025, 6, 1)).await,
        [] as [i64; 0]
    );
}

pub async fn listing_plans_filters_by_id_ext_id_account_and_deletion(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let one = insert_account(&*store, t, "acc-1").await;
    let two = insert_account(&*store, t, "acc-2").await;
    let start = date(2025, 1, 1);
    let p1 = insert_plan(&*store, t, &one, plan("p-1", start)).await.id.0;
    let p2 = insert_plan(&*store, t, &two, plan("p-2", start)).await.id.0;
    let p3 = insert_plan(&*store, t, &one, plan("p-3", start)).await;
    store
        .delete_plan(t, p3.id, p3.version, date(2025, 6, 1), minutes(1))
        .await
        .unwrap();
    let p3 = p3.id.0;
    let today = date(2025, 6, 15);

    let ids = |filter: PlanFilter| plan_ids(&*store, t, filter, today);
    let deleted_too = || PlanFilter {
        include_deleted: true,
        ..PlanFilter::default()
    };
    assert_eq!(ids(PlanFilter::default()).await, [p1, p2]);
    assert_eq!(ids(deleted_too()).await, [p1, p2, p3]);
    let by_id = PlanFilter {
        id: Some(PlanId(p2)),
        ..PlanFilter::default()
    };
    assert_eq!(ids(by_id).await, [p2]);
    let by_ext_id = PlanFilter {
        ext_id: Some("p-1".to_owned()),
        ..PlanFilter::default()
    };
    assert_eq!(ids(by_ext_id).await, [p1]);
    let deleted_by_ext_id = PlanFilter {
        ext_id: Some("p-3".to_owned()),
        ..PlanFilter::default()
    };
    assert_eq!(ids(deleted_by_ext_id).await, [] as [i64; 0]);
    let by_account = PlanFilter {
        account_id: Some(one.id),
        ..deleted_too()
    };
    assert_eq!(ids(by_account).await, [p1, p3]);
    let by_account_ext_id = PlanFilter {
        account_ext_id: Some("acc-1".to_owned()),
        ..PlanFilter::default()
    };
    assert_eq!(ids(by_account_ext_id).await, [p1]);
    let by_other_account_ext_id = PlanFilter {
        account_ext_id: Some("acc-2".to_owned()),
        ..PlanFilter::default()
    };
    assert_eq!(ids(by_other_account_ext_id).await, [p2]);
    let by_unknown_account = PlanFilter {
        account_ext_id: Some("acc-9".to_owned()),
        ..PlanFilter::default()
    };
    assert_eq!(ids(by_unknown_account).await, [] as [i64; 0]);
}

pub async fn the_plan_status_filter_is_derived_from_the_given_today(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let start = date(2025, 1, 1);
    let with = |ext_id: &str, end: Option<Date>, auto_renew: bool| PlanFields {
        end_date: end,
        auto_renew,
        ..plan(ext_id, start)
    };
    let open = insert_plan(&*store, t, &acc, with("open", None, false)).await;
    let ends_16th = insert_plan(
        &*store,
        t,
        &acc,
        with("ends-16th", Some(date(2025, 6, 16)), false),
    )
    .await;
    let ended_15th = insert_plan(
        &*store,
        t,
        &acc,
        with("ended-15th", Some(date(2025, 6, 15)), false),
    )
    .await;
    let renews = insert_plan(
        &*store,
        t,
        &acc,
        with("renews", Some(date(2025, 3, 1)), true),
    )
    .await;
    let to_cancel = insert_plan(&*store, t, &acc, with("cancels-later", None, false)).await;
    store
        .cancel_plan(
            t,
            to_cancel.id,
            to_cancel.version,
            credited(date(2025, 12, 31)),
            minutes(1),
        )
        .await
        .unwrap();
    let to_cancel_ended = insert_plan(
        &*store,
        t,
        &acc,
        with("cancelled-ended", Some(date(2025, 3, 1)), false),
    )
    .await;
    store
        .cancel_plan(
            t,
            to_cancel_ended.id,
            to_cancel_ended.version,
            credited(date(2025, 2, 1)),
            minutes(1),
        )
        .await
        .unwrap();
    let (open, ends_16th, ended_15th, renews, cancelled, cancelled_ended) = (
        open.id.0,
        ends_16th.id.0,
        ended_15th.id.0,
        renews.id.0,
        to_cancel.id.0,
        to_cancel_ended.id.0,
    );

    // The end date is exclusive: a plan ending on the 16th is still active on the 15th.
    let cases = [
        (
            date(2025, 6, 15),
            PlanStatus::Active,
            vec![open, ends_16th, renews],
        ),
        (date(2025, 6, 15), PlanStatus::Expired, vec![ended_15th]),
        (
            date(2025, 6, 15),
            PlanStatus::Cancelled,
            vec![cancelled, cancelled_ended],
        ),
        (date(2025, 6, 16), PlanStatus::Active, vec![open, renews]),
        (
            date(2025, 6, 16),
            PlanStatus::Expired,
            vec![ends_16th, ended_15th],
        ),
        (date(2025, 6, 14), PlanStatus::Expired, vec![]),
    ];
    for (today, status, expected) in cases {
        let filter = PlanFilter {
            status: Some(status),
            ..PlanFilter::default()
        };
        let page = store
            .list_plans(t, &filter, today, crate::fixtures::EVERYTHING)
            .await
            .unwrap();
        let ids: Vec<i64> = page.items.iter().map(|p| p.id.0).collect();
        assert_eq!(ids, expected, "{status:?} on {today}");
        assert_eq!(page.total, expected.len() as i64, "{status:?} on {today}");
        for plan in &page.items {
            assert_eq!(
                plan.status(today),
                status,
                "the SQL agrees with PlanStatus::on"
            );
        }
    }
}

pub async fn plan_pages_follow_id_order_with_the_full_total_and_a_resume_key(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let one = insert_account(&*store, t, "acc-1").await;
    let two = insert_account(&*store, t, "acc-2").await;
    let mut on_one = Vec::new();
    for n in 0..5 {
        let on = if n % 2 == 0 { &one } else { &two };
        let p = insert_plan(&*store, t, on, plan(&format!("p-{n}"), date(2025, 1, 1))).await;
        if n % 2 == 0 {
            on_one.push(p.id.0);
        }
    }

    let filter = PlanFilter {
        account_ext_id: Some("acc-1".to_owned()),
        ..PlanFilter::default()
    };
    let today = date(2025, 6, 15);
    let first = store
        .list_plans(
            t,
            &filter,
            today,
            PageRequest {
                size: 2,
                after: None,
                counted: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.total, 3);
    let ids: Vec<i64> = first.items.iter().map(|p| p.id.0).collect();
    assert_eq!(ids, on_one[..2]);
    assert_eq!(first.next_after, Some(on_one[1]));
    let rest = store
        .list_plans(
            t,
            &filter,
            today,
            PageRequest {
                size: 2,
                after: first.next_after,
                counted: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.total, 3);
    let ids: Vec<i64> = rest.items.iter().map(|p| p.id.0).collect();
    assert_eq!(ids, on_one[2..]);
    assert_eq!(rest.next_after, None);
}

pub async fn cancelling_a_plan_records_its_date_at_the_version_it_was_read(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let open = insert_plan(&*store, t, &acc, full_plan("plan-1")).await;

    let cancelled = store
        .cancel_plan(
            t,
            open.id,
            open.version,
            credited(date(2025, 7, 1)),
            minutes(1),
        )
        .await
        .unwrap();
    assert_eq!(cancelled.cancel_date, Some(date(2025, 7, 1)));
    assert_eq!(cancelled.fields, open.fields);
    assert_eq!(cancelled.version, open.version + 1);
    assert_eq!(cancelled.updated_at, minutes(1));
    assert_eq!(cancelled.deleted_at, None);
    assert_eq!(find(&*store, t, open.id).await, cancelled);

    let stale = store
        .cancel_plan(
            t,
            open.id,
            open.version,
            credited(date(2025, 8, 1)),
            minutes(2),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::Stale)),
        "expected Stale, got {stale:?}"
    );
    assert_eq!(find(&*store, t, open.id).await, cancelled);
}

pub async fn deleting_a_plan_hides_it_and_cancels_it_unless_already_cancelled(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let open = insert_plan(&*store, t, &acc, plan("open", date(2025, 1, 1))).await;
    let earlier = insert_plan(&*store, t, &acc, plan("earlier", date(2025, 1, 1))).await;
    let earlier = store
        .cancel_plan(
            t,
            earlier.id,
            earlier.version,
            credited(date(2025, 5, 1)),
            minutes(1),
        )
        .await
        .unwrap();
    let today = date(2025, 6, 15);

    let deleted = store
        .delete_plan(t, open.id, open.version, today, minutes(2))
        .await
        .unwrap();
    assert_eq!(deleted.deleted_at, Some(minutes(2)));
    assert_eq!(deleted.cancel_date, Some(today));
    assert_eq!(deleted.version, open.version + 1);
    assert_eq!(deleted.fields, open.fields);
    assert_eq!(
        find(&*store, t, open.id).await,
        deleted,
        "still found by key"
    );

    let deleted_earlier = store
        .delete_plan(t, earlier.id, earlier.version, today, minutes(2))
        .await
        .unwrap();
    assert_eq!(deleted_earlier.cancel_date, Some(date(2025, 5, 1)));

    let stale = store
        .delete_plan(t, open.id, open.version, today, minutes(3))
        .await;
    assert!(
        matches!(stale, Err(StoreError::Stale)),
        "expected Stale, got {stale:?}"
    );
    assert_eq!(
        plan_ids(&*store, t, PlanFilter::default(), today).await,
        [] as [i64; 0]
    );
}
