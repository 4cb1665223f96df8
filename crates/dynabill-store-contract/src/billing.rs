//! The contract for bill runs: which accounts are billed, what a run reads, and the
//! all-or-nothing commit of one account's bill (invoices, ledger, one-time items,
//! charged-through dates, credit balance, invoice numbers).

use std::sync::Arc;

use dynabill_app::Store;
use dynabill_app::model::{
    AccountBill, AccountFields, CreditMove, Invoice, InvoiceFilter, InvoiceLineRecord, ItemChange,
    ItemChangeKind, NewInvoice, OneTimeMark, RecordKey,
};
use dynabill_app::store::StoreError;
use dynabill_core::billing::{EntryKey, LedgerEntry, LineType};
use dynabill_core::domain::{AccountId, AccountStatus, InvoiceId, InvoiceStatus};
use dynabill_core::money::Currency;
use jiff::civil::date;
use rust_decimal::{Decimal, dec};

use crate::fixtures::{
    T0, account, base, bill, book, credited, entry, find_account, find_invoice, find_item,
    find_one_time, insert_account, insert_item, insert_one_time, insert_plan, invoice_ids, item,
    january_bill, ledger_of, minutes, new_invoice, one_time, one_time_line, piece_bill, plan,
    recurring_line, tenant, write,
};

const JAN: (jiff::civil::Date, jiff::civil::Date) = (date(2025, 1, 1), date(2025, 2, 1));
const FEB: (jiff::civil::Date, jiff::civil::Date) = (date(2025, 2, 1), date(2025, 3, 1));
const MAR: (jiff::civil::Date, jiff::civil::Date) = (date(2025, 3, 1), date(2025, 4, 1));

/// Every decimal of an invoice and its lines, as text: what must come back exactly.
fn decimal_texts(
    amounts: [Decimal; 6],
    lines: &[InvoiceLineRecord],
) -> (Vec<String>, Vec<Vec<String>>) {
    let invoice = amounts.iter().map(Decimal::to_string).collect();
    let lines = lines
        .iter()
        .map(|l| {
            let mut texts = vec![
                l.quantity.to_string(),
                l.unit_price.to_string(),
                l.discount_percent.to_string(),
                l.fraction.map(|f| f.to_string()).unwrap_or_default(),
                l.amount.to_string(),
                l.tax_amount.to_string(),
            ];
            for tax in &l.taxes {
                texts.push(tax.amount.to_string());
                texts.push(tax.rate.map(|r| r.to_string()).unwrap_or_default());
            }
            texts
        })
        .collect();
    (invoice, lines)
}

fn stored_texts(invoice: &Invoice) -> (Vec<String>, Vec<Vec<String>>) {
    decimal_texts(
        [
            invoice.subtotal,
            invoice.tax_total,
            invoice.total,
            invoice.credit_applied,
            invoice.credit_added,
            invoice.amount_due,
        ],
        &invoice.lines,
    )
}

fn written_texts(invoice: &NewInvoice) -> (Vec<String>, Vec<Vec<String>>) {
    decimal_texts(
        [
            invoice.subtotal,
            invoice.tax_total,
            invoice.total,
            invoice.credit_applied,
            invoice.credit_added,
            invoice.amount_due,
        ],
        &invoice.lines,
    )
}

/// Checks that `found` is `written`, stored for `account` at `at` with `number`.
fn assert_stored(
    found: &Invoice,
    written: &NewInvoice,
    account: &dynabill_app::model::Account,
    number: Option<&str>,
    at: jiff::Timestamp,
) {
    let ids: Vec<i64> = found.lines.iter().map(|l| l.id).collect();
    assert!(
        ids.iter().all(|&id| id > 0) && ids.windows(2).all(|w| w[0] < w[1]),
        "lines keep their order, with increasing IDs: {ids:?}"
    );
    let lines: Vec<InvoiceLineRecord> = written
        .lines
        .iter()
        .zip(&ids)
        .map(|(line, &id)| InvoiceLineRecord { id, ..line.clone() })
        .collect();
    let expected = Invoice {
        id: found.id,
        account_id: account.id,
        account_ext_id: account.fields.ext_id.clone(),
        plan_id: written.plan_id,
        number: number.map(str::to_owned),
        status: written.status,
        invoice_date: written.invoice_date,
        due_date: written.due_date,
        currency: written.currency,
        subtotal: written.subtotal,
        tax_total: written.tax_total,
        total: written.total,
        credit_applied: written.credit_applied,
        credit_added: written.credit_added,
        amount_due: written.amount_due,
        po_number: written.po_number.clone(),
        memo: None,
        paid_date: None,
        payment_reference: None,
        cancel_reason: None,
        tax_error: None,
        tax_attempts: 0,
        next_tax_attempt: None,
        lines,
        created_at: at,
        updated_at: at,
        version: 1,
    };
    assert_eq!(found, &expected);
    assert_eq!(
        stored_texts(found),
        written_texts(written),
        "amounts come back with exactly the digits written"
    );
}

