//! The contract for accounts: writes, optimistic concurrency, listing, deletion.

use std::sync::Arc;

use dynabill_app::Store;
use dynabill_app::model::{AccountFilter, PageRequest, PlanFilter, RecordKey};
use dynabill_app::store::StoreError;
use dynabill_core::domain::{AccountId, AccountStatus, DueDateMethod, PlanId};
use jiff::civil::date;

use crate::fixtures::{
    EVERYTHING, T0, account, account_ids, credited, full_account, insert_account, insert_plan,
    minutes, parse, plan, tenant,
};

pub async fn an_account_keeps_every_field_exactly_and_is_found_by_id_and_by_ext_id(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let fields = full_account("acc-1");

    let full = store.insert_account(t, &fields, T0).await.unwrap();
    assert_eq!(full.fields, fields);
    assert!(full.credit_balance.is_zero(), "a new account owes nothing");
    assert_eq!(full.created_at, T0);
    assert_eq!(full.updated_at, T0);
    assert_eq!(full.deleted_at, None);
    assert_eq!(full.version, 1);
    let by_id = store
        .find_account(t, &RecordKey::Id(full.id))
        .await
        .unwrap();
    assert_eq!(by_id.as_ref(), Some(&full));
    let by_ext_id = store
        .find_account(t, &RecordKey::ExtId("acc-1".to_owned()))
        .await
        .unwrap();
    assert_eq!(by_ext_id.as_ref(), Some(&full));

    let bare = insert_account(&*store, t, "acc-2").await;
    assert_ne!(bare.id, full.id);
    assert_eq!(
        bare.fields,
        account("acc-2"),
        "absent optional fields stay absent"
    );
    let found = store
        .find_account(t, &RecordKey::Id(bare.id))
        .await
        .unwrap();
    assert_eq!(found, Some(bare));

    let missing = store
        .find_account(t, &RecordKey::ExtId("acc-9".to_owned()))
        .await
        .unwrap();
    assert_eq!(missing, None);
    let missing = store
        .find_account(t, &RecordKey::Id(AccountId(full.id.0 + 1000)))
        .await
        .unwrap();
    assert_eq!(missing, None);
}

pub async fn an_ext_id_stays_taken_even_after_its_account_is_deleted(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let first = insert_account(&*store, t, "acc-1").await;

    let again = store.insert_account(t, &account("acc-1"), T0).await;
    assert!(
        matches!(again, Err(StoreError::ExtIdTaken)),
        "expected ExtIdTaken, got {again:?}"
    );

    let second = insert_account(&*store, t, "acc-2").await;
    let renamed = store
        .update_account(t, second.id, second.version, &account("acc-1"), minutes(1))
        .await;
    assert!(
        matches!(renamed, Err(StoreError::ExtIdTaken)),
        "expected ExtIdTaken, got {renamed:?}"
    );
    let unchanged = store
        .find_account(t, &RecordKey::Id(second.id))
        .await
        .unwrap();
    assert_eq!(unchanged, Some(second));

    store
        .delete_account(t, first.id, first.version, date(2025, 3, 14), minutes(2))
        .await
        .unwrap();
    let reused = store.insert_account(t, &account("acc-1"), minutes(3)).await;
    assert!(
        matches!(reused, Err(StoreError::ExtIdTaken)),
        "a deleted account's ExtID must never be reused, got {reused:?}"
    );
}

pub async fn an_account_update_applies_only_at_the_version_it_was_read(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let before = store
        .insert_account(t, &full_account("acc-1"), T0)
        .await
        .unwrap();

    let mut changed = account("acc-1b");
    changed.status = AccountStatus::Inactive;
    changed.due_date_method = DueDateMethod::EndOfMonthPlusDays;
    changed.country = Some(parse("FR"));
    changed.currency = parse("JPY");
    changed.email = parse("new@example.org");
    let after = store
        .update_account(t, before.id, before.version, &changed, minutes(1))
        .await
        .unwrap();
    assert_eq!(after.id, before.id);
    assert_eq!(
        after.fields, changed,
        "optional fields set to None are cleared"
    );
    assert_eq!(after.version, before.version + 1);
    assert_eq!(after.created_at, T0);
    assert_eq!(after.updated_at, minutes(1));
    assert_eq!(
        store
            .find_account(t, &RecordKey::Id(before.id))
            .await
            .unwrap(),
        Some(after.clone())
    );
    let old_ext_id = store
        .find_account(t, &RecordKey::ExtId("acc-1".to_owned()))
        .await
        .unwrap();
    assert_eq!(
        old_ext_id, None,
        "the old ExtID no longer names the account"
    );

    let stale = store
        .update_account(
            t,
            before.id,
            before.version,
            &full_account("acc-1"),
            minutes(2),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::Stale)),
        "expected Stale, got {stale:?}"
    );
    let unknown = store
        .update_account(
            t,
            AccountId(before.id.0 + 1000),
            after.version,
            &changed,
            minutes(2),
        )
        .await;
    assert!(
        matches!(unknown, Err(StoreError::Stale)),
        "expected Stale for an unknown account, got {unknown:?}"
    );
    assert_eq!(
        store
            .find_account(t, &RecordKey::Id(before.id))
            .await
            .unwrap(),
        Some(after),
        "a refused update changes nothing"
    );
}

