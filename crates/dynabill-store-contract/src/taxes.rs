//! The contract for taxation: the built-in rate table, the taxes of invoice lines,
//! posting an invoice out of Draft or Pending Tax, and recorded tax errors.

use std::sync::Arc;

use dynabill_app::Store;
use dynabill_app::model::{
    AccountBill, CreditMove, Invoice, InvoiceFilter, InvoiceLineRecord, LineTax, LineTaxUpdate,
    PostInvoice, TaxRateRecord,
};
use dynabill_app::store::StoreError;
use dynabill_core::billing::LineType;
use dynabill_core::domain::{InvoiceId, InvoiceStatus, TaxRateId, TenantId};
use dynabill_core::tax::TaxRule;
use jiff::civil::date;
use rust_decimal::{Decimal, dec};

use crate::fixtures::{
    EVERYTHING, base, bill, book, credit, find_account, find_invoice, invoice_ids, january_bill,
    minutes, new_invoice, piece_bill, recurring_line, tenant,
};

fn rule(name: &str, state: Option<&str>, tax_code: Option<&str>, rate: Decimal) -> TaxRule {
    TaxRule {
        name: name.to_owned(),
        country: "US".to_owned(),
        state: state.map(str::to_owned),
        tax_code: tax_code.map(str::to_owned),
        rate,
    }
}

fn tax(description: &str, amount: Decimal, rate: Option<Decimal>, place: Option<&str>) -> LineTax {
    LineTax {
        description: description.to_owned(),
        amount,
        rate,
        jurisdiction: place.map(str::to_owned),
    }
}

/// The decimals of a line's taxes as text: what must come back exactly.
fn tax_texts(line: &InvoiceLineRecord) -> Vec<(String, Option<String>)> {
    line.taxes
        .iter()
        .map(|t| (t.amount.to_string(), t.rate.map(|r| r.to_string())))
        .collect()
}

/// A posting to `status` without taxes, which moves no credit from `balance`.
pub(crate) fn untaxed(invoice: &Invoice, status: InvoiceStatus, balance: Decimal) -> PostInvoice {
    PostInvoice {
        status,
        line_taxes: Vec::new(),
        tax_total: dec!(0.00),
        total: invoice.subtotal,
        credit_applied: dec!(0.00),
        credit_added: dec!(0.00),
        amount_due: invoice.subtotal,
        balance: CreditMove {
            before: balance,
            after: balance,
        },
    }
}

pub(crate) async fn post(
    store: &dyn Store,
    tenant: TenantId,
    invoice: &Invoice,
    post: &PostInvoice,
    minute: i64,
) -> Result<Invoice, StoreError> {
    store
        .post_invoice(
            tenant,
            invoice.id,
            invoice.version,
            post,
            "INV-",
            minutes(minute),
        )
        .await
}

pub async fn tax_rates_are_listed_oldest_first_with_their_exact_rates_and_removed_once(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    assert_eq!(store.list_tax_rates(t).await.unwrap(), []);

    // Rates a store could slip on: trailing zeros, six decimals, zero, a hundred;
    // non-ASCII and quotes in the name; a state and a tax code, or neither.
    let rules = [
        rule("STATE SALES TAX", Some("CA"), None, dec!(7.250)),
        rule("Müller 'Ω' \"tax\"", None, Some("SAAS"), dec!(0.000001)),
        rule("EXEMPT", Some("NY"), Some("FOOD"), dec!(0)),
        rule("FULL", None, None, dec!(100)),
        rule("STATE SALES TAX", None, None, dec!(5)),
    ];
    let mut added: Vec<TaxRateRecord> = Vec::new();
    for rule in &rules {
        let record = store.add_tax_rate(t, rule).await.unwrap();
        assert_eq!(&record.rule, rule);
        added.push(record);
    }
    let ids: Vec<TaxRateId> = added.iter().map(|r| r.id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "IDs grow in the order added: {ids:?}"
    );

    let listed = store.list_tax_rates(t).await.unwrap();
    assert_eq!(listed, added, "oldest first, every field as written");
    let rates: Vec<String> = listed.iter().map(|r| r.rule.rate.to_string()).collect();
    assert_eq!(
        rates,
        ["7.250", "0.000001", "0", "100", "5"],
        "rates keep exactly the digits written"
    );

    assert!(store.remove_tax_rate(t, ids[1]).await.unwrap());
    assert!(
        !store.remove_tax_rate(t, ids[1]).await.unwrap(),
        "a rule is removed once"
    );
    assert!(
        !store
            .remove_tax_rate(t, TaxRateId(ids[4].0 + 1000))
            .await
            .unwrap()
    );
    let mut left = added.clone();
    left.remove(1);
    assert_eq!(store.list_tax_rates(t).await.unwrap(), left);

    // A rule added after a removal still lists last.
    let later = store.add_tax_rate(t, &rules[1]).await.unwrap();
    assert!(later.id > ids[4], "IDs are not reused");
    left.push(later);
    assert_eq!(store.list_tax_rates(t).await.unwrap(), left);
}

