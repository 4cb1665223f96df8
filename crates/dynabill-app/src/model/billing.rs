//! What a bill run reads of an account and what it commits.

use dynabill_core::billing::LedgerEntry;
use dynabill_core::domain::{AccountId, InvoiceStatus, OneTimeItemId, PlanId};
use dynabill_core::money::Currency;
use jiff::civil::Date;
use rust_decimal::Decimal;

use super::{Account, InvoiceLineRecord, OneTimeItem, Plan, RecurringItem};

/// Everything a bill run reads about one account, in one consistent read.
#[derive(Clone, Debug)]
pub struct BillingAccount {
    pub account: Account,
    pub plans: Vec<Plan>,
    /// Its plans' recurring items (not deleted), with their histories.
    pub items: Vec<RecurringItem>,
    /// The unreleased ledger entries of those items.
    pub ledger: Vec<LedgerEntry>,
    /// Its Pending one-time items.
    pub one_time: Vec<OneTimeItem>,
}

/// A new invoice, as a bill run makes it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewInvoice {
    pub plan_id: Option<PlanId>,
    pub status: InvoiceStatus,
    pub invoice_date: Date,
    pub due_date: Date,
    pub currency: Currency,
    pub subtotal: Decimal,
    pub tax_total: Decimal,
    pub total: Decimal,
    pub credit_applied: Decimal,
    pub credit_added: Decimal,
    pub amount_due: Decimal,
    pub po_number: Option<String>,
    /// `id` of each line is ignored.
    pub lines: Vec<InvoiceLineRecord>,
}

/// Everything one account's bill commits, together or not at all.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountBill {
    pub account: AccountId,
    /// The credit balance the bill was computed from; the commit is refused if it moved.
    pub credit_balance_before: Decimal,
    pub credit_balance_after: Decimal,
    pub invoices: Vec<NewInvoice>,
    /// New ledger entries, each with the index (in `invoices`) of the invoice whose
    /// lines it accounts for; `None` for a settlement that needed no line.
    pub ledger: Vec<(Option<usize>, LedgerEntry)>,
    /// Pending one-time items now invoiced, with their invoice's index.
    pub one_time: Vec<(OneTimeItemId, usize)>,
}
