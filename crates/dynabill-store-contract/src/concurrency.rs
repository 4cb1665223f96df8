//! The contract under concurrency: races are settled by the store, exactly once.

use std::sync::Arc;

use dynabill_app::Store;
use dynabill_app::model::{
    AccountFilter, CreditMove, InvoiceFilter, ItemChangeKind, ItemFilter, PlanFilter, PostInvoice,
    RecordKey,
};
use dynabill_app::store::{IdempotencyClaim, StoreError};
use dynabill_core::domain::InvoiceStatus;
use jiff::civil::date;
use rust_decimal::dec;
use tokio::sync::Barrier;

use crate::fixtures::{
    EVERYTHING, T0, account, account_ids, all_items, base, bill, book, created, entry,
    find_invoice, find_item, insert_account, insert_item, insert_plan, invoice_ids, item,
    ledger_of, minutes, new_invoice, one_time, one_time_ids, piece_bill, plan, recurring_line,
    tenant, write,
};

const RACERS: usize = 20;

/// Runs `RACERS` copies of `op` (given its index) at once, released together by a
/// barrier so that they really overlap, and returns their results in index order.
async fn race<T, F, Fut>(store: &Arc<dyn Store>, op: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn Store>, usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    race_n(store, RACERS, op).await
}

/// Like [`race`], with `racers` copies.
async fn race_n<T, F, Fut>(store: &Arc<dyn Store>, racers: usize, op: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn Store>, usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(racers));
    let tasks: Vec<_> = (0..racers)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let work = op(Arc::clone(store), i);
            tokio::spawn(async move {
                barrier.wait().await;
                work.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(racers);
    for task in tasks {
        results.push(task.await.expect("a racing task panicked"));
    }
    results
}

pub async fn concurrent_inserts_of_one_ext_id_create_exactly_one_account(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let results = race(&store, |store, _| async move {
        store.insert_account(t, &account("race"), T0).await
    })
    .await;

    let won = results.iter().filter(|r| r.is_ok()).count();
    let taken = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::ExtIdTaken)))
        .count();
    assert_eq!((won, taken), (1, RACERS - 1), "results: {results:?}");
    let all = AccountFilter {
        include_deleted: true,
        ..AccountFilter::default()
    };
    assert_eq!(account_ids(&*store, t, all).await.len(), 1);
}

pub async fn concurrent_inserts_of_many_accounts_each_come_back_as_written(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    // Creates arriving together may be written together (SQLite commits them as a
    // group): each must come back as its own record, and a taken ExtID must fail
    // alone, the others of its group still written.
    let results = race_n(&store, 80, |store, i| async move {
        let ext_id = if i % 5 == 0 {
            "shared".to_owned()
        } else {
            format!("own-{i}")
        };
        (
            ext_id.clone(),
            store.insert_account(t, &account(&ext_id), T0).await,
        )
    })
    .await;

    let mut shared_won = 0;
    for (ext_id, result) in &results {
        match result {
            Ok(created) => {
                assert_eq!(
                    &created.fields.ext_id, ext_id,
                    "each create gets its own record"
                );
                let read = store
                    .find_account(t, &RecordKey::Id(created.id))
                    .await
                    .unwrap();
                assert_eq!(read.as_ref(), Some(created), "what was answered is stored");
                shared_won += usize::from(ext_id == "shared");
            }
            Err(StoreError::ExtIdTaken) => assert_eq!(ext_id, "shared", "{ext_id} refused"),
            Err(e) => panic!("{ext_id}: {e:?}"),
        }
    }
    assert_eq!(shared_won, 1, "one create of the shared ExtID wins");
    let all = AccountFilter {
        include_deleted: true,
        ..AccountFilter::default()
    };
    assert_eq!(account_ids(&*store, t, all).await.len(), 65);
}

pub async fn concurrent_updates_at_one_version_succeed_exactly_once(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let read = insert_account(&*store, t, "acc").await;
    let results = race(&store, |store, i| {
        let read = read.clone();
        async move {
            let mut fields = read.fields.clone();
            fields.name = format!("writer {i}");
            store
                .update_account(t, read.id, read.version, &fields, minutes(1))
                .await
        }
    })
    .await;

    let winners: Vec<usize> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.is_ok().then_some(i))
        .collect();
    let stale = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Stale)))
        .count();
    assert_eq!(
        (winners.len(), stale),
        (1, RACERS - 1),
        "results: {results:?}"
    );
    let now = store
        .find_account(t, &RecordKey::Id(read.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.version, read.version + 1);
    assert_eq!(now.fields.name, format!("writer {}", winners[0]));
}