pub async fn billable_accounts_are_active_or_with_billing_issues_not_deleted_in_id_order(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let other = tenant(&*store, "app-2").await;
    let with_status = |ext_id: &str, status| AccountFields {
        status,
        ..account(ext_id)
    };
    let active = insert_account(&*store, t, "active").await;
    let inactive = store
        .insert_account(t, &with_status("inactive", AccountStatus::Inactive), T0)
        .await
        .unwrap();
    let troubled = store
        .insert_account(
            t,
            &with_status("troubled", AccountStatus::BillingIssues),
            T0,
        )
        .await
        .unwrap();
    let deleted = insert_account(&*store, t, "deleted").await;
    store
        .delete_account(t, deleted.id, deleted.version, date(2025, 1, 1), minutes(1))
        .await
        .unwrap();
    let last = insert_account(&*store, t, "last").await;
    let foreign = insert_account(&*store, other, "foreign").await;
    assert!(inactive.id < troubled.id);

    let billable = |after: Option<AccountId>, limit| {
        let store = Arc::clone(&store);
        async move { store.billable_accounts(t, after, limit).await.unwrap() }
    };
    assert_eq!(billable(None, 100).await, [active.id, troubled.id, last.id]);
    assert_eq!(billable(None, 2).await, [active.id, troubled.id]);
    assert_eq!(billable(Some(active.id), 1).await, [troubled.id]);
    assert_eq!(billable(Some(troubled.id), 2).await, [last.id]);
    assert_eq!(
        billable(Some(inactive.id), 100).await,
        [troubled.id, last.id]
    );
    assert_eq!(billable(Some(last.id), 100).await, []);
    assert_eq!(
        store.billable_accounts(other, None, 100).await.unwrap(),
        [foreign.id]
    );

    // Billability follows the status as it is now.
    let reactivated = AccountFields {
        status: AccountStatus::Active,
        ..inactive.fields.clone()
    };
    store
        .update_account(t, inactive.id, inactive.version, &reactivated, minutes(2))
        .await
        .unwrap();
    assert_eq!(
        billable(None, 100).await,
        [active.id, inactive.id, troubled.id, last.id]
    );
}

