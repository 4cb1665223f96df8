//! The contract for stored invoices: finding and listing them, their updates and
//! cancellation (with or without rebilling what they billed), and between tenants.

use std::sync::Arc;

use dynabill_app::Store;
use dynabill_app::model::{
    AccountBill, CreditMove, InvoiceFilter, InvoiceLineRecord, InvoiceUpdate, NewInvoice,
    PageRequest,
};
use dynabill_app::store::StoreError;
use dynabill_core::billing::LineType;
use dynabill_core::domain::{AccountId, InvoiceId, InvoiceStatus, PlanId, TenantId};
use jiff::civil::{Date, date};
use rust_decimal::{Decimal, dec};

use crate::fixtures::{
    Book, base, bill, book, find_account, find_invoice, find_item, find_one_time, invoice_ids,
    january_bill, ledger_of, minutes, new_invoice, piece_bill, recurring_line, tenant,
};

fn month(n: i8) -> (Date, Date) {
    (date(2025, n, 1), date(2025, n + 1, 1))
}

/// An invoice of `bk`'s item for `month`, of `status`, dated `day`, on `plan`.
fn monthly(bk: &Book, status: InvoiceStatus, n: i8, day: Date, plan: Option<PlanId>) -> NewInvoice {
    let (start, end) = month(n);
    NewInvoice {
        plan_id: plan,
        ..new_invoice(status, day, vec![recurring_line(&bk.item, start, end)])
    }
}

/// Commits one bill of `bk`'s account with `invoices`, the n-th billing month `months[n]`.
async fn commit(
    store: &dyn Store,
    bk: &Book,
    invoices: Vec<NewInvoice>,
    months: &[i8],
) -> Vec<InvoiceId> {
    let ledger = months
        .iter()
        .enumerate()
        .map(|(n, &m)| {
            let (start, end) = month(m);
            (Some(n), base(&bk.item, start, end))
        })
        .collect();
    let account = find_account(store, bk.tenant, bk.account.id).await;
    store
        .commit_bill(
            bk.tenant,
            &bill(&account, invoices, ledger, Vec::new()),
            "INV-",
            minutes(1),
        )
        .await
        .expect("committing a bill")
}

fn ids(found: &[InvoiceId]) -> Vec<i64> {
    found.iter().map(|i| i.0).collect()
}

fn status(status: InvoiceStatus) -> InvoiceUpdate {
    InvoiceUpdate {
        status: Some(status),
        ..InvoiceUpdate::default()
    }
}

async fn cancel(
    store: &dyn Store,
    tenant: TenantId,
    id: InvoiceId,
    rebill: bool,
    balance: CreditMove,
) -> Result<dynabill_app::model::Invoice, StoreError> {
    let invoice = find_invoice(store, tenant, id).await;
    store
        .cancel_invoice(
            tenant,
            id,
            invoice.version,
            None,
            rebill,
            balance,
            minutes(30),
        )
        .await
}

