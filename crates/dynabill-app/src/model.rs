//! The records the use cases read and write, and the shapes of their changes.

use dynabill_core::billing::{LedgerEntry, LineType};
use dynabill_core::calendar::{
    BillingDay, BillingPeriod, Cadence, CalendarError, Grid, ProrationPolicy, Terms, TermsChange,
    TermsTimeline,
};
use dynabill_core::domain::{
    AccountId, AccountStatus, AccountType, BillingTiming, Country, DueDateMethod, Email,
    InvoiceGrouping, InvoiceId, InvoiceStatus, ItemStatus, OneTimeItemId, OneTimeStatus, PlanId,
    PlanStatus, RecurringItemId, TaxMode, TaxRateId, TenantId,
};
use dynabill_core::items::next_billing_date;
use dynabill_core::money::Currency;
use dynabill_core::money::Rounding;
use dynabill_core::tax::TaxRule;

use crate::tax_engine::AvaTaxSettings;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;

/// A tenant as the use cases see it once its caller is authenticated.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: TenantId,
    pub app_key: String,
    pub name: String,
    pub currency: Currency,
    pub time_zone_name: String,
    pub time_zone: TimeZone,
    pub settings: TenantSettings,
    /// With `serve --test-clock`: the tenant's "today", when set.
    pub test_today: Option<Date>,
    pub created_at: Timestamp,
}

/// How a call names one record: its ID (of type `I`) or the caller's `ExtID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordKey<I> {
    Id(I),
    ExtId(String),
}

/// Everything about an account a caller may set.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountFields {
    pub ext_id: String,
    pub name: String,
    pub account_type: AccountType,
    pub status: AccountStatus,
    pub email: Email,
    pub ext_id2: Option<String>,
    pub invoice_name: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub country: Option<Country>,
    pub account_manager: Option<String>,
    pub contact_person: Option<String>,
    pub due_date_method: DueDateMethod,
    pub due_date_days: u32,
    pub invoice_grouping: InvoiceGrouping,
    pub currency: Currency,
    pub tax_exempt: bool,
    pub tax_exemption_number: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub id: AccountId,
    pub fields: AccountFields,
    pub credit_balance: Decimal,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
    /// Bumped by every write; updates are conditional on it (optimistic concurrency).
    pub version: i64,
}

/// A field of a partial update: absent (keep), or set. For optional fields, set to
/// `None` clears the value.
pub type Change<T> = Option<T>;

/// The fields a create-or-update call sent; only those change.
#[derive(Clone, Debug, Default)]
pub struct AccountPatch {
    pub ext_id: Change<String>,
    pub name: Change<String>,
    pub account_type: Change<AccountType>,
    pub status: Change<AccountStatus>,
    pub email: Change<Email>,
    pub ext_id2: Change<Option<String>>,
    pub invoice_name: Change<Option<String>>,
    pub phone: Change<Option<String>>,
    pub address: Change<Option<String>>,
    pub city: Change<Option<String>>,
    pub state: Change<Option<String>>,
    pub zip: Change<Option<String>>,
    pub country: Change<Option<Country>>,
    pub account_manager: Change<Option<String>>,
    pub contact_person: Change<Option<String>>,
    pub due_date_method: Change<DueDateMethod>,
    pub due_date_days: Change<u32>,
    pub invoice_grouping: Change<InvoiceGrouping>,
    pub currency: Change<Currency>,
    pub tax_exempt: Change<bool>,
    pub tax_exemption_number: Change<Option<String>>,
}

#[derive(Clone, Debug, Default)]
pub struct AccountFilter {
    pub id: Option<AccountId>,
    pub ext_id: Option<String>,
    pub ext_id2: Option<String>,
    pub status: Option<AccountStatus>,
    pub updated_since: Option<Timestamp>,
    pub include_deleted: bool,
}

/// Everything about a plan a caller may set (its account is fixed at creation).
#[derive(Clone, Debug, PartialEq)]
pub struct PlanFields {
    pub ext_id: String,
    pub name: Option<String>,
    pub start_date: Date,
    pub end_date: Option<Date>,
    pub auto_renew: bool,
    pub renewal_term_months: u32,
    pub billing_day: Option<u8>,
    pub currency: Currency,
    pub po_number: Option<String>,
    pub notes: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub id: PlanId,
    pub account_id: AccountId,
    pub account_ext_id: String,
    pub fields: PlanFields,
    /// The date the plan was cancelled from, when it was.
    pub cancel_date: Option<Date>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
    pub version: i64,
}