pub async fn a_billing_snapshot_holds_plans_items_unreleased_ledger_and_pending_charges(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let a = book(&*store, t, "a").await;
    let b = book(&*store, t, "b").await;
    let other = tenant(&*store, "app-2").await;
    let foreign = book(&*store, other, "x").await;

    // An upsell joins the history of a's item.
    let upsell = ItemChange {
        quantity: Some(dec!(12)),
        prorate: Some(true),
        ..entry(
            ItemChangeKind::Upsell,
            date(2025, 3, 1),
            &a.item.fields,
            minutes(1),
        )
    };
    store
        .write_recurring_items(
            t,
            None,
            &[write(&a.item, a.item.fields.clone(), upsell)],
            minutes(1),
        )
        .await
        .unwrap();
    // A deleted item is no longer billed.
    let gone = insert_item(&*store, t, &a.plan, item("a-gone", date(2025, 1, 1))).await;
    let mut delete = write(
        &gone,
        gone.fields.clone(),
        entry(
            ItemChangeKind::Deleted,
            date(2025, 1, 1),
            &gone.fields,
            minutes(1),
        ),
    );
    delete.deleted = true;
    store
        .write_recurring_items(t, None, &[delete], minutes(1))
        .await
        .unwrap();
    // A cancelled plan and its (cancelled) item still are: a credit may be owed.
    let second = insert_plan(&*store, t, &a.account, plan("a-plan-2", date(2025, 1, 1))).await;
    let cancelled_item = insert_item(&*store, t, &second, item("a-item-2", date(2025, 1, 1))).await;
    store
        .cancel_plan(
            t,
            second.id,
            second.version,
            credited(date(2025, 4, 1)),
            minutes(2),
        )
        .await
        .unwrap();
    // One-time items in every state; only the pending ones are billed.
    let cancelled = insert_one_time(
        &*store,
        t,
        &a.plan,
        one_time("a-cancelled", date(2025, 1, 2)),
    )
    .await;
    store
        .update_one_time_item(
            t,
            cancelled.id,
            cancelled.version,
            &cancelled.fields,
            OneTimeMark::Cancelled,
            minutes(1),
        )
        .await
        .unwrap();
    let deleted =
        insert_one_time(&*store, t, &a.plan, one_time("a-deleted", date(2025, 1, 3))).await;
    store
        .update_one_time_item(
            t,
            deleted.id,
            deleted.version,
            &deleted.fields,
            OneTimeMark::CancelledAndDeleted,
            minutes(1),
        )
        .await
        .unwrap();
    let invoiced = insert_one_time(
        &*store,
        t,
        &a.plan,
        one_time("a-invoiced", date(2025, 2, 3)),
    )
    .await;
    let later = insert_one_time(&*store, t, &a.plan, one_time("a-later", date(2025, 5, 1))).await;

    // January on an invoice later cancelled with rebill (so released); February
    // with the `invoiced` item, and a settlement that needed no line.
    let billed = find_item(&*store, t, a.item.id).await;
    let jan = base(&billed, JAN.0, JAN.1);
    let feb = base(&billed, FEB.0, FEB.1);
    let settled = LedgerEntry {
        entry: EntryKey::Settled(billed.changes[1].seq),
        base_seq: billed.changes[1].seq,
        ..feb
    };
    let first = store
        .commit_bill(
            t,
            &piece_bill(&a.account, &billed, InvoiceStatus::Posted, JAN),
            "INV-",
            minutes(3),
        )
        .await
        .unwrap();
    let february = bill(
        &a.account,
        vec![new_invoice(
            InvoiceStatus::Draft,
            FEB.0,
            vec![
                recurring_line(&billed, FEB.0, FEB.1),
                one_time_line(&invoiced),
            ],
        )],
        vec![(Some(0), feb), (None, settled)],
        vec![(invoiced.id, 0)],
    );
    store
        .commit_bill(t, &february, "INV-", minutes(4))
        .await
        .unwrap();
    let january = find_invoice(&*store, t, first[0]).await;
    store
        .cancel_invoice(
            t,
            january.id,
            january.version,
            None,
            true,
            CreditMove {
                before: Decimal::ZERO,
                after: Decimal::ZERO,
            },
            minutes(5),
        )
        .await
        .unwrap();

    let asked = [
        b.account.id,
        foreign.account.id,
        a.account.id,
        AccountId(a.account.id.0 + 10_000),
    ];
    let snapshot = store.billing_snapshot(t, &asked).await.unwrap();
    let accounts: Vec<AccountId> = snapshot.iter().map(|s| s.account.id).collect();
    assert_eq!(
        accounts,
        [a.account.id, b.account.id],
        "the tenant's accounts asked for, in ID order"
    );

    let mut sa = snapshot[0].clone();
    assert_eq!(sa.account, find_account(&*store, t, a.account.id).await);
    sa.plans.sort_by_key(|p| p.id);
    let plans = [
        store
            .find_plan(t, &RecordKey::Id(a.plan.id))
            .await
            .unwrap()
            .unwrap(),
        store
            .find_plan(t, &RecordKey::Id(second.id))
            .await
            .unwrap()
            .unwrap(),
    ];
    assert_eq!(sa.plans, plans, "cancelled plans too");
    assert_eq!(sa.plans[1].cancel_date, Some(date(2025, 4, 1)));

    sa.items.sort_by_key(|i| i.id);
    let items = [
        find_item(&*store, t, a.item.id).await,
        find_item(&*store, t, cancelled_item.id).await,
    ];
    assert_eq!(sa.items, items, "items not deleted, with their histories");
    let history: Vec<i64> = sa.items[0].changes.iter().map(|c| c.seq).collect();
    assert_eq!(history.len(), 2);
    assert!(
        history[0] > 0 && history[0] < history[1],
        "seqs grow: {history:?}"
    );
    assert_eq!(sa.items[0].changes[1].kind, ItemChangeKind::Upsell);
    assert!(sa.items[1].cancellation.is_some());
    assert_eq!(
        sa.items[0].charged_through,
        Some(FEB.1),
        "only unreleased entries count"
    );

    sa.ledger.sort_by_key(|e| (e.item, e.period_start, e.entry));
    let mut ledger = vec![feb, settled];
    ledger.sort_by_key(|e| (e.item, e.period_start, e.entry));
    assert_eq!(sa.ledger, ledger, "only unreleased entries");
    assert!(!sa.ledger.contains(&jan), "January was released");

    sa.one_time.sort_by_key(|o| o.id);
    let pending = [
        find_one_time(&*store, t, a.one_time.id).await,
        find_one_time(&*store, t, later.id).await,
    ];
    assert_eq!(sa.one_time, pending, "only pending one-time items");

    let sb = &snapshot[1];
    assert_eq!(sb.account, find_account(&*store, t, b.account.id).await);
    assert_eq!(sb.plans, std::slice::from_ref(&b.plan));
    assert_eq!(sb.items, std::slice::from_ref(&b.item));
    assert!(sb.ledger.is_empty());
    assert_eq!(sb.one_time, std::slice::from_ref(&b.one_time));

    assert!(store.billing_snapshot(t, &[]).await.unwrap().is_empty());
    assert!(
        store
            .billing_snapshot(other, &[a.account.id])
            .await
            .unwrap()
            .is_empty(),
        "another tenant's account is not in a snapshot"
    );
}