pub async fn listing_invoices_filters_by_id_account_plan_status_and_date(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let a = book(&*store, t, "a").await;
    let b = book(&*store, t, "b").await;
    let a_ids = commit(
        &*store,
        &a,
        vec![
            monthly(
                &a,
                InvoiceStatus::Posted,
                1,
                date(2025, 1, 1),
                Some(a.plan.id),
            ),
            monthly(&a, InvoiceStatus::Draft, 2, date(2025, 2, 1), None),
            monthly(&a, InvoiceStatus::Posted, 3, date(2025, 3, 1), None),
        ],
        &[1, 2, 3],
    )
    .await;
    let b_ids = commit(
        &*store,
        &b,
        vec![
            monthly(
                &b,
                InvoiceStatus::Posted,
                1,
                date(2025, 1, 15),
                Some(b.plan.id),
            ),
            monthly(&b, InvoiceStatus::Draft, 4, date(2025, 4, 1), None),
        ],
        &[1, 4],
    )
    .await;
    let [a1, a2, a3] = ids(&a_ids)[..] else {
        panic!("three invoices")
    };
    let [b1, b2] = ids(&b_ids)[..] else {
        panic!("two invoices")
    };
    let paid = find_invoice(&*store, t, InvoiceId(a3)).await;
    let paying = InvoiceUpdate {
        paid_date: Some(date(2025, 3, 10)),
        ..status(InvoiceStatus::Paid)
    };
    store
        .update_invoice(t, paid.id, paid.version, &paying, "INV-", minutes(2))
        .await
        .unwrap();
    cancel(
        &*store,
        t,
        InvoiceId(b1),
        false,
        CreditMove {
            before: Decimal::ZERO,
            after: Decimal::ZERO,
        },
    )
    .await
    .unwrap();

    let listed = |filter: InvoiceFilter| invoice_ids(&*store, t, filter);
    let all = InvoiceFilter::default;
    assert_eq!(listed(all()).await, [a1, a2, a3, b1, b2]);
    assert_eq!(
        listed(InvoiceFilter {
            id: Some(InvoiceId(a2)),
            ..all()
        })
        .await,
        [a2]
    );
    assert_eq!(
        listed(InvoiceFilter {
            id: Some(InvoiceId(b2 + 100)),
            ..all()
        })
        .await,
        [] as [i64; 0]
    );
    assert_eq!(
        listed(InvoiceFilter {
            account_id: Some(a.account.id),
            ..all()
        })
        .await,
        [a1, a2, a3]
    );
    assert_eq!(
        listed(InvoiceFilter {
            account_id: Some(b.account.id),
            ..all()
        })
        .await,
        [b1, b2]
    );
    assert_eq!(
        listed(InvoiceFilter {
            account_ext_id: Some("b".to_owned()),
            ..all()
        })
        .await,
        [b1, b2]
    );
    assert_eq!(
        listed(InvoiceFilter {
            account_ext_id: Some("nobody".to_owned()),
            ..all()
        })
        .await,
        [] as [i64; 0]
    );
    assert_eq!(
        listed(InvoiceFilter {
            plan_id: Some(a.plan.id),
            ..all()
        })
        .await,
        [a1]
    );
    assert_eq!(
        listed(InvoiceFilter {
            plan_id: Some(b.plan.id),
            ..all()
        })
        .await,
        [b1]
    );

    let with_status = |statuses: &[InvoiceStatus]| InvoiceFilter {
        statuses: statuses.to_vec(),
        ..all()
    };
    assert_eq!(listed(with_status(&[InvoiceStatus::Draft])).await, [a2, b2]);
    assert_eq!(listed(with_status(&[InvoiceStatus::Posted])).await, [a1]);
    assert_eq!(
        listed(with_status(&[
            InvoiceStatus::Paid,
            InvoiceStatus::Cancelled
        ]))
        .await,
        [a3, b1]
    );
    assert_eq!(
        listed(with_status(&[InvoiceStatus::Posted, InvoiceStatus::Draft])).await,
        [a1, a2, b2]
    );
    assert_eq!(
        listed(with_status(&[InvoiceStatus::PendingTax])).await,
        [] as [i64; 0]
    );

    // Both date bounds are inclusive.
    let from = |d: Date| InvoiceFilter {
        date_from: Some(d),
        ..all()
    };
    let to = |d: Date| InvoiceFilter {
        date_to: Some(d),
        ..all()
    };
    assert_eq!(listed(from(date(2025, 2, 1))).await, [a2, a3, b2]);
    assert_eq!(listed(to(date(2025, 2, 1))).await, [a1, a2, b1]);
    assert_eq!(listed(to(date(2024, 12, 31))).await, [] as [i64; 0]);
    let between = InvoiceFilter {
        date_from: Some(date(2025, 1, 15)),
        date_to: Some(date(2025, 3, 1)),
        ..all()
    };
    assert_eq!(listed(between).await, [a2, a3, b1]);
    let combined = InvoiceFilter {
        account_id: Some(a.account.id),
        statuses: vec![InvoiceStatus::Posted, InvoiceStatus::Paid],
        date_from: Some(date(2025, 1, 2)),
        ..all()
    };
    assert_eq!(listed(combined).await, [a3]);

    // Listed invoices are the invoices found.
    let page = store
        .list_invoices(t, &all(), crate::fixtures::EVERYTHING, true)
        .await
        .unwrap();
    for invoice in &page.items {
        assert_eq!(invoice, &find_invoice(&*store, t, invoice.id).await);
        assert_eq!(invoice.lines.len(), 1);
    }
}