impl Plan {
    pub fn status(&self, today: Date) -> PlanStatus {
        PlanStatus::on(
            self.cancel_date.is_some(),
            self.fields.end_date,
            self.fields.auto_renew,
            today,
        )
    }
}

#[derive(Clone, Debug, Default)]
pub struct PlanPatch {
    pub ext_id: Change<String>,
    pub account: Change<RecordKey<AccountId>>,
    pub name: Change<Option<String>>,
    pub start_date: Change<Date>,
    pub end_date: Change<Option<Date>>,
    pub auto_renew: Change<bool>,
    pub renewal_term_months: Change<u32>,
    pub billing_day: Change<Option<u8>>,
    pub currency: Change<Currency>,
    pub po_number: Change<Option<String>>,
    pub notes: Change<Option<String>>,
}

#[derive(Clone, Debug, Default)]
pub struct PlanFilter {
    pub id: Option<PlanId>,
    pub ext_id: Option<String>,
    pub account_id: Option<AccountId>,
    pub account_ext_id: Option<String>,
    pub status: Option<PlanStatus>,
    pub include_deleted: bool,
}

/// One keyset page request: records with an ID above `after`, oldest first.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    pub size: u32,
    pub after: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// How many records match the filter, across all pages.
    pub total: i64,
    /// The key to resume after, when there are more records.
    pub next_after: Option<i64>,
}

impl<T> Page<T> {
    /// Builds a page from up to `size + 1` rows fetched in key order: the extra row
    /// only says whether another page exists.
    pub fn from_rows(mut rows: Vec<T>, size: u32, total: i64, key: impl Fn(&T) -> i64) -> Page<T> {
        let size = size as usize;
        let next_after = if rows.len() > size {
            rows.truncate(size);
            rows.last().map(&key)
        } else {
            None
        };
        Page {
            items: rows,
            total,
            next_after,
        }
    }
}

/// Everything about a recurring item a caller may set, except its terms (quantity,
/// price, discount), which live in its timeline of changes.
#[derive(Clone, Debug, PartialEq)]
pub struct RecurringItemFields {
    pub ext_id: String,
    pub product_code: String,
    pub name: String,
    pub description: Option<String>,
    pub tax_code: Option<String>,
    pub billing_period: BillingPeriod,
    pub period_count: u32,
    pub timing: BillingTiming,
    pub start_date: Date,
    /// Exclusive; `None` runs until cancelled. A cancellation sets it.
    pub end_date: Option<Date>,
}

impl RecurringItemFields {
    pub fn cadence(&self) -> Result<Cadence, CalendarError> {
        Cadence::new(self.billing_period, self.period_count)
    }
}

/// What kind of change an entry of an item's history records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemChangeKind {
    Created,
    /// Terms or dates changed through create-or-update, before the first invoice.
    Updated,
    Upsell,
    Renewal,
    Cancellation,
    DatesChanged,
    Deleted,
}

impl ItemChangeKind {
    pub const ALL: [ItemChangeKind; 7] = [
        ItemChangeKind::Created,
        ItemChangeKind::Updated,
        ItemChangeKind::Upsell,
        ItemChangeKind::Renewal,
        ItemChangeKind::Cancellation,
        ItemChangeKind::DatesChanged,
        ItemChangeKind::Deleted,
    ];

    pub fn code(self) -> i64 {
        match self {
            ItemChangeKind::Created => 1,
            ItemChangeKind::Updated => 2,
            ItemChangeKind::Upsell => 3,
            ItemChangeKind::Renewal => 4,
            ItemChangeKind::Cancellation => 5,
            ItemChangeKind::DatesChanged => 6,
            ItemChangeKind::Deleted => 7,
        }
    }