pub async fn a_tenant_never_sees_or_removes_another_tenants_tax_rates(store: Arc<dyn Store>) {
    let owner = tenant(&*store, "app-1").await;
    let other = tenant(&*store, "app-2").await;
    let theirs = store
        .add_tax_rate(
            owner,
            &rule("STATE SALES TAX", Some("CA"), None, dec!(7.25)),
        )
        .await
        .unwrap();
    assert_eq!(store.list_tax_rates(other).await.unwrap(), []);

    assert!(
        !store.remove_tax_rate(other, theirs.id).await.unwrap(),
        "another tenant's rule is not the caller's to remove"
    );
    let mine = store
        .add_tax_rate(other, &rule("CITY TAX", None, None, dec!(1.5)))
        .await
        .unwrap();
    assert_eq!(
        store.list_tax_rates(owner).await.unwrap(),
        std::slice::from_ref(&theirs)
    );
    assert_eq!(
        store.list_tax_rates(other).await.unwrap(),
        std::slice::from_ref(&mine)
    );

    assert!(store.remove_tax_rate(owner, theirs.id).await.unwrap());
    assert_eq!(store.list_tax_rates(owner).await.unwrap(), []);
    assert_eq!(
        store.list_tax_rates(other).await.unwrap(),
        [mine],
        "untouched"
    );
}

pub async fn line_taxes_are_kept_exactly_through_a_committed_bill(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let bk = book(&*store, t, "acc").await;

    // Several taxes per line, five-decimal amounts (trailing zeros too), a negative
    // amount, rates and jurisdictions given or not (or empty), and descriptions
    // with everything JSON must escape.
    let mut january = january_bill(&bk, InvoiceStatus::Posted);
    let invoice = &mut january.invoices[0];
    invoice.lines[0].tax_code = Some("SAAS".to_owned());
    invoice.lines[0].taxes = vec![
        tax(
            "STATE SALES TAX",
            dec!(0.36250),
            Some(dec!(7.250)),
            Some("US-CA"),
        ),
        tax(
            "Müller 'Ω' \"quoted\" \\ {}[],:\nsecond line\t🚀",
            dec!(0.00001),
            None,
            None,
        ),
        tax("REFUND", dec!(-0.12345), Some(dec!(0.000001)), Some("")),
    ];
    invoice.lines[0].tax_amount = dec!(0.23906);
    invoice.lines[1].taxes = vec![tax("VAT", dec!(18.99050), Some(dec!(19)), Some("DE"))];
    invoice.lines[1].tax_amount = dec!(18.99050);
    invoice.tax_total = dec!(19.23);
    invoice.total = invoice.subtotal + invoice.tax_total;
    invoice.amount_due = invoice.total;
    let written = invoice.clone();
    let made = store
        .commit_bill(t, &january, "INV-", minutes(1))
        .await
        .unwrap();

    let found = find_invoice(&*store, t, made[0]).await;
    assert_eq!(found.lines.len(), 2);
    for (stored, line) in found.lines.iter().zip(&written.lines) {
        assert_eq!(stored.taxes, line.taxes);
        assert_eq!(
            tax_texts(stored),
            tax_texts(line),
            "exactly the digits written"
        );
        assert_eq!(stored.tax_amount.to_string(), line.tax_amount.to_string());
        assert_eq!(stored.tax_code, line.tax_code);
    }
    assert_eq!(found.tax_total.to_string(), "19.23");
    let listed = store
        .list_invoices(t, &InvoiceFilter::default(), EVERYTHING, true)
        .await
        .unwrap();
    assert_eq!(listed.items, [found], "listed as found");

    // A line written without taxes reads back with none.
    let account = find_account(&*store, t, bk.account.id).await;
    let february = piece_bill(
        &account,
        &bk.item,
        InvoiceStatus::Draft,
        (date(2025, 2, 1), date(2025, 3, 1)),
    );
    let made = store
        .commit_bill(t, &february, "INV-", minutes(2))
        .await
        .unwrap();
    let found = find_invoice(&*store, t, made[0]).await;
    assert_eq!(found.lines[0].taxes, []);
}