pub async fn concurrent_claims_of_one_idempotency_key_claim_it_exactly_once(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let results = race(&store, |store, _| async move {
        store
            .claim_idempotency_key(
                t,
                "race",
                &[4; 32],
                T0,
                crate::idempotency::held(T0),
                minutes(-24 * 60),
            )
            .await
    })
    .await;
    let claimed = count(&results, &IdempotencyClaim::Claimed);
    let in_flight = count(&results, &IdempotencyClaim::InFlight);
    assert_eq!(
        (claimed, in_flight),
        (1, RACERS - 1),
        "results: {results:?}"
    );
}

pub async fn concurrent_claims_of_an_expired_idempotency_key_replace_it_exactly_once(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let first = store
        .claim_idempotency_key(
            t,
            "race",
            &[4; 32],
            T0,
            crate::idempotency::held(T0),
            minutes(-24 * 60),
        )
        .await
        .unwrap();
    assert_eq!(first, IdempotencyClaim::Claimed);
    store
        .complete_idempotency_key(t, "race", 200, b"old")
        .await
        .unwrap();

    let later = minutes(25 * 60);
    let results = race(&store, |store, _| async move {
        store
            .claim_idempotency_key(
                t,
                "race",
                &[4; 32],
                later,
                crate::idempotency::held(later),
                minutes(60),
            )
            .await
    })
    .await;
    let claimed = count(&results, &IdempotencyClaim::Claimed);
    let in_flight = count(&results, &IdempotencyClaim::InFlight);
    assert_eq!(
        (claimed, in_flight),
        (1, RACERS - 1),
        "results: {results:?}"
    );
}

pub async fn a_plan_added_while_its_account_is_deleted_ends_up_cancelled_or_refused(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let today = date(2025, 6, 15);
    // The window is narrow; a few rounds make a broken store fail reliably.
    for round in 0..5 {
        let acc = insert_account(&*store, t, &format!("acc-{round}")).await;
        let results = race(&store, |store, i| {
            let acc = acc.clone();
            async move {
                if i == 0 {
                    let deleted = store
                        .delete_account(t, acc.id, acc.version, today, minutes(1))
                        .await;
                    return deleted.map(|_| ());
                }
                let fields = plan(&format!("plan-{round}-{i}"), date(2025, 1, 1));
                store
                    .insert_plan(t, acc.id, &fields, minutes(1))
                    .await
                    .map(|_| ())
            }
        })
        .await;

        assert!(
            results[0].is_ok(),
            "the delete must succeed: {:?}",
            results[0]
        );
        for result in &results[1..] {
            assert!(
                matches!(result, Ok(()) | Err(StoreError::Stale)),
                "a plan insert either lands before the delete or is refused: {result:?}"
            );
        }
        let on_account = PlanFilter {
            account_id: Some(acc.id),
            ..PlanFilter::default()
        };
        let plans = store
            .list_plans(t, &on_account, today, EVERYTHING)
            .await
            .unwrap();
        let inserted = results[1..].iter().filter(|r| r.is_ok()).count();
        assert_eq!(plans.items.len(), inserted);
        for plan in &plans.items {
            assert_eq!(
                plan.cancel_date,
                Some(today),
                "no plan may stay open on a deleted account: {plan:?}"
            );
        }
    }
}

fn count(results: &[Result<IdempotencyClaim, StoreError>], wanted: &IdempotencyClaim) -> usize {
    results
        .iter()
        .filter(|r| matches!(r, Ok(claim) if claim == wanted))
        .count()
}

pub async fn concurrent_inserts_of_one_ext_id_create_exactly_one_recurring_item(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc").await;
    let p = insert_plan(&*store, t, &acc, plan("plan", date(2025, 1, 1))).await;
    let results = race(&store, |store, _| async move {
        let fields = item("race", date(2025, 1, 1));
        store
            .insert_recurring_item(t, p.id, &fields, &created(&fields, T0), T0)
            .await
    })
    .await;

    let won = results.iter().filter(|r| r.is_ok()).count();
    let taken = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::ExtIdTaken)))
        .count();
    assert_eq!((won, taken), (1, RACERS - 1), "results: {results:?}");
    let items = store
        .list_recurring_items(t, &all_items(), EVERYTHING)
        .await
        .unwrap();
    assert_eq!(items.items.len(), 1);
    assert_eq!(
        items.items[0].changes.len(),
        1,
        "the losers left no history behind"
    );
}

