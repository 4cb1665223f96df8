//! Consistency the backends owe alike: a list's page and its total come from one
//! snapshot, and each unique constraint is reported as its own error.

use std::sync::Arc;

use dynabill_app::Store;
use dynabill_app::model::{AccountFilter, ItemFilter, OneTimeMark, Page, PlanFilter, RecordKey};
use dynabill_app::store::StoreError;
use dynabill_core::domain::{InvoiceStatus, TenantId};
use jiff::civil::date;
use tokio::task::JoinHandle;

use crate::fixtures::{
    EVERYTHING, T0, account, book, created, insert_account, insert_one_time, insert_plan, item,
    january_bill, minutes, new_tenant_with_user, one_time, plan, tenant, write,
};

/// Records each writer adds while the lists are read.
const ADDED: usize = 40;
/// Writers adding records at once.
const WRITERS: usize = 4;

/// Starts `WRITERS` tasks that each run `add` `ADDED` times (given the writer and
/// the round), so that commits keep landing while the caller reads.
fn keep_adding<F, Fut>(store: &Arc<dyn Store>, add: F) -> Vec<JoinHandle<()>>
where
    F: Fn(Arc<dyn Store>, usize, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    (0..WRITERS)
        .map(|writer| {
            let store = Arc::clone(store);
            let add = add.clone();
            tokio::spawn(async move {
                for round in 0..ADDED {
                    add(Arc::clone(&store), writer, round).await;
                }
            })
        })
        .collect()
}

/// Reads pages (which hold everything) until the writers are done, and checks
/// that each page's total counts exactly the records on it.
async fn read_while_adding<T, Fut>(writers: Vec<JoinHandle<()>>, what: &str, read: impl Fn() -> Fut)
where
    Fut: Future<Output = Result<Page<T>, StoreError>>,
{
    let mut reads = 0;
    loop {
        let last = writers.iter().all(JoinHandle::is_finished);
        let page = read().await.expect("listing");
        assert_eq!(page.next_after, None, "everything fits on one page");
        assert_eq!(
            page.total,
            page.items.len() as i64,
            "a page of {} {what} said the filter matched {} (read {reads})",
            page.items.len(),
            page.total
        );
        reads += 1;
        if last {
            break;
        }
    }
    for writer in writers {
        writer.await.expect("a writer panicked");
    }
    let page = read().await.expect("listing");
    assert_eq!(
        page.items.len(),
        WRITERS * ADDED,
        "every {what} written is listed"
    );
}

pub async fn an_account_page_counts_what_it_lists_while_accounts_are_added(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let writers = keep_adding(&store, move |store, writer, round| async move {
        store
            .insert_account(t, &account(&format!("acc-{writer}-{round}")), T0)
            .await
            .expect("inserting an account");
    });
    let all = AccountFilter::default();
    read_while_adding(writers, "accounts", || {
        store.list_accounts(t, &all, EVERYTHING)
    })
    .await;
}

pub async fn a_plan_page_counts_what_it_lists_while_plans_are_added(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let owner = insert_account(&*store, t, "owner").await;
    let writers = keep_adding(&store, move |store, writer, round| async move {
        let fields = plan(&format!("plan-{writer}-{round}"), date(2025, 1, 1));
        store
            .insert_plan(t, owner.id, &fields, T0)
            .await
            .expect("inserting a plan");
    });
    let today = date(2025, 6, 1);
    let all = PlanFilter::default();
    read_while_adding(writers, "plans", || {
        store.list_plans(t, &all, today, EVERYTHING)
    })
    .await;
}

pub async fn item_pages_count_what_they_list_while_items_are_added(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let owner = insert_account(&*store, t, "owner").await;
    let host = insert_plan(&*store, t, &owner, plan("host", date(2025, 1, 1))).await;
    let plan_id = host.id;
    let writers = keep_adding(&store, move |store, writer, round| async move {
        let fields = item(&format!("item-{writer}-{round}"), date(2025, 1, 1));
        store
            .insert_recurring_item(t, plan_id, &fields, &created(&fields, T0), T0)
            .await
            .expect("inserting a recurring item");
    });
    let all = ItemFilter::default();
    read_while_adding(writers, "recurring items", || {
        store.list_recurring_items(t, &all, EVERYTHING)
    })
    .await;

    let writers = keep_adding(&store, move |store, writer, round| async move {
        let fields = one_time(&format!("once-{writer}-{round}"), date(2025, 1, 15));
        store
            .insert_one_time_item(t, plan_id, &fields, T0)
            .await
            .expect("inserting a one-time item");
    });
    let all = ItemFilter::default();
    read_while_adding(writers, "one-time items", || {
        store.list_one_time_items(t, &all, EVERYTHING)
    })
    .await;
}

fn expect_refused<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    expected: fn(&StoreError) -> bool,
    what: &str,
) {
    assert!(
        matches!(&result, Err(e) if expected(e)),
        "{what}: got {result:?}"
    );
}

fn ext_id_taken(e: &StoreError) -> bool {
    matches!(e, StoreError::ExtIdTaken)
}