pub async fn posting_a_draft_numbers_it_writes_its_taxes_and_totals_and_moves_its_credit(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let bk = book(&*store, t, "acc").await;
    credit(&*store, &bk, dec!(30.00)).await; // INV-000001
    let account = find_account(&*store, t, bk.account.id).await;
    assert_eq!(account.credit_balance, dec!(30));

    // Two drafts. January: its recurring line and an upsell line of the item carry
    // taxes from before, its one-time line none. February: its line carries a tax.
    let (jan, feb) = (
        (date(2025, 1, 1), date(2025, 2, 1)),
        (date(2025, 2, 1), date(2025, 3, 1)),
    );
    let mut january = january_bill(&bk, InvoiceStatus::Draft);
    let upsell = InvoiceLineRecord {
        line_type: LineType::ProrationCharge,
        amount: dec!(2.00),
        tax_code: Some("VAT-7".to_owned()),
        tax_amount: dec!(0.07),
        taxes: vec![tax("OLD", dec!(0.07), Some(dec!(3.5)), None)],
        ..recurring_line(&bk.item, date(2025, 1, 16), jan.1)
    };
    let lines = &mut january.invoices[0].lines;
    lines[0].tax_code = Some("SAAS".to_owned());
    lines[0].tax_amount = dec!(0.50);
    lines[0].taxes = vec![tax("OLD", dec!(0.50), Some(dec!(10)), Some("US"))];
    lines.push(upsell);
    let subtotal: Decimal = lines.iter().map(|l| l.amount).sum();
    let draft_january = &mut january.invoices[0];
    draft_january.subtotal = subtotal;
    draft_january.tax_total = dec!(0.57);
    draft_january.total = subtotal + dec!(0.57);
    draft_january.amount_due = draft_january.total;
    let mut draft_february = new_invoice(
        InvoiceStatus::Draft,
        feb.0,
        vec![InvoiceLineRecord {
            tax_amount: dec!(0.25),
            taxes: vec![tax("FEB TAX", dec!(0.25), None, None)],
            ..recurring_line(&bk.item, feb.0, feb.1)
        }],
    );
    draft_february.tax_total = dec!(0.25);
    let drafts = AccountBill {
        invoices: vec![january.invoices[0].clone(), draft_february],
        ledger: vec![
            (Some(0), base(&bk.item, jan.0, jan.1)),
            (Some(1), base(&bk.item, feb.0, feb.1)),
        ],
        ..bill(&account, Vec::new(), Vec::new(), january.one_time.clone())
    };
    let made = store
        .commit_bill(t, &drafts, "INV-", minutes(2))
        .await
        .unwrap();
    let draft = find_invoice(&*store, t, made[0]).await;
    let february = find_invoice(&*store, t, made[1]).await;
    let [recurring, once, upsold] = &draft.lines[..] else {
        panic!("three lines: {:?}", draft.lines)
    };

    // The one-time line gets two taxes and a tax code; the upsell line a new tax
    // (its tax code kept); the recurring line, not named, none. A line of another
    // invoice named by mistake is not touched.
    let once_taxes = vec![
        tax(
            "STATE SALES TAX",
            dec!(7.24638),
            Some(dec!(7.25)),
            Some("US-CA"),
        ),
        tax("COUNTY TAX", dec!(0.99950), None, Some("US-CA-LA")),
    ];
    let upsell_taxes = vec![tax("NEW", dec!(0.14000), Some(dec!(7)), None)];
    let posting = PostInvoice {
        status: InvoiceStatus::Posted,
        line_taxes: vec![
            LineTaxUpdate {
                line_id: once.id,
                tax_code: Some("GOODS".to_owned()),
                taxes: once_taxes.clone(),
            },
            LineTaxUpdate {
                line_id: upsold.id,
                tax_code: None,
                taxes: upsell_taxes.clone(),
            },
            LineTaxUpdate {
                line_id: february.lines[0].id,
                tax_code: Some("HIJACK".to_owned()),
                taxes: vec![tax("WRONG", dec!(9.99), None, None)],
            },
        ],
        tax_total: dec!(8.39),
        total: dec!(115.34),
        credit_applied: dec!(30.00),
        credit_added: dec!(0.00),
        amount_due: dec!(85.34),
        balance: CreditMove {
            before: dec!(30.00),
            after: dec!(0.00),
        },
    };
    assert_eq!(draft.subtotal, dec!(106.95));

    // Refused, with nothing written and no number taken: at a stale version, by
    // another tenant, for an unknown invoice, or from a credit balance that moved.
    let untouched = |what: &'static str| {
        let store = Arc::clone(&store);
        let (draft, february) = (draft.clone(), february.clone());
        async move {
            assert_eq!(find_invoice(&*store, t, draft.id).await, draft, "{what}");
            assert_eq!(
                find_invoice(&*store, t, february.id).await,
                february,
                "{what}"
            );
            assert_eq!(
                find_account(&*store, t, bk.account.id).await.credit_balance,
                dec!(30),
                "{what}"
            );
        }
    };
    for version in [draft.version - 1, draft.version + 1] {
        let stale = store
            .post_invoice(t, draft.id, version, &posting, "INV-", minutes(3))
            .await;
        assert!(matches!(stale, Err(StoreError::Stale)), "got {stale:?}");
        untouched("at a stale version").await;
    }
    let other = tenant(&*store, "app-2").await;
    let foreign = post(&*store, other, &draft, &posting, 3).await;
    assert!(matches!(foreign, Err(StoreError::Stale)), "got {foreign:?}");
    untouched("by another tenant").await;
    let unknown = Invoice {
        id: InvoiceId(made[1].0 + 1000),
        ..draft.clone()
    };
    let missing = post(&*store, t, &unknown, &posting, 3).await;
    assert!(matches!(missing, Err(StoreError::Stale)), "got {missing:?}");
    let moved = PostInvoice {
        balance: CreditMove {
            before: dec!(25.00),
            after: dec!(0.00),
        },
        ..posting.clone()
    };
    let moved = post(&*store, t, &draft, &moved, 3).await;
    assert!(matches!(moved, Err(StoreError::Stale)), "got {moved:?}");
    untouched("from a moved balance").await;

    let posted = post(&*store, t, &draft, &posting, 4).await.unwrap();
    let expected = Invoice {
        number: Some("INV-000002".to_owned()),
        status: InvoiceStatus::Posted,
        tax_total: dec!(8.39),
        total: dec!(115.34),
        credit_applied: dec!(30.00),
        credit_added: dec!(0.00),
        amount_due: dec!(85.34),
        lines: vec![
            InvoiceLineRecord {
                taxes: Vec::new(),
                tax_amount: Decimal::ZERO,
                ..recurring.clone()
            },
            InvoiceLineRecord {
                taxes: once_taxes.clone(),
                tax_amount: dec!(8.24588),
                tax_code: Some("GOODS".to_owned()),
                ..once.clone()
            },
            InvoiceLineRecord {
                taxes: upsell_taxes.clone(),
                tax_amount: dec!(0.14),
                ..upsold.clone()
            },
        ],
        updated_at: minutes(4),
        version: draft.version + 1,
        ..draft.clone()
    };
    assert_eq!(posted, expected);
    assert_eq!(posted.lines[0].tax_code.as_deref(), Some("SAAS"), "kept");
    assert_eq!(posted.lines[2].tax_code.as_deref(), Some("VAT-7"), "kept");
    assert_eq!(
        posted.lines[1].tax_amount.to_string(),
        "8.24588",
        "a line's tax amount is the exact sum of its taxes"
    );
    assert_eq!(tax_texts(&posted.lines[1]), tax_texts(&expected.lines[1]));
    assert_eq!(tax_texts(&posted.lines[2]), tax_texts(&expected.lines[2]));
    let totals = [
        posted.tax_total,
        posted.total,
        posted.credit_applied,
        posted.credit_added,
        posted.amount_due,
    ]
    .map(|d| d.to_string());
    assert_eq!(totals, ["8.39", "115.34", "30.00", "0.00", "85.34"]);
    assert_eq!(find_invoice(&*store, t, draft.id).await, posted);
    assert_eq!(
        find_invoice(&*store, t, february.id).await,
        february,
        "another invoice's line is not touched"
    );
    assert_eq!(
        find_account(&*store, t, bk.account.id).await.credit_balance,
        dec!(0),
        "the credit used is gone"
    );

    // A posted invoice is not posted again, and the refusal takes no number.
    let again = PostInvoice {
        balance: CreditMove {
            before: dec!(0),
            after: dec!(0),
        },
        ..posting.clone()
    };
    let twice = post(&*store, t, &posted, &again, 5).await;
    assert!(matches!(twice, Err(StoreError::Stale)), "got {twice:?}");
    assert_eq!(find_invoice(&*store, t, draft.id).await, posted);

    // Posting February without taxes clears its line's tax and takes the next number.
    let second = post(
        &*store,
        t,
        &february,
        &untaxed(&february, InvoiceStatus::Posted, dec!(0)),
        6,
    )
    .await
    .unwrap();
    assert_eq!(second.number.as_deref(), Some("INV-000003"), "no gaps");
    assert_eq!(second.lines[0].taxes, []);
    assert_eq!(second.lines[0].tax_amount, Decimal::ZERO);
    assert_eq!((second.tax_total, second.total), (dec!(0), dec!(5.00)));
}