    pub fn from_code(code: i64) -> Option<ItemChangeKind> {
        ItemChangeKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// One entry of a recurring item's history: what changed, from when, and the
/// item's dates once it took effect. Terms fields are `None` when not changed.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemChange {
    /// The entry's position in the order changes were made (its storage ID);
    /// 0 for an entry not stored yet.
    pub seq: i64,
    pub kind: ItemChangeKind,
    pub effective_date: Date,
    pub quantity: Option<Decimal>,
    pub unit_price: Option<Decimal>,
    pub discount_percent: Option<Decimal>,
    pub start_date: Date,
    pub end_date: Option<Date>,
    /// Upsells: whether the change is prorated by day (`true`) or waits for the next period.
    pub prorate: Option<bool>,
    /// Cancellations: whether unused billed time is credited.
    pub credit: Option<bool>,
    pub recorded_at: Timestamp,
}

/// A recorded cancellation of a recurring item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancellation {
    pub date: Date,
    /// `CreditMode` 1: credit the unused part of a billed period.
    pub credit: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RecurringItem {
    pub id: RecurringItemId,
    pub plan_id: PlanId,
    pub plan_ext_id: String,
    pub account_id: AccountId,
    /// The plan's `BillingDay`, which anchors the item's grid when set.
    pub plan_billing_day: Option<u8>,
    pub plan_auto_renew: bool,
    pub fields: RecurringItemFields,
    pub cancellation: Option<Cancellation>,
    /// Billed up to (exclusive); `None` while never invoiced.
    pub charged_through: Option<Date>,
    /// The item's history, oldest first; the first entry is its creation.
    pub changes: Vec<ItemChange>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
    pub version: i64,
}

impl RecurringItem {
    pub fn is_invoiced(&self) -> bool {
        self.charged_through.is_some()
    }

    pub fn grid(&self) -> Result<Grid, CalendarError> {
        let billing_day = self
            .plan_billing_day
            .map(|d| BillingDay::new(u32::from(d)))
            .transpose()?;
        Ok(Grid::new(
            self.fields.cadence()?,
            self.fields.start_date,
            billing_day,
        ))
    }

    /// The terms over time, from the history's terms changes in effective-date order
    /// (then the order they were made).
    pub fn timeline(&self) -> Result<TermsTimeline, CalendarError> {
        let mut changes = self.changes.iter().filter(|c| {
            c.quantity.is_some() || c.unit_price.is_some() || c.discount_percent.is_some()
        });
        let Some(first) = changes.next() else {
            return Ok(TermsTimeline::new(Terms::new(Decimal::ZERO, Decimal::ZERO)));
        };
        let initial = Terms::new(
            first.quantity.unwrap_or_default(),
            first.unit_price.unwrap_or_default(),
        )
        .with_discount_percent(first.discount_percent.unwrap_or_default())?;
        let mut timeline = TermsTimeline::new(initial);
        for change in changes {
            let mut step = TermsChange::new(change.effective_date);
            if let Some(q) = change.quantity {
                step = step.with_quantity(q);
            }
            if let Some(p) = change.unit_price {
                step = step.with_unit_price(p);
            }
            if let Some(d) = change.discount_percent {
                step = step.with_discount_percent(d)?;
            }
            timeline.push(step);
        }
        Ok(timeline)
    }

    /// The terms shown on the item: those in force today, or at its start if later.
    pub fn current_terms(&self, today: Date) -> Result<Terms, CalendarError> {
        Ok(self.timeline()?.terms_at(today.max(self.fields.start_date)))
    }

    pub fn status(&self, today: Date) -> ItemStatus {
        ItemStatus::on(
            self.cancellation.is_some(),
            self.fields.start_date,
            self.fields.end_date,
            self.plan_auto_renew,
            today,
        )
    }