/// Every unique constraint a caller can run into, each reported as its own error
/// (and by the constraint, not by guessing from the statement that hit it).
pub async fn every_unique_constraint_is_reported_as_its_own_error(store: Arc<dyn Store>) {
    let t: TenantId = tenant(&*store, "app-1").await;

    let (again, user) = new_tenant_with_user("app-1", "other", 2);
    expect_refused(
        store.create_tenant(&again, &user, T0).await,
        |e| matches!(e, StoreError::AppKeyTaken),
        "a second tenant with app key app-1",
    );
    let (_, api) = new_tenant_with_user("app-1", "api", 3);
    expect_refused(
        store.add_api_user(t, &api, T0).await,
        |e| matches!(e, StoreError::UserNameTaken),
        "a second API user named api",
    );

    let bk = book(&*store, t, "acc").await;
    let other = book(&*store, t, "other").await;
    expect_refused(
        store.insert_account(t, &account("acc"), T0).await,
        ext_id_taken,
        "a second account acc",
    );
    expect_refused(
        store
            .update_account(
                t,
                other.account.id,
                other.account.version,
                &account("acc"),
                T0,
            )
            .await,
        ext_id_taken,
        "an account renamed to acc",
    );
    expect_refused(
        store
            .insert_plan(t, bk.account.id, &bk.plan.fields, T0)
            .await,
        ext_id_taken,
        "a second plan acc-plan",
    );
    expect_refused(
        store
            .update_plan(t, other.plan.id, other.plan.version, &bk.plan.fields, T0)
            .await,
        ext_id_taken,
        "a plan renamed to acc-plan",
    );
    let fields = bk.item.fields.clone();
    expect_refused(
        store
            .insert_recurring_item(t, bk.plan.id, &fields, &created(&fields, T0), T0)
            .await,
        ext_id_taken,
        "a second recurring item acc-item",
    );
    let renamed = write(&other.item, fields.clone(), created(&fields, minutes(1)));
    expect_refused(
        store
            .write_recurring_items(t, None, &[renamed], minutes(1))
            .await,
        ext_id_taken,
        "a recurring item renamed to acc-item",
    );
    expect_refused(
        store
            .insert_one_time_item(t, bk.plan.id, &bk.one_time.fields, T0)
            .await,
        ext_id_taken,
        "a second one-time item acc-once",
    );
    expect_refused(
        store
            .update_one_time_item(
                t,
                other.one_time.id,
                other.one_time.version,
                &bk.one_time.fields,
                OneTimeMark::Fields,
                T0,
            )
            .await,
        ext_id_taken,
        "a one-time item renamed to acc-once",
    );

    // The ledger's "billed once" index: a second bill of the same piece is stale
    // (another bill run got there first), not a failure.
    let bill = january_bill(&bk, InvoiceStatus::Posted);
    store
        .commit_bill(t, &bill, "INV-", minutes(2))
        .await
        .expect("the first bill");
    let again = insert_one_time(
        &*store,
        t,
        &bk.plan,
        one_time("acc-again", date(2025, 1, 20)),
    )
    .await;
    let mut second = january_bill(&bk, InvoiceStatus::Posted);
    second.one_time = vec![(again.id, 0)];
    expect_refused(
        store.commit_bill(t, &second, "INV-", minutes(3)).await,
        |e| matches!(e, StoreError::Stale),
        "a second bill of January",
    );
}

/// Lists dropped at every point of their read (as a request is when its client goes
/// away) leave no transaction open behind them: the connections the store hands
/// out afterwards write, and read what was written since.
pub async fn a_read_dropped_midway_leaves_no_transaction_behind(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let all = AccountFilter::default();
    for round in 0..300u64 {
        // Abort a list after a number of microseconds that sweeps its whole read:
        // some rounds drop it while it begins its snapshot, others while it reads
        // or ends it.
        let reading = Arc::clone(&store);
        let filter = all.clone();
        let task = tokio::spawn(async move {
            let _ = reading.list_accounts(t, &filter, EVERYTHING).await;
        });
        let cut = std::time::Duration::from_micros(round * 5 % 600);
        let started = std::time::Instant::now();
        while started.elapsed() < cut {
            std::hint::spin_loop();
        }
        task.abort();
        let _ = task.await;
        // Writes and reads right after, on whichever connections they get.
        let ext_id = format!("after-{round}");
        store
            .insert_account(t, &account(&ext_id), T0)
            .await
            .unwrap_or_else(|e| panic!("inserting {ext_id} after a dropped read: {e:?}"));
        let found = store
            .find_account(t, &RecordKey::ExtId(ext_id.clone()))
            .await
            .expect("finding an account after a dropped read");
        assert!(
            found.is_some(),
            "{ext_id} is read back after a dropped read"
        );
    }
    let page = store
        .list_accounts(t, &all, EVERYTHING)
        .await
        .expect("listing after the dropped reads");
    assert_eq!(page.items.len(), 300, "every account written is listed");
}