pub async fn concurrent_inserts_of_one_ext_id_create_exactly_one_one_time_item(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc").await;
    let p = insert_plan(&*store, t, &acc, plan("plan", date(2025, 1, 1))).await;
    let results = race(&store, |store, _| async move {
        store
            .insert_one_time_item(t, p.id, &one_time("race", date(2025, 7, 1)), T0)
            .await
    })
    .await;

    let won = results.iter().filter(|r| r.is_ok()).count();
    let taken = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::ExtIdTaken)))
        .count();
    assert_eq!((won, taken), (1, RACERS - 1), "results: {results:?}");
    assert_eq!(one_time_ids(&*store, t, all_items()).await.len(), 1);
}

pub async fn concurrent_item_batches_at_one_version_succeed_exactly_once(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc").await;
    let p = insert_plan(&*store, t, &acc, plan("plan", date(2025, 1, 1))).await;
    let a = insert_item(&*store, t, &p, item("a", date(2025, 1, 1))).await;
    let b = insert_item(&*store, t, &p, item("b", date(2025, 1, 1))).await;
    // Half the racers name the items in the other order: a store must settle that
    // too (as Stale), never deadlock or half-apply a batch.
    let results = race(&store, |store, i| {
        let (a, b) = (a.clone(), b.clone());
        async move {
            let rename = |read: &dynabill_app::model::RecurringItem| {
                let mut fields = read.fields.clone();
                fields.name = format!("writer {i}");
                let change = entry(
                    ItemChangeKind::Updated,
                    fields.start_date,
                    &fields,
                    minutes(1),
                );
                write(read, fields, change)
            };
            let writes = if i % 2 == 0 {
                [rename(&a), rename(&b)]
            } else {
                [rename(&b), rename(&a)]
            };
            store
                .write_recurring_items(t, None, &writes, minutes(1))
                .await
        }
    })
    .await;

    let winners: Vec<usize> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.is_ok().then_some(i))
        .collect();
    let stale = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Stale)))
        .count();
    assert_eq!(
        (winners.len(), stale),
        (1, RACERS - 1),
        "results: {results:?}"
    );
    for read in [&a, &b] {
        let now = store
            .find_recurring_item(t, &RecordKey::Id(read.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(now.version, read.version + 1);
        assert_eq!(now.fields.name, format!("writer {}", winners[0]));
        assert_eq!(now.changes.len(), 2, "one entry per applied write");
    }
}

pub async fn an_item_added_while_its_plan_is_deleted_ends_up_cancelled_or_refused(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let acc = insert_account(&*store, t, "acc").await;
    let today = date(2025, 6, 15);
    // The window is narrow; a few rounds make a broken store fail reliably.
    for round in 0..5 {
        let p = insert_plan(
            &*store,
            t,
            &acc,
            plan(&format!("plan-{round}"), date(2025, 1, 1)),
        )
        .await;
        let results = race(&store, |store, i| {
            let p = p.clone();
            async move {
                if i == 0 {
                    let deleted = store
                        .delete_plan(t, p.id, p.version, today, minutes(1))
                        .await;
                    return deleted.map(|_| ());
                }
                let ext_id = format!("item-{round}-{i}");
                if i % 2 == 0 {
                    let fields = item(&ext_id, date(2025, 1, 1));
                    let first = created(&fields, minutes(1));
                    store
                        .insert_recurring_item(t, p.id, &fields, &first, minutes(1))
                        .await
                        .map(|_| ())
                } else {
                    store
                        .insert_one_time_item(t, p.id, &one_time(&ext_id, today), minutes(1))
                        .await
                        .map(|_| ())
                }
            }
        })
        .await;

        assert!(
            results[0].is_ok(),
            "the delete must succeed: {:?}",
            results[0]
        );
        for result in &results[1..] {
            assert!(
                matches!(result, Ok(()) | Err(StoreError::Stale)),
                "an item insert either lands before the delete or is refused: {result:?}"
            );
        }
        let on_plan = ItemFilter {
            plan_id: Some(p.id),
            ..all_items()
        };
        let items = store
            .list_recurring_items(t, &on_plan, EVERYTHING)
            .await
            .unwrap();
        let one_time_on_plan = ItemFilter {
            plan_id: Some(p.id),
            ..all_items()
        };
        let one_time_items = store
            .list_one_time_items(t, &one_time_on_plan, EVERYTHING)
            .await
            .unwrap();
        let inserted = results[1..].iter().filter(|r| r.is_ok()).count();
        assert_eq!(items.items.len() + one_time_items.items.len(), inserted);
        for item in &items.items {
            assert_eq!(
                item.cancellation.map(|c| c.date),
                Some(today),
                "no item may keep running on a deleted plan: {item:?}"
            );
        }
        for item in &one_time_items.items {
            assert!(
                item.cancelled_at.is_some(),
                "no charge may stay pending on a deleted plan: {item:?}"
            );
        }
    }
}

/// How many bill runs race to commit one bill, as if from as many servers.
const BILL_RUNS: usize = 10;

pub async fn concurrent_commits_of_one_bill_succeed_exactly_once(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let bk = book(&*store, t, "acc").await;
    // No credit moves and no one-time item: only the ledger can tell the runs apart.
    let (jan, feb) = (
        (date(2025, 1, 1), date(2025, 2, 1)),
        (date(2025, 2, 1), date(2025, 3, 1)),
    );
    let the_bill = bill(
        &bk.account,
        vec![new_invoice(
            InvoiceStatus::Posted,
            jan.0,
            vec![
                recurring_line(&bk.item, jan.0, jan.1),
                recurring_line(&bk.item, feb.0, feb.1),
            ],
        )],
        vec![
            (Some(0), base(&bk.item, jan.0, jan.1)),
            (Some(0), base(&bk.item, feb.0, feb.1)),
        ],
        Vec::new(),
    );
    let results = race_n(&store, BILL_RUNS, |store, _| {
        let the_bill = the_bill.clone();
        async move { store.commit_bill(t, &the_bill, "INV-", minutes(1)).await }
    })
    .await;

    let won = results.iter().filter(|r| r.is_ok()).count();
    let stale = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Stale)))
        .count();
    assert_eq!((won, stale), (1, BILL_RUNS - 1), "results: {results:?}");
    let invoices = invoice_ids(&*store, t, InvoiceFilter::default()).await;
    assert_eq!(invoices.len(), 1, "one invoice, from the one commit");
    let invoice = find_invoice(&*store, t, dynabill_core::domain::InvoiceId(invoices[0])).await;
    assert_eq!(invoice.number.as_deref(), Some("INV-000001"));
    assert_eq!(invoice.lines.len(), 2);
    assert_eq!(ledger_of(&*store, t, bk.account.id).await.len(), 2);
    let billed = find_item(&*store, t, bk.item.id).await;
    assert_eq!(billed.version, bk.item.version + 1, "refreshed once");
    assert_eq!(billed.charged_through, Some(feb.1));

    // The losers took no number.
    let next = store
        .commit_bill(
            t,
            &piece_bill(
                &bk.account,
                &bk.item,
                InvoiceStatus::Posted,
                (feb.1, date(2025, 4, 1)),
            ),
            "INV-",
            minutes(2),
        )
        .await
        .unwrap();
    let next = find_invoice(&*store, t, next[0]).await;
    assert_eq!(next.number.as_deref(), Some("INV-000002"));
}