pub async fn posting_a_draft_to_pending_tax_takes_no_number(store: Arc<dyn Store>) {
    let t = tenant(&*store, "app-1").await;
    let bk = book(&*store, t, "acc").await;
    let mut january = january_bill(&bk, InvoiceStatus::Draft);
    january.invoices[0].lines[0].taxes = vec![tax("OLD", dec!(0.50), None, None)];
    january.invoices[0].lines[0].tax_amount = dec!(0.50);
    let made = store
        .commit_bill(t, &january, "INV-", minutes(1))
        .await
        .unwrap();
    let draft = find_invoice(&*store, t, made[0]).await;

    let pending = post(
        &*store,
        t,
        &draft,
        &untaxed(&draft, InvoiceStatus::PendingTax, dec!(0)),
        2,
    )
    .await
    .unwrap();
    let expected = Invoice {
        status: InvoiceStatus::PendingTax,
        number: None,
        tax_total: dec!(0.00),
        lines: draft
            .lines
            .iter()
            .map(|l| InvoiceLineRecord {
                taxes: Vec::new(),
                tax_amount: Decimal::ZERO,
                ..l.clone()
            })
            .collect(),
        updated_at: minutes(2),
        version: draft.version + 1,
        ..draft.clone()
    };
    assert_eq!(pending, expected);
    assert_eq!(find_invoice(&*store, t, draft.id).await, pending);
    let waiting = InvoiceFilter {
        statuses: vec![InvoiceStatus::PendingTax],
        ..InvoiceFilter::default()
    };
    assert_eq!(invoice_ids(&*store, t, waiting).await, [draft.id.0]);

    // Once its taxes are known it is posted, with the tenant's first number.
    let posting = PostInvoice {
        line_taxes: vec![LineTaxUpdate {
            line_id: pending.lines[1].id,
            tax_code: Some("GOODS".to_owned()),
            taxes: vec![tax("SALES TAX", dec!(8.24588), None, None)],
        }],
        tax_total: dec!(8.25),
        total: pending.subtotal + dec!(8.25),
        amount_due: pending.subtotal + dec!(8.25),
        ..untaxed(&pending, InvoiceStatus::Posted, dec!(0))
    };
    let posted = post(&*store, t, &pending, &posting, 3).await.unwrap();
    assert_eq!(posted.status, InvoiceStatus::Posted);
    assert_eq!(posted.number.as_deref(), Some("INV-000001"));
    assert_eq!(posted.lines[1].tax_amount.to_string(), "8.24588");
    assert_eq!(posted.lines[0].taxes, []);
    assert_eq!(posted.version, pending.version + 1);
}