pub async fn listing_accounts_filters_by_id_ext_ids_status_update_time_and_deletion(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let with = |ext_id: &str, ext_id2: Option<&str>, status| {
        let mut f = account(ext_id);
        f.ext_id2 = ext_id2.map(str::to_owned);
        f.status = status;
        f
    };
    let a1 = store
        .insert_account(t, &with("a-1", Some("grp"), AccountStatus::Active), T0)
        .await
        .unwrap()
        .id
        .0;
    let a2 = store
        .insert_account(
            t,
            &with("a-2", Some("grp"), AccountStatus::Inactive),
            minutes(1),
        )
        .await
        .unwrap()
        .id
        .0;
    let a3 = store
        .insert_account(
            t,
            &with("a-3", None, AccountStatus::BillingIssues),
            minutes(2),
        )
        .await
        .unwrap()
        .id
        .0;
    let a4 = store
        .insert_account(t, &with("a-4", Some("grp"), AccountStatus::Active), T0)
        .await
        .unwrap();
    store
        .delete_account(t, a4.id, a4.version, date(2025, 3, 14), minutes(3))
        .await
        .unwrap();
    let a4 = a4.id.0;

    let ids = |filter: AccountFilter| account_ids(&*store, t, filter);
    let deleted_too = || AccountFilter {
        include_deleted: true,
        ..AccountFilter::default()
    };
    assert_eq!(ids(AccountFilter::default()).await, [a1, a2, a3]);
    assert_eq!(ids(deleted_too()).await, [a1, a2, a3, a4]);
    let by_id = |id| AccountFilter {
        id: Some(AccountId(id)),
        ..AccountFilter::default()
    };
    assert_eq!(ids(by_id(a2)).await, [a2]);
    assert_eq!(ids(by_id(a4)).await, [] as [i64; 0]);
    let deleted_by_id = AccountFilter {
        id: Some(AccountId(a4)),
        ..deleted_too()
    };
    assert_eq!(ids(deleted_by_id).await, [a4]);
    let by_ext_id = AccountFilter {
        ext_id: Some("a-3".to_owned()),
        ..AccountFilter::default()
    };
    assert_eq!(ids(by_ext_id).await, [a3]);
    let by_ext_id2 = || AccountFilter {
        ext_id2: Some("grp".to_owned()),
        ..AccountFilter::default()
    };
    assert_eq!(ids(by_ext_id2()).await, [a1, a2]);
    let by_ext_id2_deleted_too = AccountFilter {
        include_deleted: true,
        ..by_ext_id2()
    };
    assert_eq!(ids(by_ext_id2_deleted_too).await, [a1, a2, a4]);
    for (status, expected) in [
        (AccountStatus::Active, vec![a1]),
        (AccountStatus::Inactive, vec![a2]),
        (AccountStatus::BillingIssues, vec![a3]),
    ] {
        let by_status = AccountFilter {
            status: Some(status),
            ..AccountFilter::default()
        };
        assert_eq!(ids(by_status).await, expected, "status {status:?}");
    }
    let since = |at| AccountFilter {
        updated_since: Some(at),
        ..AccountFilter::default()
    };
    assert_eq!(
        ids(since(minutes(1))).await,
        [a2, a3],
        "the bound is inclusive"
    );
    let just_after = minutes(1) + jiff::SignedDuration::from_micros(1);
    assert_eq!(ids(since(just_after)).await, [a3]);
    let deleted_since = AccountFilter {
        updated_since: Some(minutes(3)),
        ..deleted_too()
    };
    assert_eq!(ids(deleted_since).await, [a4], "deleting is an update");
    let combined = AccountFilter {
        status: Some(AccountStatus::Inactive),
        ..by_ext_id2()
    };
    assert_eq!(ids(combined).await, [a2]);
}