pub async fn invoice_pages_follow_id_order_with_the_full_total_and_a_resume_key(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let bk = book(&*store, t, "acc").await;
    let invoices = (1..=5)
        .map(|n| monthly(&bk, InvoiceStatus::Draft, n, month(n).0, None))
        .collect();
    let all = ids(&commit(&*store, &bk, invoices, &[1, 2, 3, 4, 5]).await);

    let page = |filter: InvoiceFilter, size, after, with_lines| {
        let store = Arc::clone(&store);
        async move {
            store
                .list_invoices(
                    t,
                    &filter,
                    PageRequest {
                        size,
                        after,
                        counted: None,
                    },
                    with_lines,
                )
                .await
                .unwrap()
        }
    };
    let everything = InvoiceFilter::default;
    let first = page(everything(), 2, None, true).await;
    assert_eq!(
        first.items.iter().map(|i| i.id.0).collect::<Vec<_>>(),
        all[..2]
    );
    assert_eq!((first.total, first.next_after), (5, Some(all[1])));
    assert!(
        first.items.iter().all(|i| i.lines.len() == 1),
        "lines when asked for"
    );
    let second = page(everything(), 2, first.next_after, false).await;
    assert_eq!(
        second.items.iter().map(|i| i.id.0).collect::<Vec<_>>(),
        all[2..4]
    );
    assert_eq!((second.total, second.next_after), (5, Some(all[3])));
    assert!(
        second.items.iter().all(|i| i.lines.is_empty()),
        "no lines unless asked for"
    );
    let last = page(everything(), 2, second.next_after, true).await;
    assert_eq!(
        last.items.iter().map(|i| i.id.0).collect::<Vec<_>>(),
        all[4..]
    );
    assert_eq!((last.total, last.next_after), (5, None));

    let from_february = || InvoiceFilter {
        date_from: Some(date(2025, 2, 1)),
        statuses: vec![InvoiceStatus::Draft],
        ..InvoiceFilter::default()
    };
    let first = page(from_february(), 3, None, false).await;
    assert_eq!(
        first.items.iter().map(|i| i.id.0).collect::<Vec<_>>(),
        all[1..4]
    );
    assert_eq!((first.total, first.next_after), (4, Some(all[3])));
    let rest = page(from_february(), 3, first.next_after, false).await;
    assert_eq!(
        rest.items.iter().map(|i| i.id.0).collect::<Vec<_>>(),
        all[4..]
    );
    assert_eq!((rest.total, rest.next_after), (4, None));
    let exact = page(everything(), 5, None, false).await;
    assert_eq!(
        (exact.items.len(), exact.next_after),
        (5, None),
        "a full last page has no resume key"
    );
}