pub async fn a_tax_error_is_recorded_only_while_pending_tax_and_cleared_by_posting(
    store: Arc<dyn Store>,
) {
    let t = tenant(&*store, "app-1").await;
    let other = tenant(&*store, "app-2").await;
    let bk = book(&*store, t, "acc").await;
    let made = store
        .commit_bill(
            t,
            &january_bill(&bk, InvoiceStatus::Draft),
            "INV-",
            minutes(1),
        )
        .await
        .unwrap();
    let draft = find_invoice(&*store, t, made[0]).await;
    assert_eq!(
        (&draft.tax_error, draft.tax_attempts, draft.next_tax_attempt),
        (&None, 0, None)
    );

    // Not waiting for tax: ignored.
    store
        .record_tax_error(t, draft.id, "ignored", minutes(10), minutes(2))
        .await
        .unwrap();
    assert_eq!(find_invoice(&*store, t, draft.id).await, draft, "a draft");

    let pending = post(
        &*store,
        t,
        &draft,
        &untaxed(&draft, InvoiceStatus::PendingTax, dec!(0)),
        3,
    )
    .await
    .unwrap();
    let error = "AvaTax: 503 Service Unavailable – 'Ω'\n{\"error\": \"busy\"}";
    store
        .record_tax_error(t, pending.id, error, minutes(11), minutes(4))
        .await
        .unwrap();
    let failed = find_invoice(&*store, t, pending.id).await;
    // A recorded failure is no edit: a posting read before it still applies.
    let expected = Invoice {
        tax_error: Some(error.to_owned()),
        tax_attempts: 1,
        next_tax_attempt: Some(minutes(11)),
        updated_at: minutes(4),
        ..pending.clone()
    };
    assert_eq!(failed, expected, "the next attempt keeps its microseconds");
    let listed = store
        .list_invoices(t, &InvoiceFilter::default(), EVERYTHING, true)
        .await
        .unwrap();
    assert_eq!(listed.items, std::slice::from_ref(&failed));

    // Another tenant's or an unknown invoice: ignored.
    store
        .record_tax_error(other, pending.id, "foreign", minutes(12), minutes(5))
        .await
        .unwrap();
    store
        .record_tax_error(
            t,
            InvoiceId(pending.id.0 + 1000),
            "unknown",
            minutes(12),
            minutes(5),
        )
        .await
        .unwrap();
    assert_eq!(find_invoice(&*store, t, pending.id).await, failed);

    store
        .record_tax_error(t, pending.id, "timeout", minutes(20), minutes(6))
        .await
        .unwrap();
    let again = find_invoice(&*store, t, pending.id).await;
    assert_eq!(
        (&again.tax_error, again.tax_attempts, again.next_tax_attempt),
        (&Some("timeout".to_owned()), 2, Some(minutes(20)))
    );
    assert_eq!(again.version, pending.version);

    // Posting clears the error and the next attempt; the count of attempts stays.
    let posted = post(
        &*store,
        t,
        &again,
        &untaxed(&again, InvoiceStatus::Posted, dec!(0)),
        7,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            &posted.tax_error,
            posted.tax_attempts,
            posted.next_tax_attempt
        ),
        (&None, 2, None)
    );
    assert_eq!(posted.number.as_deref(), Some("INV-000001"));
    assert_eq!(find_invoice(&*store, t, pending.id).await, posted);

    store
        .record_tax_error(t, posted.id, "too late", minutes(30), minutes(8))
        .await
        .unwrap();
    assert_eq!(
        find_invoice(&*store, t, posted.id).await,
        posted,
        "a posted invoice"
    );
}