    pub fn next_billing_date(&self) -> Result<Option<Date>, CalendarError> {
        next_billing_date(
            self.grid()?,
            self.fields.timing,
            self.fields.start_date,
            self.fields.end_date,
            self.charged_through,
        )
    }
}

/// The fields of a recurring-item create-or-update call; only those sent change.
#[derive(Clone, Debug, Default)]
pub struct RecurringItemPatch {
    pub ext_id: Change<String>,
    pub plan: Change<RecordKey<PlanId>>,
    pub product_code: Change<String>,
    pub name: Change<String>,
    pub description: Change<Option<String>>,
    pub tax_code: Change<Option<String>>,
    pub quantity: Change<Decimal>,
    pub unit_price: Change<Decimal>,
    pub discount_percent: Change<Decimal>,
    pub billing_period: Change<BillingPeriod>,
    pub period_count: Change<u32>,
    pub timing: Change<BillingTiming>,
    pub start_date: Change<Date>,
    pub end_date: Change<Option<Date>>,
}

/// One write to a recurring item: its new fields, its cancellation, an entry for
/// its history, and whether it is deleted. Applied if the item is still at `version`.
#[derive(Clone, Debug)]
pub struct ItemWrite {
    pub id: RecurringItemId,
    pub version: i64,
    pub fields: RecurringItemFields,
    pub cancellation: Option<Cancellation>,
    pub change: ItemChange,
    pub deleted: bool,
}

/// Filters of item lists (recurring and one-time alike; `I` is the item's ID type).
#[derive(Clone, Debug)]
pub struct ItemFilter<I> {
    pub id: Option<I>,
    pub ext_id: Option<String>,
    pub plan_id: Option<PlanId>,
    pub include_deleted: bool,
}

impl<I> Default for ItemFilter<I> {
    fn default() -> Self {
        ItemFilter {
            id: None,
            ext_id: None,
            plan_id: None,
            include_deleted: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct OneTimeItemFields {
    pub ext_id: String,
    pub product_code: String,
    pub name: String,
    pub description: Option<String>,
    pub quantity: Decimal,
    /// May be negative: a one-off credit.
    pub unit_price: Decimal,
    pub charge_date: Date,
    pub tax_code: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OneTimeItem {
    pub id: OneTimeItemId,
    pub plan_id: PlanId,
    pub plan_ext_id: String,
    pub account_id: AccountId,
    pub fields: OneTimeItemFields,
    pub cancelled_at: Option<Timestamp>,
    /// Set once a bill run has put the item on an invoice.
    pub invoiced: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
    pub version: i64,
}

impl OneTimeItem {
    pub fn status(&self) -> OneTimeStatus {
        if self.invoiced {
            OneTimeStatus::Invoiced
        } else if self.cancelled_at.is_some() {
            OneTimeStatus::Cancelled
        } else {
            OneTimeStatus::Pending
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct OneTimeItemPatch {
    pub ext_id: Change<String>,
    pub plan: Change<RecordKey<PlanId>>,
    pub product_code: Change<String>,
    pub name: Change<String>,
    pub description: Change<Option<String>>,
    pub quantity: Change<Decimal>,
    pub unit_price: Change<Decimal>,
    pub charge_date: Change<Date>,
    pub tax_code: Change<Option<String>>,
}

/// The per-tenant billing settings (`dynabill tenant set`).
#[derive(Clone, Debug, PartialEq)]
pub struct TenantSettings {
    /// New invoices go straight past Draft.
    pub auto_post: bool,
    /// Prefix of invoice numbers, e.g. `INV-` gives `INV-000001`.
    pub invoice_prefix: String,
    /// Local hour (0..=23, tenant time zone) at which the scheduler runs the daily bill run.
    pub bill_run_hour: u8,
    pub proration_policy: ProrationPolicy,
    pub rounding: Rounding,
    pub tax_mode: TaxMode,
    /// Needed with `TaxMode` 3.
    pub avatax: Option<AvaTaxSettings>,
}

impl Default for TenantSettings {
    fn default() -> Self {
        TenantSettings {
            auto_post: true,
            invoice_prefix: "INV-".to_owned(),
            bill_run_hour: 2,
            proration_policy: ProrationPolicy::ActualDays,
            rounding: Rounding::HalfUp,
            tax_mode: TaxMode::None,
            avatax: None,
        }
    }
}

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

/// What a write of a one-time item marks besides its fields. A mark, once set,
/// stays (a cancelled item stays cancelled from when it was first cancelled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OneTimeMark {
    /// The fields alone.
    Fields,
    /// Cancelled: no bill run takes it.
    Cancelled,
    /// Deleted: listed only on request.
    Deleted,
    /// Both: what deleting a pending item does.
    CancelledAndDeleted,
}

impl OneTimeMark {
    pub fn cancels(self) -> bool {
        matches!(
            self,
            OneTimeMark::Cancelled | OneTimeMark::CancelledAndDeleted
        )
    }

    pub fn deletes(self) -> bool {
        matches!(
            self,
            OneTimeMark::Deleted | OneTimeMark::CancelledAndDeleted
        )
    }
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
