//! Invoices, their lines and taxes, and the writes that change them.

use dynabill_core::billing::LineType;
use dynabill_core::domain::{
    AccountId, InvoiceId, InvoiceStatus, OneTimeItemId, PlanId, RecurringItemId, TaxRateId,
};
use dynabill_core::money::Currency;
use dynabill_core::tax::TaxRule;
use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;

/// One tax on one invoice line.
#[derive(Clone, Debug, PartialEq)]
pub struct LineTax {
    pub description: String,
    /// Rounded to the minor unit for built-in rates; as sent (up to 5 decimals) by
    /// an external tax service or AvaTax.
    pub amount: Decimal,
    /// Percent (7.25 means 7.25 %), when known.
    pub rate: Option<Decimal>,
    pub jurisdiction: Option<String>,
}

/// A rule of a tenant's built-in rate table.
#[derive(Clone, Debug, PartialEq)]
pub struct TaxRateRecord {
    pub id: TaxRateId,
    pub rule: TaxRule,
}

/// The taxes a posting gives one line.
#[derive(Clone, Debug, PartialEq)]
pub struct LineTaxUpdate {
    pub line_id: i64,
    /// Recorded on the line when set.
    pub tax_code: Option<String>,
    pub taxes: Vec<LineTax>,
}

/// What a posting writes: the invoice leaves Draft or Pending Tax.
#[derive(Clone, Debug, PartialEq)]
pub struct PostInvoice {
    /// Posted (numbered), or Pending Tax (waiting for an external tax service).
    pub status: InvoiceStatus,
    /// The taxes of the lines named; every other line's taxes are cleared.
    pub line_taxes: Vec<LineTaxUpdate>,
    pub tax_total: Decimal,
    pub total: Decimal,
    pub credit_applied: Decimal,
    pub credit_added: Decimal,
    pub amount_due: Decimal,
    /// The account's credit balance: refused if it moved from `before`.
    pub balance: CreditMove,
}

/// A move of an account's credit balance, conditional on where it starts: refused
/// (`Stale`) if the balance is no longer `before`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreditMove {
    pub before: Decimal,
    pub after: Decimal,
}

/// One line of a stored invoice.
#[derive(Clone, Debug, PartialEq)]
pub struct InvoiceLineRecord {
    pub id: i64,
    pub line_type: LineType,
    pub recurring_item_id: Option<RecurringItemId>,
    pub one_time_item_id: Option<OneTimeItemId>,
    pub item_ext_id: String,
    pub product_code: String,
    pub description: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub discount_percent: Decimal,
    /// The proration fraction (recurring lines), `None` for one-time lines.
    pub fraction: Option<Decimal>,
    pub amount: Decimal,
    /// Half-open; the wire shows `service_end - 1 day` as `ServiceEnd`.
    pub service_start: Date,
    pub service_end: Date,
    /// The full grid period the line belongs to (recurring lines).
    pub period: Option<(Date, Date)>,
    pub tax_code: Option<String>,
    pub tax_amount: Decimal,
    pub taxes: Vec<LineTax>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Invoice {
    pub id: InvoiceId,
    pub account_id: AccountId,
    pub account_ext_id: String,
    /// Set with per-plan grouping.
    pub plan_id: Option<PlanId>,
    pub number: Option<String>,
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
    pub memo: Option<String>,
    pub paid_date: Option<Date>,
    pub payment_reference: Option<String>,
    pub cancel_reason: Option<String>,
    /// Why the last attempt to tax it failed (AvaTax), while it waits in Pending Tax.
    pub tax_error: Option<String>,
    pub tax_attempts: i64,
    pub next_tax_attempt: Option<Timestamp>,
    /// Loaded only when asked for.
    pub lines: Vec<InvoiceLineRecord>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

#[derive(Clone, Debug, Default)]
pub struct InvoiceFilter {
    pub id: Option<InvoiceId>,
    pub account_id: Option<AccountId>,
    pub account_ext_id: Option<String>,
    pub plan_id: Option<PlanId>,
    pub statuses: Vec<InvoiceStatus>,
    pub date_from: Option<Date>,
    pub date_to: Option<Date>,
}

/// A change to a stored invoice through 10/119.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InvoiceUpdate {
    pub status: Option<InvoiceStatus>,
    pub due_date: Option<Date>,
    pub po_number: Option<Option<String>>,
    pub memo: Option<Option<String>>,
    pub paid_date: Option<Date>,
    pub payment_reference: Option<Option<String>>,
}
