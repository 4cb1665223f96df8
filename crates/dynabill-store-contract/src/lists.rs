//! List totals: exact for the snapshot they are read in, whatever changed before
//! (creates, status changes, deletions, in several tenants), and the total a later
//! page names is the one it reports.

use std::sync::Arc;

use dynabill_app::Store;
use dynabill_app::model::{AccountFilter, PageRequest, PlanFilter};
use dynabill_core::domain::AccountStatus;
use jiff::civil::date;

use crate::fixtures::{EVERYTHING, T0, account, insert_plan, plan, tenant};

/// Every account filter the totals are kept for, and how many records each holds,
/// read page by page.
async fn account_totals(store: &dyn Store, t: dynabill_core::domain::TenantId) -> Vec<(i64, i64)> {
    let mut totals = Vec::new();
    for include_deleted in [false, true] {
        for status in [
            None,
            Some(AccountStatus::Active),
            Some(AccountStatus::Inactive),
            Some(AccountStatus::BillingIssues),
        ] {
            let filter = AccountFilter {
                status,
                include_deleted,
                ..AccountFilter::default()
            };
            let page = store.list_accounts(t, &filter, EVERYTHING).await.unwrap();
            totals.push((page.total, page.items.len() as i64));
        }
    }
    totals
}

pub async fn list_totals_stay_exact_through_creates_status_changes_and_deletions(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let other = tenant(&*store, "app-2").await;
    let mut accounts = Vec::new();
    for n in 0..12 {
        let mut fields = account(&format!("acc-{n}"));
        if n % 3 == 1 {
            fields.status = AccountStatus::Inactive;
        }
        accounts.push(store.insert_account(t, &fields, T0).await.unwrap());
        store
            .insert_account(other, &account(&format!("other-{n}")), T0)
            .await
            .unwrap();
    }
    // Status changes (and an update that changes no status), then deletions.
    for (n, a) in accounts.iter_mut().enumerate().take(6) {
        let mut fields = a.fields.clone();
        fields.status = match n % 3 {
            0 => AccountStatus::BillingIssues,
            1 => AccountStatus::Active,
            _ => fields.status,
        };
        fields.name = format!("renamed {n}");
        *a = store
            .update_account(t, a.id, a.version, &fields, T0)
            .await
            .unwrap();
    }
    for a in accounts.iter().skip(3).step_by(2) {
        store
            .delete_account(t, a.id, a.version, date(2025, 1, 1), T0)
            .await
            .unwrap();
    }
    for (total, listed) in account_totals(&*store, t).await {
        assert_eq!(total, listed, "a total counts what its list holds");
    }
    let live = store
        .list_accounts(t, &AccountFilter::default(), EVERYTHING)
        .await
        .unwrap();
    assert_eq!(live.total, 12 - 5);
    let theirs = store
        .list_accounts(other, &AccountFilter::default(), EVERYTHING)
        .await
        .unwrap();
    assert_eq!(theirs.total, 12, "another tenant's records are not counted");

    // Plans: created, one deleted.
    let owner = &accounts[0];
    let mut plans = Vec::new();
    for n in 0..4 {
        plans.push(insert_plan(&*store, t, owner, plan(&format!("p-{n}"), date(2025, 1, 1))).await);
    }
    store
        .delete_plan(t, plans[1].id, plans[1].version, date(2025, 1, 1), T0)
        .await
        .unwrap();
    for (include_deleted, expected) in [(false, 3), (true, 4)] {
        let filter = PlanFilter {
            include_deleted,
            ..PlanFilter::default()
        };
        let page = store
            .list_plans(t, &filter, date(2025, 1, 1), EVERYTHING)
            .await
            .unwrap();
        assert_eq!(
            (page.total, page.items.len()),
            (expected, expected as usize)
        );
    }
}

pub async fn a_later_page_reports_the_total_its_request_names(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            store
                .insert_account(t, &account(&format!("acc-{n}")), T0)
                .await
                .unwrap()
                .id
                .0,
        );
    }
    let first = store
        .list_accounts(t, &AccountFilter::default(), PageRequest::first(2))
        .await
        .unwrap();
    assert_eq!(first.total, 5);
    store.insert_account(t, &account("late"), T0).await.unwrap();
    let next = PageRequest::first(2).next(&first).expect("a second page");
    assert_eq!(next.counted, Some(5));
    let second = store
        .list_accounts(t, &AccountFilter::default(), next)
        .await
        .unwrap();
    assert_eq!(second.total, 5, "the total counted with the first page");
    let ids_seen: Vec<i64> = second.items.iter().map(|a| a.id.0).collect();
    assert_eq!(ids_seen, ids[2..4]);
    let recounted = store
        .list_accounts(
            t,
            &AccountFilter::default(),
            PageRequest {
                counted: None,
                ..next
            },
        )
        .await
        .unwrap();
    assert_eq!(recounted.total, 6, "without one, the total is counted now");
}