pub async fn concurrent_bills_of_many_accounts_take_invoice_numbers_without_gaps(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let mut books = Vec::new();
    for n in 0..BILL_RUNS {
        books.push(book(&*store, t, &format!("acc-{n}")).await);
    }
    let books = Arc::new(books);
    let jan = (date(2025, 1, 1), date(2025, 2, 1));
    let results = race_n(&store, BILL_RUNS, |store, i| {
        let books = Arc::clone(&books);
        async move {
            let bk = &books[i];
            // Every other run posts two invoices, with a draft between them.
            let mut the_bill = piece_bill(&bk.account, &bk.item, InvoiceStatus::Posted, jan);
            if i % 2 == 0 {
                the_bill
                    .invoices
                    .push(new_invoice(InvoiceStatus::Draft, jan.0, Vec::new()));
                the_bill
                    .invoices
                    .push(new_invoice(InvoiceStatus::Posted, jan.0, Vec::new()));
            }
            store.commit_bill(t, &the_bill, "INV-", minutes(1)).await
        }
    })
    .await;
    assert!(results.iter().all(Result::is_ok), "results: {results:?}");

    let page = store
        .list_invoices(t, &InvoiceFilter::default(), EVERYTHING, false)
        .await
        .unwrap();
    let mut numbers: Vec<String> = page.items.iter().filter_map(|i| i.number.clone()).collect();
    numbers.sort();
    let posted = BILL_RUNS + BILL_RUNS.div_ceil(2);
    let expected: Vec<String> = (1..=posted).map(|n| format!("INV-{n:06}")).collect();
    assert_eq!(numbers, expected, "every number once, none skipped");
    assert_eq!(page.items.len(), posted + BILL_RUNS.div_ceil(2));
    for invoice in &page.items {
        assert_eq!(
            invoice.number.is_some(),
            invoice.status == InvoiceStatus::Posted,
            "{invoice:?}"
        );
    }
}