pub async fn a_committed_bill_keeps_its_invoices_and_lines_exactly(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let bk = book(&*store, t, "acc").await;
    let untouched = insert_item(&*store, t, &bk.plan, item("acc-item-2", date(2025, 1, 1))).await;
    let seq = bk.item.changes[0].seq;

    // Values a store could slip on: many fractional digits, trailing zeros, a
    // negative amount, non-ASCII and quotes in the texts, a mid-period service.
    let upsold = InvoiceLineRecord {
        line_type: LineType::ProrationCharge,
        description: "Wartung – Müller 🚀 'Ω'\nzweite Zeile".to_owned(),
        quantity: dec!(3),
        unit_price: dec!(18.28),
        discount_percent: dec!(12.5),
        fraction: Some(dec!(0.483870968)),
        amount: dec!(54.84),
        service_start: date(2025, 1, 16),
        tax_code: Some("VAT-19 \"std\"".to_owned()),
        tax_amount: dec!(10.42),
        ..recurring_line(&bk.item, JAN.0, JAN.1)
    };
    let taken_back = InvoiceLineRecord {
        line_type: LineType::ProrationCredit,
        quantity: dec!(0.5),
        unit_price: dec!(24.6),
        fraction: Some(dec!(1)),
        amount: dec!(-12.30),
        ..recurring_line(&bk.item, JAN.0, JAN.1)
    };
    let once = one_time_line(&bk.one_time);
    let first = NewInvoice {
        plan_id: Some(bk.plan.id),
        status: InvoiceStatus::Posted,
        invoice_date: date(2025, 1, 16),
        due_date: date(2025, 2, 28),
        currency: Currency::USD,
        subtotal: dec!(142.49),
        tax_total: dec!(10.42),
        total: dec!(152.91),
        credit_applied: dec!(0.00),
        credit_added: dec!(0.00),
        amount_due: dec!(152.91),
        po_number: Some("PO 'Ω' 42".to_owned()),
        lines: vec![upsold, taken_back, once],
    };
    let credit_note = NewInvoice {
        plan_id: None,
        status: InvoiceStatus::Draft,
        invoice_date: date(2025, 2, 1),
        due_date: date(2025, 2, 1),
        currency: Currency::USD,
        subtotal: dec!(-40.00),
        tax_total: dec!(0),
        total: dec!(-40.00),
        credit_applied: dec!(0.00),
        credit_added: dec!(40.00),
        amount_due: dec!(0.00),
        po_number: None,
        lines: vec![InvoiceLineRecord {
            line_type: LineType::CancellationCredit,
            amount: dec!(-40.00),
            ..recurring_line(&bk.item, FEB.0, FEB.1)
        }],
    };
    // Base and remainder entries move the charged-through date, settlements never.
    let jan = base(&bk.item, JAN.0, JAN.1);
    let remainder = LedgerEntry {
        entry: EntryKey::Remainder(seq),
        ..base(&bk.item, FEB.0, FEB.1)
    };
    let settled = LedgerEntry {
        entry: EntryKey::Settled(seq),
        period_end: date(2025, 6, 1),
        ..jan
    };
    let committed = AccountBill {
        account: bk.account.id,
        credit_balance_before: Decimal::ZERO,
        credit_balance_after: dec!(40.00),
        invoices: vec![first.clone(), credit_note.clone()],
        ledger: vec![(Some(0), jan), (Some(1), remainder), (None, settled)],
        one_time: vec![(bk.one_time.id, 0)],
    };
    let at = minutes(10);
    let ids = store.commit_bill(t, &committed, "INV-", at).await.unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1], "invoices are stored in the bill's order");

    let found = find_invoice(&*store, t, ids[0]).await;
    assert_stored(&found, &first, &bk.account, Some("INV-000001"), at);
    let found_note = find_invoice(&*store, t, ids[1]).await;
    assert_stored(&found_note, &credit_note, &bk.account, None, at);
    let bare = store.find_invoice(t, ids[0], false).await.unwrap().unwrap();
    assert_eq!(
        bare,
        Invoice {
            lines: Vec::new(),
            ..found.clone()
        },
        "lines only when asked for"
    );
    assert_eq!(
        store
            .find_invoice(t, InvoiceId(ids[1].0 + 1000), true)
            .await
            .unwrap(),
        None
    );

    let mut ledger = vec![jan, remainder, settled];
    ledger.sort_by_key(|e| (e.item, e.period_start, e.entry));
    assert_eq!(ledger_of(&*store, t, bk.account.id).await, ledger);
    let billed = find_item(&*store, t, bk.item.id).await;
    assert_eq!(
        billed.charged_through,
        Some(FEB.1),
        "from base and remainder entries only"
    );
    assert_eq!(
        billed.version,
        bk.item.version + 1,
        "an edit read before the bill retries"
    );
    assert_eq!(
        find_item(&*store, t, untouched.id).await,
        untouched,
        "an item not billed is untouched"
    );

    let once = find_one_time(&*store, t, bk.one_time.id).await;
    assert!(once.invoiced);
    assert_eq!(once.version, bk.one_time.version + 1);
    assert_eq!(once.updated_at, at);
    assert_eq!(once.fields, bk.one_time.fields);

    assert_eq!(
        find_account(&*store, t, bk.account.id).await.credit_balance,
        dec!(40)
    );
}