pub async fn an_invoice_update_applies_only_at_its_version_and_posting_numbers_it(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let bk = book(&*store, t, "acc").await;
    let made = commit(
        &*store,
        &bk,
        vec![
            monthly(&bk, InvoiceStatus::Posted, 1, date(2025, 1, 1), None),
            monthly(&bk, InvoiceStatus::Draft, 2, date(2025, 2, 1), None),
        ],
        &[1, 2],
    )
    .await;
    let draft = find_invoice(&*store, t, made[1]).await;

    let edit = InvoiceUpdate {
        due_date: Some(date(2025, 3, 31)),
        po_number: Some(Some("PO-7 'Ω'".to_owned())),
        memo: Some(Some("line one\nline two".to_owned())),
        ..InvoiceUpdate::default()
    };
    let edited = store
        .update_invoice(t, draft.id, draft.version, &edit, "INV-", minutes(5))
        .await
        .unwrap();
    let expected = dynabill_app::model::Invoice {
        due_date: date(2025, 3, 31),
        po_number: Some("PO-7 'Ω'".to_owned()),
        memo: Some("line one\nline two".to_owned()),
        updated_at: minutes(5),
        version: draft.version + 1,
        ..draft.clone()
    };
    assert_eq!(edited, expected, "the updated invoice, with its lines");
    assert_eq!(find_invoice(&*store, t, draft.id).await, edited);

    // At a stale version nothing changes, and no number is taken.
    let stale = store
        .update_invoice(
            t,
            draft.id,
            draft.version,
            &status(InvoiceStatus::Posted),
            "INV-",
            minutes(6),
        )
        .await;
    assert!(matches!(stale, Err(StoreError::Stale)), "got {stale:?}");
    assert_eq!(find_invoice(&*store, t, draft.id).await, edited);

    let posted = store
        .update_invoice(
            t,
            draft.id,
            edited.version,
            &status(InvoiceStatus::Posted),
            "INV-",
            minutes(7),
        )
        .await
        .unwrap();
    assert_eq!(posted.status, InvoiceStatus::Posted);
    assert_eq!(posted.number.as_deref(), Some("INV-000002"));
    assert_eq!(posted.due_date, date(2025, 3, 31), "fields not named stay");
    assert_eq!(posted.version, edited.version + 1);

    let paying = InvoiceUpdate {
        paid_date: Some(date(2025, 4, 2)),
        payment_reference: Some(Some("wire 42".to_owned())),
        ..status(InvoiceStatus::Paid)
    };
    let paid = store
        .update_invoice(t, draft.id, posted.version, &paying, "INV-", minutes(8))
        .await
        .unwrap();
    assert_eq!(paid.status, InvoiceStatus::Paid);
    assert_eq!(
        paid.number.as_deref(),
        Some("INV-000002"),
        "a number is kept"
    );
    assert_eq!(paid.paid_date, Some(date(2025, 4, 2)));
    assert_eq!(paid.payment_reference.as_deref(), Some("wire 42"));

    let clearing = InvoiceUpdate {
        po_number: Some(None),
        memo: Some(None),
        payment_reference: Some(None),
        ..InvoiceUpdate::default()
    };
    let cleared = store
        .update_invoice(t, draft.id, paid.version, &clearing, "INV-", minutes(9))
        .await
        .unwrap();
    assert_eq!(
        (cleared.po_number, cleared.memo, cleared.payment_reference),
        (None, None, None)
    );
    assert_eq!(cleared.paid_date, Some(date(2025, 4, 2)));
    assert_eq!(cleared.lines, draft.lines);
    assert_eq!(
        (cleared.total, cleared.created_at),
        (draft.total, draft.created_at)
    );

    let other = find_invoice(&*store, t, made[0]).await;
    assert_eq!(
        other.number.as_deref(),
        Some("INV-000001"),
        "other invoices are untouched"
    );
    assert_eq!(other.version, 1);
    let missing = store
        .update_invoice(
            t,
            InvoiceId(made[1].0 + 1000),
            1,
            &edit,
            "INV-",
            minutes(10),
        )
        .await;
    assert!(matches!(missing, Err(StoreError::Stale)), "got {missing:?}");
}