pub async fn account_pages_follow_id_order_with_the_full_total_and_a_resume_key(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let mut inserted = Vec::new();
    for n in 0..7 {
        let mut fields = account(&format!("acc-{n}"));
        if n % 2 == 1 {
            fields.status = AccountStatus::Inactive;
        }
        inserted.push(store.insert_account(t, &fields, T0).await.unwrap().id.0);
    }
    assert!(inserted.is_sorted(), "IDs grow with insertion");

    let all = AccountFilter::default();
    let mut seen = Vec::new();
    let mut after = None;
    let mut sizes = Vec::new();
    loop {
        let page = store
            .list_accounts(
                t,
                &all,
                PageRequest {
                    size: 3,
                    after,
                    counted: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(page.total, 7, "total counts every page, not this one");
        sizes.push(page.items.len());
        seen.extend(page.items.iter().map(|a| a.id.0));
        match page.next_after {
            Some(next) => {
                assert_eq!(Some(&next), seen.last(), "resume after the last item shown");
                after = Some(next);
            }
            None => break,
        }
    }
    assert_eq!(sizes, [3, 3, 1]);
    assert_eq!(seen, inserted);

    let exact = store
        .list_accounts(
            t,
            &all,
            PageRequest {
                size: 7,
                after: None,
                counted: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(exact.items.len(), 7);
    assert_eq!(
        exact.next_after, None,
        "a page that holds the rest has no next"
    );

    let inactive = AccountFilter {
        status: Some(AccountStatus::Inactive),
        ..AccountFilter::default()
    };
    let first = store
        .list_accounts(
            t,
            &inactive,
            PageRequest {
                size: 2,
                after: None,
                counted: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.total, 3);
    let ids: Vec<i64> = first.items.iter().map(|a| a.id.0).collect();
    assert_eq!(ids, [inserted[1], inserted[3]]);
    let rest = store
        .list_accounts(
            t,
            &inactive,
            PageRequest {
                size: 2,
                after: first.next_after,
                counted: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.total, 3);
    let ids: Vec<i64> = rest.items.iter().map(|a| a.id.0).collect();
    assert_eq!(ids, [inserted[5]]);
    assert_eq!(rest.next_after, None);
}

pub async fn deleting_an_account_cancels_its_open_plans_in_the_same_step(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc-1").await;
    let other = insert_account(&*store, t, "acc-2").await;
    let today = date(2025, 6, 15);
    let started = insert_plan(&*store, t, &acc, plan("started", date(2025, 1, 1))).await;
    let future = insert_plan(&*store, t, &acc, plan("future", date(2025, 9, 1))).await;
    let cancelled = insert_plan(&*store, t, &acc, plan("cancelled", date(2025, 1, 1))).await;
    let cancelled = store
        .cancel_plan(
            t,
            cancelled.id,
            cancelled.version,
            credited(date(2025, 3, 1)),
            minutes(1),
        )
        .await
        .unwrap();
    let elsewhere = insert_plan(&*store, t, &other, plan("elsewhere", date(2025, 1, 1))).await;

    let deleted = store
        .delete_account(t, acc.id, acc.version, today, minutes(5))
        .await
        .unwrap();
    assert_eq!(deleted.deleted_at, Some(minutes(5)));
    assert_eq!(deleted.updated_at, minutes(5));
    assert_eq!(deleted.version, acc.version + 1);
    assert_eq!(deleted.fields, acc.fields);
    assert_eq!(
        store.find_account(t, &RecordKey::Id(acc.id)).await.unwrap(),
        Some(deleted),
        "a deleted account is still found by key"
    );
    assert_eq!(
        account_ids(&*store, t, AccountFilter::default()).await,
        [other.id.0]
    );

    let find = |id: i64| {
        let store = Arc::clone(&store);
        async move {
            store
                .find_plan(t, &RecordKey::Id(PlanId(id)))
                .await
                .unwrap()
                .unwrap()
        }
    };
    let started_now = find(started.id.0).await;
    assert_eq!(started_now.cancel_date, Some(today));
    assert_eq!(started_now.updated_at, minutes(5));
    assert_eq!(started_now.version, started.version + 1);
    assert_eq!(
        started_now.deleted_at, None,
        "plans are cancelled, not deleted"
    );
    assert_eq!(
        find(future.id.0).await.cancel_date,
        Some(date(2025, 9, 1)),
        "a plan that has not started is cancelled from its start"
    );
    assert_eq!(
        find(cancelled.id.0).await,
        cancelled,
        "an already cancelled plan keeps its date and version"
    );
    assert_eq!(find(elsewhere.id.0).await, elsewhere);
}

pub async fn deleting_an_account_at_a_stale_version_changes_nothing(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let read = insert_account(&*store, t, "acc-1").await;
    let open = insert_plan(&*store, t, &read, plan("open", date(2025, 1, 1))).await;
    let mut renamed = read.fields.clone();
    renamed.name = "Renamed".to_owned();
    let current = store
        .update_account(t, read.id, read.version, &renamed, minutes(1))
        .await
        .unwrap();

    let stale = store
        .delete_account(t, read.id, read.version, date(2025, 6, 15), minutes(2))
        .await;
    assert!(
        matches!(stale, Err(StoreError::Stale)),
        "expected Stale, got {stale:?}"
    );
    let unknown = store
        .delete_account(
            t,
            AccountId(read.id.0 + 1000),
            1,
            date(2025, 6, 15),
            minutes(2),
        )
        .await;
    assert!(
        matches!(unknown, Err(StoreError::Stale)),
        "expected Stale for an unknown account, got {unknown:?}"
    );

    assert_eq!(
        store
            .find_account(t, &RecordKey::Id(read.id))
            .await
            .unwrap(),
        Some(current)
    );
    let plans = store
        .list_plans(t, &PlanFilter::default(), date(2025, 6, 15), EVERYTHING)
        .await
        .unwrap();
    assert_eq!(plans.items, [open], "the plan was not cancelled");
}