pub async fn posted_invoices_are_numbered_without_gaps_and_drafts_are_not(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let other = tenant(&*store, "app-2").await;
    let a = book(&*store, t, "a").await;
    let b = book(&*store, t, "b").await;
    let x = book(&*store, other, "x").await;
    let numbers = |ids: Vec<InvoiceId>, tenant| {
        let store = Arc::clone(&store);
        async move {
            let mut numbers = Vec::new();
            for id in ids {
                numbers.push(find_invoice(&*store, tenant, id).await.number);
            }
            numbers
        }
    };
    let n = |s: &str| Some(s.to_owned());

    let three = bill(
        &a.account,
        vec![
            new_invoice(
                InvoiceStatus::Posted,
                JAN.0,
                vec![recurring_line(&a.item, JAN.0, JAN.1)],
            ),
            new_invoice(
                InvoiceStatus::Draft,
                JAN.0,
                vec![one_time_line(&a.one_time)],
            ),
            new_invoice(
                InvoiceStatus::Posted,
                FEB.0,
                vec![recurring_line(&a.item, FEB.0, FEB.1)],
            ),
        ],
        vec![
            (Some(0), base(&a.item, JAN.0, JAN.1)),
            (Some(2), base(&a.item, FEB.0, FEB.1)),
        ],
        vec![(a.one_time.id, 1)],
    );
    let ids = store
        .commit_bill(t, &three, "INV-", minutes(1))
        .await
        .unwrap();
    assert_eq!(
        numbers(ids.clone(), t).await,
        [n("INV-000001"), None, n("INV-000002")],
        "posted invoices in the bill's order; a draft gets none"
    );

    // A refused bill takes no number.
    let refused = store
        .commit_bill(
            t,
            &piece_bill(&a.account, &a.item, InvoiceStatus::Posted, JAN),
            "INV-",
            minutes(2),
        )
        .await;
    assert!(matches!(refused, Err(StoreError::Stale)), "got {refused:?}");

    // The prefix is the one given; the sequence is the tenant's.
    let next = store
        .commit_bill(
            t,
            &piece_bill(&b.account, &b.item, InvoiceStatus::Posted, JAN),
            "R/",
            minutes(3),
        )
        .await
        .unwrap();
    assert_eq!(numbers(next, t).await, [n("R/000003")]);
    let theirs = store
        .commit_bill(
            other,
            &piece_bill(&x.account, &x.item, InvoiceStatus::Posted, JAN),
            "INV-",
            minutes(3),
        )
        .await
        .unwrap();
    assert_eq!(
        numbers(theirs, other).await,
        [n("INV-000001")],
        "each tenant counts on its own"
    );

    // Posting the draft takes the next number; a draft-only bill takes none.
    let draft = find_invoice(&*store, t, ids[1]).await;
    let post = dynabill_app::model::InvoiceUpdate {
        status: Some(InvoiceStatus::Posted),
        ..Default::default()
    };
    let posted = store
        .update_invoice(t, draft.id, draft.version, &post, "INV-", minutes(4))
        .await
        .unwrap();
    assert_eq!(posted.number, n("INV-000004"));
    let drafts = store
        .commit_bill(
            t,
            &piece_bill(&b.account, &b.item, InvoiceStatus::Draft, FEB),
            "INV-",
            minutes(5),
        )
        .await
        .unwrap();
    assert_eq!(numbers(drafts, t).await, [None]);
    let last = store
        .commit_bill(
            t,
            &piece_bill(&b.account, &b.item, InvoiceStatus::Posted, MAR),
            "INV-",
            minutes(6),
        )
        .await
        .unwrap();
    assert_eq!(numbers(last, t).await, [n("INV-000005")]);
}