pub async fn cancelling_an_invoice_gives_back_its_credit_and_with_rebill_what_it_billed(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let bk = book(&*store, t, "acc").await;

    // A credit note puts 30.00 on the account; January uses 20.00 of it.
    let mut note = new_invoice(
        InvoiceStatus::Posted,
        date(2024, 12, 1),
        vec![InvoiceLineRecord {
            line_type: LineType::CancellationCredit,
            amount: dec!(-30.00),
            ..recurring_line(&bk.item, date(2024, 12, 1), date(2025, 1, 1))
        }],
    );
    note.credit_added = dec!(30.00);
    note.amount_due = dec!(0.00);
    let crediting = AccountBill {
        credit_balance_after: dec!(30.00),
        ..bill(&bk.account, vec![note], Vec::new(), Vec::new())
    };
    store
        .commit_bill(t, &crediting, "INV-", minutes(1))
        .await
        .unwrap();
    let mut january = january_bill(&bk, InvoiceStatus::Posted);
    january.credit_balance_before = dec!(30.00);
    january.credit_balance_after = dec!(10.00);
    january.invoices[0].credit_applied = dec!(20.00);
    let made = store
        .commit_bill(t, &january, "INV-", minutes(2))
        .await
        .unwrap();
    let invoice = find_invoice(&*store, t, made[0]).await;
    let item_billed = find_item(&*store, t, bk.item.id).await;
    let once_billed = find_one_time(&*store, t, bk.one_time.id).await;
    let ledger_billed = ledger_of(&*store, t, bk.account.id).await;
    assert_eq!(item_billed.charged_through, Some(date(2025, 2, 1)));

    // At a stale version, or from a balance that has moved, nothing happens.
    let stale = store
        .cancel_invoice(
            t,
            invoice.id,
            invoice.version - 1,
            None,
            true,
            CreditMove {
                before: dec!(10),
                after: dec!(30),
            },
            minutes(3),
        )
        .await;
    assert!(matches!(stale, Err(StoreError::Stale)), "got {stale:?}");
    let moved = store
        .cancel_invoice(
            t,
            invoice.id,
            invoice.version,
            None,
            true,
            CreditMove {
                before: dec!(5),
                after: dec!(25),
            },
            minutes(3),
        )
        .await;
    assert!(matches!(moved, Err(StoreError::Stale)), "got {moved:?}");
    assert_eq!(find_invoice(&*store, t, invoice.id).await, invoice);
    assert_eq!(ledger_of(&*store, t, bk.account.id).await, ledger_billed);
    assert_eq!(
        find_account(&*store, t, bk.account.id).await.credit_balance,
        dec!(10)
    );
    assert_eq!(find_item(&*store, t, bk.item.id).await, item_billed);
    assert_eq!(find_one_time(&*store, t, bk.one_time.id).await, once_billed);

    // With rebill: the credit comes back, what it billed is billable again.
    let cancelled = store
        .cancel_invoice(
            t,
            invoice.id,
            invoice.version,
            Some("wrong price – 'Ω'"),
            true,
            CreditMove {
                before: dec!(10.00),
                after: dec!(30.00),
            },
            minutes(4),
        )
        .await
        .unwrap();
    let expected = dynabill_app::model::Invoice {
        status: InvoiceStatus::Cancelled,
        cancel_reason: Some("wrong price – 'Ω'".to_owned()),
        updated_at: minutes(4),
        version: invoice.version + 1,
        ..invoice.clone()
    };
    assert_eq!(cancelled, expected);
    assert_eq!(find_invoice(&*store, t, invoice.id).await, cancelled);
    assert_eq!(
        find_account(&*store, t, bk.account.id).await.credit_balance,
        dec!(30)
    );
    assert_eq!(
        ledger_of(&*store, t, bk.account.id).await,
        [],
        "its entries are released"
    );
    let once = find_one_time(&*store, t, bk.one_time.id).await;
    assert!(!once.invoiced, "the one-time item is pending again");
    assert_eq!(
        (once.version, once.updated_at),
        (once_billed.version + 1, minutes(4))
    );
    let item = find_item(&*store, t, bk.item.id).await;
    assert_eq!(
        item.charged_through, None,
        "recomputed from the entries left"
    );
    assert_eq!(item.version, item_billed.version + 1);
    let snapshot = store.billing_snapshot(t, &[bk.account.id]).await.unwrap();
    assert_eq!(snapshot[0].one_time, std::slice::from_ref(&once));

    // A cancelled invoice is not cancelled again.
    let again = store
        .cancel_invoice(
            t,
            invoice.id,
            cancelled.version,
            None,
            true,
            CreditMove {
                before: dec!(30),
                after: dec!(50),
            },
            minutes(5),
        )
        .await;
    assert!(matches!(again, Err(StoreError::Stale)), "got {again:?}");
    assert_eq!(
        find_account(&*store, t, bk.account.id).await.credit_balance,
        dec!(30)
    );

    // The same entries and the one-time item can be billed again.
    let account = find_account(&*store, t, bk.account.id).await;
    let rebilled = AccountBill {
        credit_balance_before: account.credit_balance,
        credit_balance_after: account.credit_balance,
        ..january_bill(&bk, InvoiceStatus::Posted)
    };
    let made = store
        .commit_bill(t, &rebilled, "INV-", minutes(6))
        .await
        .unwrap();
    assert_eq!(
        find_item(&*store, t, bk.item.id).await.charged_through,
        Some(date(2025, 2, 1))
    );
    assert!(find_one_time(&*store, t, bk.one_time.id).await.invoiced);

    // Without rebill nothing is released.
    let second = find_invoice(&*store, t, made[0]).await;
    let item_before = find_item(&*store, t, bk.item.id).await;
    let ledger_before = ledger_of(&*store, t, bk.account.id).await;
    let cancelled = store
        .cancel_invoice(
            t,
            second.id,
            second.version,
            None,
            false,
            CreditMove {
                before: dec!(30),
                after: dec!(30),
            },
            minutes(7),
        )
        .await
        .unwrap();
    assert_eq!(
        (cancelled.status, cancelled.cancel_reason),
        (InvoiceStatus::Cancelled, None)
    );
    assert_eq!(ledger_of(&*store, t, bk.account.id).await, ledger_before);
    assert!(find_one_time(&*store, t, bk.one_time.id).await.invoiced);
    assert_eq!(find_item(&*store, t, bk.item.id).await, item_before);
    let refused = store
        .commit_bill(
            t,
            &piece_bill(&account, &bk.item, InvoiceStatus::Posted, month(1)),
            "INV-",
            minutes(8),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Stale)),
        "still billed: {refused:?}"
    );

    // A paid invoice is not cancelled.
    let february = store
        .commit_bill(
            t,
            &piece_bill(&account, &bk.item, InvoiceStatus::Posted, month(2)),
            "INV-",
            minutes(9),
        )
        .await
        .unwrap();
    let posted = find_invoice(&*store, t, february[0]).await;
    let paid = store
        .update_invoice(
            t,
            posted.id,
            posted.version,
            &status(InvoiceStatus::Paid),
            "INV-",
            minutes(10),
        )
        .await
        .unwrap();
    let refused = store
        .cancel_invoice(
            t,
            paid.id,
            paid.version,
            None,
            true,
            CreditMove {
                before: dec!(30),
                after: dec!(30),
            },
            minutes(11),
        )
        .await;
    assert!(matches!(refused, Err(StoreError::Stale)), "got {refused:?}");
    assert_eq!(find_invoice(&*store, t, paid.id).await, paid);
}