pub async fn concurrent_claims_of_a_scheduled_run_claim_it_exactly_once(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    for day in 1..=3 {
        let results = race(&store, |store, _| async move {
            store.claim_scheduled_run(t, date(2025, 6, day)).await
        })
        .await;
        let claimed = results.iter().filter(|r| matches!(r, Ok(true))).count();
        let refused = results.iter().filter(|r| matches!(r, Ok(false))).count();
        assert_eq!(
            (claimed, refused),
            (1, RACERS - 1),
            "day {day}: {results:?}"
        );
    }
}

pub async fn concurrent_postings_use_an_accounts_credit_once_and_take_one_number(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let bk = book(&*store, t, "acc").await;
    crate::fixtures::credit(&*store, &bk, dec!(30.00)).await; // INV-000001
    let (jan, feb) = (
        (date(2025, 1, 1), date(2025, 2, 1)),
        (date(2025, 2, 1), date(2025, 3, 1)),
    );
    let account = crate::fixtures::find_account(&*store, t, bk.account.id).await;
    let drafts = bill(
        &account,
        vec![
            new_invoice(
                InvoiceStatus::Draft,
                jan.0,
                vec![recurring_line(&bk.item, jan.0, jan.1)],
            ),
            new_invoice(
                InvoiceStatus::Draft,
                feb.0,
                vec![recurring_line(&bk.item, feb.0, feb.1)],
            ),
        ],
        vec![
            (Some(0), base(&bk.item, jan.0, jan.1)),
            (Some(1), base(&bk.item, feb.0, feb.1)),
        ],
        Vec::new(),
    );
    let made = store
        .commit_bill(t, &drafts, "INV-", minutes(2))
        .await
        .unwrap();
    let drafts = [
        find_invoice(&*store, t, made[0]).await,
        find_invoice(&*store, t, made[1]).await,
    ];

    // Half the racers post January, half February, each from the full balance: the
    // first posting uses the credit, so every other one is refused.
    let postings: Vec<_> = drafts
        .iter()
        .map(|draft| PostInvoice {
            credit_applied: dec!(5.00),
            amount_due: dec!(0.00),
            balance: CreditMove {
                before: dec!(30.00),
                after: dec!(25.00),
            },
            ..crate::taxes::untaxed(draft, InvoiceStatus::Posted, dec!(30))
        })
        .collect();
    let results = race(&store, |store, i| {
        let (draft, posting) = (drafts[i % 2].clone(), postings[i % 2].clone());
        async move { crate::taxes::post(&*store, t, &draft, &posting, 3).await }
    })
    .await;

    let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let stale = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Stale)))
        .count();
    assert_eq!((won.len(), stale), (1, RACERS - 1), "results: {results:?}");
    assert_eq!(won[0].number.as_deref(), Some("INV-000002"));
    let winner = usize::from(won[0].id != drafts[0].id);
    assert_eq!(&find_invoice(&*store, t, drafts[winner].id).await, won[0]);
    assert_eq!(
        find_invoice(&*store, t, drafts[1 - winner].id).await,
        drafts[1 - winner],
        "the other invoice is untouched"
    );
    assert_eq!(
        crate::fixtures::find_account(&*store, t, bk.account.id)
            .await
            .credit_balance,
        dec!(25),
        "the credit is used once"
    );

    // The losers took no number.
    let loser = &drafts[1 - winner];
    let next = crate::taxes::post(
        &*store,
        t,
        loser,
        &crate::taxes::untaxed(loser, InvoiceStatus::Posted, dec!(25)),
        4,
    )
    .await
    .unwrap();
    assert_eq!(next.number.as_deref(), Some("INV-000003"));
}