pub async fn a_bill_with_a_piece_billed_already_is_refused_and_writes_nothing(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let bk = book(&*store, t, "acc").await;
    let second = insert_item(&*store, t, &bk.plan, item("acc-item-2", date(2025, 1, 1))).await;
    let later = insert_one_time(
        &*store,
        t,
        &bk.plan,
        one_time("acc-later", date(2025, 2, 10)),
    )
    .await;
    store
        .commit_bill(
            t,
            &january_bill(&bk, InvoiceStatus::Posted),
            "INV-",
            minutes(1),
        )
        .await
        .unwrap();
    let invoices_before = invoice_ids(&*store, t, InvoiceFilter::default()).await;
    let account_before = find_account(&*store, t, bk.account.id).await;
    let item_before = find_item(&*store, t, bk.item.id).await;
    let ledger_before = ledger_of(&*store, t, bk.account.id).await;

    // New things, and one entry billed already: the key is the item, the piece's
    // start and the entry, whatever the end and the seq known.
    let billed_again = LedgerEntry {
        period_end: date(2025, 1, 20),
        base_seq: item_before.changes[0].seq + 1,
        ..base(&bk.item, JAN.0, JAN.1)
    };
    let fresh = base(&second, FEB.0, FEB.1);
    let mut attempt = bill(
        &account_before,
        vec![new_invoice(
            InvoiceStatus::Posted,
            FEB.0,
            vec![recurring_line(&second, FEB.0, FEB.1), one_time_line(&later)],
        )],
        vec![(Some(0), fresh), (Some(0), billed_again)],
        vec![(later.id, 0)],
    );
    attempt.credit_balance_after = dec!(7.50);
    let refused = store.commit_bill(t, &attempt, "INV-", minutes(2)).await;
    assert!(matches!(refused, Err(StoreError::Stale)), "got {refused:?}");

    assert_eq!(
        invoice_ids(&*store, t, InvoiceFilter::default()).await,
        invoices_before,
        "no invoice"
    );
    assert_eq!(
        find_account(&*store, t, bk.account.id).await,
        account_before,
        "no credit moved"
    );
    assert_eq!(
        find_one_time(&*store, t, later.id).await,
        later,
        "the one-time item stays pending"
    );
    assert_eq!(
        find_item(&*store, t, second.id).await,
        second,
        "no charged-through date"
    );
    assert_eq!(find_item(&*store, t, bk.item.id).await, item_before);
    assert_eq!(
        ledger_of(&*store, t, bk.account.id).await,
        ledger_before,
        "no ledger entry"
    );

    // The same piece under another entry is another entry.
    let settled = LedgerEntry {
        entry: EntryKey::Settled(item_before.changes[0].seq),
        ..base(&bk.item, JAN.0, JAN.1)
    };
    let settlement = bill(
        &account_before,
        Vec::new(),
        vec![(None, settled)],
        Vec::new(),
    );
    let none = store
        .commit_bill(t, &settlement, "INV-", minutes(3))
        .await
        .unwrap();
    assert!(none.is_empty());

    // Without the duplicate the bill commits, and gets the number the refused one did not use.
    attempt.ledger.pop();
    let ids = store
        .commit_bill(t, &attempt, "INV-", minutes(4))
        .await
        .unwrap();
    let invoice = find_invoice(&*store, t, ids[0]).await;
    assert_eq!(invoice.number.as_deref(), Some("INV-000002"));
    assert_eq!(
        find_account(&*store, t, bk.account.id).await.credit_balance,
        dec!(7.5)
    );
    assert!(find_one_time(&*store, t, later.id).await.invoiced);
    assert_eq!(
        find_item(&*store, t, second.id).await.charged_through,
        Some(FEB.1)
    );
}