pub async fn an_account_has_invoices_unless_all_are_cancelled_and_unpaid_ones_while_posted(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let a = book(&*store, t, "a").await;
    let b = book(&*store, t, "b").await;
    let flags = |account: AccountId| {
        let store = Arc::clone(&store);
        async move {
            (
                store.account_has_invoices(t, account).await.unwrap(),
                store.account_has_unpaid_invoices(t, account).await.unwrap(),
            )
        }
    };
    assert_eq!(flags(a.account.id).await, (false, false));

    let draft = commit(
        &*store,
        &a,
        vec![monthly(&a, InvoiceStatus::Draft, 1, date(2025, 1, 1), None)],
        &[1],
    )
    .await;
    assert_eq!(
        flags(a.account.id).await,
        (true, false),
        "a draft is not owed yet"
    );
    assert_eq!(
        flags(b.account.id).await,
        (false, false),
        "another account's invoices do not count"
    );
    let read = find_invoice(&*store, t, draft[0]).await;
    let posted = store
        .update_invoice(
            t,
            read.id,
            read.version,
            &status(InvoiceStatus::Posted),
            "INV-",
            minutes(2),
        )
        .await
        .unwrap();
    assert_eq!(flags(a.account.id).await, (true, true));
    store
        .update_invoice(
            t,
            posted.id,
            posted.version,
            &status(InvoiceStatus::Paid),
            "INV-",
            minutes(3),
        )
        .await
        .unwrap();
    assert_eq!(
        flags(a.account.id).await,
        (true, false),
        "a paid invoice is not owed"
    );

    let owed = commit(
        &*store,
        &a,
        vec![monthly(
            &a,
            InvoiceStatus::Posted,
            2,
            date(2025, 2, 1),
            None,
        )],
        &[2],
    )
    .await;
    assert_eq!(flags(a.account.id).await, (true, true));
    cancel(
        &*store,
        t,
        owed[0],
        false,
        CreditMove {
            before: Decimal::ZERO,
            after: Decimal::ZERO,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        flags(a.account.id).await,
        (true, false),
        "a cancelled invoice is not owed"
    );

    let only = commit(
        &*store,
        &b,
        vec![monthly(
            &b,
            InvoiceStatus::Posted,
            1,
            date(2025, 1, 1),
            None,
        )],
        &[1],
    )
    .await;
    assert_eq!(flags(b.account.id).await, (true, true));
    cancel(
        &*store,
        t,
        only[0],
        true,
        CreditMove {
            before: Decimal::ZERO,
            after: Decimal::ZERO,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        flags(b.account.id).await,
        (false, false),
        "only cancelled invoices count as none"
    );

    let other = tenant(&*store, "app-2").await;
    assert!(
        !store
            .account_has_invoices(other, a.account.id)
            .await
            .unwrap()
    );
    assert!(
        !store
            .account_has_unpaid_invoices(other, a.account.id)
            .await
            .unwrap()
    );
}

pub async fn a_tenant_never_sees_or_changes_another_tenants_invoices(store: Arc<dyn Store>) {
    let owner = tenant(&*store, "app-1").await;
    let other = tenant(&*store, "app-2").await;
    let theirs = book(&*store, owner, "shared").await;
    let mine = book(&*store, other, "shared").await;
    let made = store
        .commit_bill(
            owner,
            &january_bill(&theirs, InvoiceStatus::Posted),
            "INV-",
            minutes(1),
        )
        .await
        .unwrap();
    let invoice = find_invoice(&*store, owner, made[0]).await;
    let ledger = ledger_of(&*store, owner, theirs.account.id).await;

    assert_eq!(
        store.find_invoice(other, invoice.id, true).await.unwrap(),
        None
    );
    let listed = |filter: InvoiceFilter| invoice_ids(&*store, other, filter);
    assert_eq!(listed(InvoiceFilter::default()).await, [] as [i64; 0]);
    assert_eq!(
        listed(InvoiceFilter {
            id: Some(invoice.id),
            ..InvoiceFilter::default()
        })
        .await,
        [] as [i64; 0]
    );
    assert_eq!(
        listed(InvoiceFilter {
            account_id: Some(theirs.account.id),
            ..InvoiceFilter::default()
        })
        .await,
        [] as [i64; 0]
    );
    assert_eq!(
        listed(InvoiceFilter {
            account_ext_id: Some("shared".to_owned()),
            ..InvoiceFilter::default()
        })
        .await,
        [] as [i64; 0],
        "an ExtID names the caller's own account"
    );

    let update = store
        .update_invoice(
            other,
            invoice.id,
            invoice.version,
            &status(InvoiceStatus::Paid),
            "INV-",
            minutes(2),
        )
        .await;
    assert!(matches!(update, Err(StoreError::Stale)), "got {update:?}");
    let cancelled = store
        .cancel_invoice(
            other,
            invoice.id,
            invoice.version,
            None,
            true,
            CreditMove {
                before: Decimal::ZERO,
                after: Decimal::ZERO,
            },
            minutes(2),
        )
        .await;
    assert!(
        matches!(cancelled, Err(StoreError::Stale)),
        "got {cancelled:?}"
    );
    assert!(
        !store
            .account_has_invoices(other, theirs.account.id)
            .await
            .unwrap()
    );
    assert!(
        !store
            .account_has_unpaid_invoices(other, theirs.account.id)
            .await
            .unwrap()
    );
    assert_eq!(
        store.billable_accounts(other, None, 100).await.unwrap(),
        [mine.account.id]
    );
    assert!(
        store
            .billing_snapshot(other, &[theirs.account.id])
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        find_invoice(&*store, owner, invoice.id).await,
        invoice,
        "untouched"
    );
    assert_eq!(ledger_of(&*store, owner, theirs.account.id).await, ledger);
    assert!(
        find_one_time(&*store, owner, theirs.one_time.id)
            .await
            .invoiced
    );

    // Each tenant numbers its own invoices.
    let own = store
        .commit_bill(
            other,
            &january_bill(&mine, InvoiceStatus::Posted),
            "INV-",
            minutes(3),
        )
        .await
        .unwrap();
    assert_eq!(
        find_invoice(&*store, other, own[0]).await.number.as_deref(),
        Some("INV-000001")
    );
    assert_eq!(
        invoice_ids(&*store, owner, InvoiceFilter::default()).await,
        [invoice.id.0]
    );
    assert_eq!(
        invoice_ids(&*store, other, InvoiceFilter::default()).await,
        [own[0].0]
    );
}