pub async fn a_bill_moves_the_credit_balance_only_from_the_balance_it_was_computed_from(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let bk = book(&*store, t, "acc").await;
    assert_eq!(
        bk.account.credit_balance.to_string(),
        "0",
        "a new account has none"
    );
    let refund = |amount: Decimal| InvoiceLineRecord {
        line_type: LineType::CancellationCredit,
        amount,
        ..recurring_line(&bk.item, JAN.0, JAN.1)
    };

    // A credit note puts 25.50 on the account.
    let mut note = new_invoice(InvoiceStatus::Posted, JAN.0, vec![refund(dec!(-25.50))]);
    note.credit_added = dec!(25.50);
    note.amount_due = dec!(0.00);
    let adding = AccountBill {
        credit_balance_after: dec!(25.50),
        ..bill(
            &bk.account,
            vec![note],
            vec![(Some(0), base(&bk.item, JAN.0, JAN.1))],
            Vec::new(),
        )
    };
    store
        .commit_bill(t, &adding, "INV-", minutes(1))
        .await
        .unwrap();
    let balance = find_account(&*store, t, bk.account.id).await.credit_balance;
    assert_eq!(
        balance.to_string(),
        "25.5",
        "a balance is kept normalised, the same on every backend"
    );

    // A bill computed from the balance before that is refused, and writes nothing.
    let mut february = piece_bill(&bk.account, &bk.item, InvoiceStatus::Posted, FEB);
    february.credit_balance_before = Decimal::ZERO;
    february.credit_balance_after = dec!(5);
    let refused = store.commit_bill(t, &february, "INV-", minutes(2)).await;
    assert!(matches!(refused, Err(StoreError::Stale)), "got {refused:?}");
    assert_eq!(
        invoice_ids(&*store, t, InvoiceFilter::default())
            .await
            .len(),
        1
    );
    assert_eq!(ledger_of(&*store, t, bk.account.id).await.len(), 1);
    assert_eq!(
        find_account(&*store, t, bk.account.id).await.credit_balance,
        dec!(25.5)
    );

    // Computed from the balance as it is, it commits.
    february.credit_balance_before = dec!(25.50);
    february.credit_balance_after = dec!(20.50);
    february.invoices[0].credit_applied = dec!(5.00);
    february.invoices[0].amount_due = dec!(0.00);
    let ids = store
        .commit_bill(t, &february, "INV-", minutes(3))
        .await
        .unwrap();
    assert_eq!(
        find_account(&*store, t, bk.account.id).await.credit_balance,
        dec!(20.5)
    );
    assert_eq!(
        find_invoice(&*store, t, ids[0]).await.number.as_deref(),
        Some("INV-000002"),
        "the refused bill took no number"
    );

    // Once more from a balance that has moved since: refused.
    let mut march = piece_bill(&bk.account, &bk.item, InvoiceStatus::Posted, MAR);
    march.credit_balance_before = dec!(25.50);
    march.credit_balance_after = Decimal::ZERO;
    let refused = store.commit_bill(t, &march, "INV-", minutes(4)).await;
    assert!(matches!(refused, Err(StoreError::Stale)), "got {refused:?}");
    assert_eq!(
        find_account(&*store, t, bk.account.id).await.credit_balance,
        dec!(20.5)
    );
    assert_eq!(
        invoice_ids(&*store, t, InvoiceFilter::default())
            .await
            .len(),
        2
    );
}

pub async fn a_one_time_item_is_invoiced_once_and_only_while_pending(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let bk = book(&*store, t, "acc").await;
    store
        .commit_bill(
            t,
            &january_bill(&bk, InvoiceStatus::Draft),
            "INV-",
            minutes(1),
        )
        .await
        .unwrap();
    assert!(find_one_time(&*store, t, bk.one_time.id).await.invoiced);

    // Billing it again is refused, and the whole bill with it.
    let account = find_account(&*store, t, bk.account.id).await;
    let again = bill(
        &account,
        vec![new_invoice(
            InvoiceStatus::Posted,
            FEB.0,
            vec![
                recurring_line(&bk.item, FEB.0, FEB.1),
                one_time_line(&bk.one_time),
            ],
        )],
        vec![(Some(0), base(&bk.item, FEB.0, FEB.1))],
        vec![(bk.one_time.id, 0)],
    );
    let refused = store.commit_bill(t, &again, "INV-", minutes(2)).await;
    assert!(matches!(refused, Err(StoreError::Stale)), "got {refused:?}");

    // A cancelled one is no longer pending either.
    let cancelled = insert_one_time(
        &*store,
        t,
        &bk.plan,
        one_time("acc-cancelled", date(2025, 2, 2)),
    )
    .await;
    let cancelled = store
        .update_one_time_item(
            t,
            cancelled.id,
            cancelled.version,
            &cancelled.fields,
            OneTimeMark::Cancelled,
            minutes(3),
        )
        .await
        .unwrap();
    let with_cancelled = AccountBill {
        invoices: vec![new_invoice(
            InvoiceStatus::Posted,
            FEB.0,
            vec![
                recurring_line(&bk.item, FEB.0, FEB.1),
                one_time_line(&cancelled),
            ],
        )],
        one_time: vec![(cancelled.id, 0)],
        ..again.clone()
    };
    let refused = store
        .commit_bill(t, &with_cancelled, "INV-", minutes(4))
        .await;
    assert!(matches!(refused, Err(StoreError::Stale)), "got {refused:?}");
    assert_eq!(find_one_time(&*store, t, cancelled.id).await, cancelled);

    assert_eq!(
        invoice_ids(&*store, t, InvoiceFilter::default())
            .await
            .len(),
        1
    );
    assert_eq!(
        ledger_of(&*store, t, bk.account.id).await,
        [base(&bk.item, JAN.0, JAN.1)]
    );
    assert_eq!(
        find_item(&*store, t, bk.item.id).await.charged_through,
        Some(JAN.1)
    );
}

pub async fn bills_of_several_accounts_commit_together_or_not_at_all(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let a = book(&*store, t, "a").await;
    let b = book(&*store, t, "b").await;
    let c = book(&*store, t, "c").await;

    let batch = [
        january_bill(&a, InvoiceStatus::Posted),
        january_bill(&b, InvoiceStatus::Draft),
        january_bill(&c, InvoiceStatus::Posted),
    ];
    let ids = store
        .commit_bills(t, &batch, "INV-", minutes(1))
        .await
        .unwrap();
    assert_eq!(ids.len(), 3, "IDs per bill");
    let numbers = [Some("INV-000001"), None, Some("INV-000002")];
    for (((bk, bill), ids), number) in [&a, &b, &c].into_iter().zip(&batch).zip(&ids).zip(numbers) {
        assert_eq!(ids.len(), 1);
        let invoice = find_invoice(&*store, t, ids[0]).await;
        // Posted invoices are numbered in bill order; a draft gets none.
        assert_stored(&invoice, &bill.invoices[0], &bk.account, number, minutes(1));
        assert!(find_one_time(&*store, t, bk.one_time.id).await.invoiced);
        assert_eq!(
            find_item(&*store, t, bk.item.id).await.charged_through,
            Some(JAN.1)
        );
        assert_eq!(ledger_of(&*store, t, bk.account.id).await.len(), 1);
    }
    assert!(
        ids[0][0] < ids[1][0] && ids[1][0] < ids[2][0],
        "invoice IDs follow the bills' order"
    );

    // One bill of the batch bills a piece billed already: no bill of it is written.
    let invoices_before = invoice_ids(&*store, t, InvoiceFilter::default()).await;
    let a_item = find_item(&*store, t, a.item.id).await;
    let refused = store
        .commit_bills(
            t,
            &[
                piece_bill(&a.account, &a.item, InvoiceStatus::Posted, FEB),
                piece_bill(&b.account, &b.item, InvoiceStatus::Posted, JAN),
            ],
            "INV-",
            minutes(2),
        )
        .await;
    assert!(matches!(refused, Err(StoreError::Stale)), "got {refused:?}");
    assert_eq!(
        invoice_ids(&*store, t, InvoiceFilter::default()).await,
        invoices_before,
        "no invoice of the batch"
    );
    assert_eq!(find_item(&*store, t, a.item.id).await, a_item);
    assert_eq!(ledger_of(&*store, t, a.account.id).await.len(), 1);

    // One bill computed from a credit balance that moved: nothing either.
    let mut moved = piece_bill(&c.account, &c.item, InvoiceStatus::Posted, FEB);
    moved.credit_balance_before = dec!(3);
    moved.credit_balance_after = dec!(0);
    let refused = store
        .commit_bills(
            t,
            &[
                piece_bill(&a.account, &a.item, InvoiceStatus::Posted, FEB),
                moved,
            ],
            "INV-",
            minutes(3),
        )
        .await;
    assert!(matches!(refused, Err(StoreError::Stale)), "got {refused:?}");
    assert_eq!(
        invoice_ids(&*store, t, InvoiceFilter::default()).await,
        invoices_before
    );

    // The refused batches took no number; an empty batch writes nothing.
    assert!(
        store
            .commit_bills(t, &[], "INV-", minutes(4))
            .await
            .unwrap()
            .is_empty()
    );
    let ids = store
        .commit_bills(
            t,
            &[piece_bill(&a.account, &a.item, InvoiceStatus::Posted, FEB)],
            "INV-",
            minutes(5),
        )
        .await
        .unwrap();
    assert_eq!(
        find_invoice(&*store, t, ids[0][0]).await.number.as_deref(),
        Some("INV-000003")
    );
}
