//! dynabill-sql: what the SQLite and PostgreSQL backends store alike. Row types
//! (plain columns: integers, text, bytes) and their conversion to domain records.
//!
//! Both backends select dates as `YYYY-MM-DD` text, amounts as decimal text and
//! timestamps as integer microseconds since the Unix epoch, so one row type and one
//! conversion serve both; each backend keeps its own SQL and migrations.

use std::str::FromStr;

use anyhow::anyhow;
use dynabill_app::model::{
    Account, AccountFields, Cancellation, Invoice, InvoiceLineRecord, ItemChange, ItemChangeKind,
    LineTax, NewInvoice, OneTimeItem, OneTimeItemFields, Plan, PlanFields, RecurringItem,
    RecurringItemFields, TaxRateRecord,
};
use dynabill_app::store::{StoreError, TenantRow};
use dynabill_core::billing::{EntryKey, LedgerEntry, LineType};
use dynabill_core::calendar::BillingPeriod;
use dynabill_core::domain::{
    AccountId, AccountStatus, AccountType, BillingTiming, DueDateMethod, InvoiceGrouping,
    InvoiceId, InvoiceStatus, OneTimeItemId, PlanId, RecurringItemId, TenantId,
};
use dynabill_core::tax::TaxRule;
use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;

pub fn micros(ts: Timestamp) -> i64 {
    ts.as_microsecond()
}

pub fn from_micros(us: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_microsecond(us)
        .map_err(|e| StoreError::Other(anyhow!("bad timestamp {us}: {e}")))
}

pub fn date_text(date: Date) -> String {
    date.to_string()
}

fn parse_date(text: &str) -> Result<Date, StoreError> {
    Date::from_str(text).map_err(|e| StoreError::Other(anyhow!("bad stored date {text:?}: {e}")))
}

fn parse_opt_date(text: Option<&str>) -> Result<Option<Date>, StoreError> {
    text.map(parse_date).transpose()
}

fn parse_decimal(text: &str) -> Result<Decimal, StoreError> {
    Decimal::from_str(text)
        .map_err(|e| StoreError::Other(anyhow!("bad stored amount {text:?}: {e}")))
}

/// Parses a stored value that the application wrote itself; failure means corruption.
fn stored<T: FromStr>(what: &str, text: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text.parse::<T>()
        .map_err(|e| StoreError::Other(anyhow!("bad stored {what} {text:?}: {e}")))
}

fn coded<T>(what: &str, code: i64, from: fn(i64) -> Option<T>) -> Result<T, StoreError> {
    from(code).ok_or_else(|| StoreError::Other(anyhow!("bad stored {what} code {code}")))
}

fn small<T: TryFrom<i64>>(what: &str, value: i64) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Other(anyhow!("stored {what} {value} out of range")))
}

#[derive(Debug, sqlx::FromRow)]
pub struct TenantRecord {
    pub id: i64,
    pub app_key: String,
    pub name: String,
    pub currency: String,
    pub time_zone: String,
    pub auto_post: bool,
    pub invoice_prefix: String,
    pub bill_run_hour: i64,
    pub proration_policy: i64,
    pub rounding: i64,
    pub tax_mode: i64,
    pub avatax_url: Option<String>,
    pub avatax_account_id: Option<String>,
    pub avatax_license_key: Option<String>,
    pub avatax_company_code: Option<String>,
    pub test_today: Option<String>,
    pub created_at: i64,
}

/// The columns of `tenants` a [`TenantRecord`] reads, for a table aliased `t`.
pub const TENANT_COLUMNS: &str = "t.id, t.app_key, t.name, t.currency, t.time_zone, t.auto_post, \
    t.invoice_prefix, t.bill_run_hour, t.proration_policy, t.rounding, t.tax_mode, t.avatax_url, \
    t.avatax_account_id, t.avatax_license_key, t.avatax_company_code, t.test_today, t.created_at";

impl TryFrom<TenantRecord> for TenantRow {
    type Error = StoreError;

    fn try_from(r: TenantRecord) -> Result<Self, StoreError> {
        Ok(TenantRow {
            id: TenantId(r.id),
            app_key: r.app_key,
            name: r.name,
            currency: r.currency,
            time_zone: r.time_zone,
            auto_post: r.auto_post,
            invoice_prefix: r.invoice_prefix,
            bill_run_hour: r.bill_run_hour,
            proration_policy: r.proration_policy,
            rounding: r.rounding,
            tax_mode: r.tax_mode,
            avatax_url: r.avatax_url,
            avatax_account_id: r.avatax_account_id,
            avatax_license_key: r.avatax_license_key,
            avatax_company_code: r.avatax_company_code,
            test_today: parse_opt_date(r.test_today.as_deref())?,
            created_at: from_micros(r.created_at)?,
        })
    }
}

/// A tenant joined with one API user's token hash: the whole of an authentication.
#[derive(Debug, sqlx::FromRow)]
pub struct CredentialRecord {
    #[sqlx(flatten)]
    pub tenant: TenantRecord,
    pub token_hash: Vec<u8>,
}

impl CredentialRecord {
    pub fn into_parts(self) -> Result<(TenantRow, [u8; 32]), StoreError> {
        let hash: [u8; 32] = self
            .token_hash
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Other(anyhow!("stored token hash is not 32 bytes")))?;
        Ok((self.tenant.try_into()?, hash))
    }
}

/// The columns of `accounts`, in the order `ACCOUNT_COLUMNS` lists them.
#[derive(Debug, sqlx::FromRow)]
pub struct AccountRecord {
    pub id: i64,
    pub ext_id: String,
    pub name: String,
    pub account_type: i64,
    pub status: i64,
    pub email: String,
    pub ext_id2: Option<String>,
    pub invoice_name: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub country: Option<String>,
    pub account_manager: Option<String>,
    pub contact_person: Option<String>,
    pub due_date_method: i64,
    pub due_date_days: i64,
    pub invoice_grouping: i64,
    pub currency: String,
    pub tax_exempt: bool,
    pub tax_exemption_number: Option<String>,
    pub credit_balance: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub version: i64,
}

/// The writable columns of `accounts`, in the order [`AccountValues`] binds them.
pub const ACCOUNT_WRITABLE: [&str; 21] = [
    "ext_id",
    "name",
    "account_type",
    "status",
    "email",
    "ext_id2",
    "invoice_name",
    "phone",
    "address",
    "city",
    "state",
    "zip",
    "country",
    "account_manager",
    "contact_person",
    "due_date_method",
    "due_date_days",
    "invoice_grouping",
    "currency",
    "tax_exempt",
    "tax_exemption_number",
];

/// One value of a writable column, ready to bind.
pub enum Value {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
    OptBool(Option<bool>),
}

/// The values of [`ACCOUNT_WRITABLE`] for `f`, in order.
pub fn account_values(f: &AccountFields) -> Vec<Value> {
    use Value::*;
    vec![
        Text(f.ext_id.clone()),
        Text(f.name.clone()),
        Int(f.account_type.code()),
        Int(f.status.code()),
        Text(f.email.as_str().to_owned()),
        OptText(f.ext_id2.clone()),
        OptText(f.invoice_name.clone()),
        OptText(f.phone.clone()),
        OptText(f.address.clone()),
        OptText(f.city.clone()),
        OptText(f.state.clone()),
        OptText(f.zip.clone()),
        OptText(f.country.map(|c| c.alpha2().to_owned())),
        OptText(f.account_manager.clone()),
        OptText(f.contact_person.clone()),
        Int(f.due_date_method.code()),
        Int(i64::from(f.due_date_days)),
        Int(f.invoice_grouping.code()),
        Text(f.currency.code().to_owned()),
        Bool(f.tax_exempt),
        OptText(f.tax_exemption_number.clone()),
    ]
}

impl TryFrom<AccountRecord> for Account {
    type Error = StoreError;

    fn try_from(r: AccountRecord) -> Result<Self, StoreError> {
        let fields = AccountFields {
            ext_id: r.ext_id,
            name: r.name,
            account_type: coded("account type", r.account_type, AccountType::from_code)?,
            status: coded("account status", r.status, AccountStatus::from_code)?,
            email: stored("e-mail", &r.email)?,
            ext_id2: r.ext_id2,
            invoice_name: r.invoice_name,
            phone: r.phone,
            address: r.address,
            city: r.city,
            state: r.state,
            zip: r.zip,
            country: r
                .country
                .as_deref()
                .map(|c| stored("country", c))
                .transpose()?,
            account_manager: r.account_manager,
            contact_person: r.contact_person,
            due_date_method: coded(
                "due date method",
                r.due_date_method,
                DueDateMethod::from_code,
            )?,
            due_date_days: small("due date days", r.due_date_days)?,
            invoice_grouping: coded(
                "invoice grouping",
                r.invoice_grouping,
                InvoiceGrouping::from_code,
            )?,
            currency: stored("currency", &r.currency)?,
            tax_exempt: r.tax_exempt,
            tax_exemption_number: r.tax_exemption_number,
        };
        Ok(Account {
            id: AccountId(r.id),
            fields,
            credit_balance: parse_decimal(&r.credit_balance)?,
            created_at: from_micros(r.created_at)?,
            updated_at: from_micros(r.updated_at)?,
            deleted_at: r.deleted_at.map(from_micros).transpose()?,
            version: r.version,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct PlanRecord {
    pub id: i64,
    pub account_id: i64,
    pub account_ext_id: String,
    pub ext_id: String,
    pub name: Option<String>,
    pub start_date: String,
    pub end_date: Option<String>,
    pub auto_renew: bool,
    pub renewal_term_months: i64,
    pub billing_day: Option<i64>,
    pub currency: String,
    pub po_number: Option<String>,
    pub notes: Option<String>,
    pub cancel_date: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub version: i64,
}

/// The writable columns of `plans`, in the order [`plan_values`] gives them.
pub const PLAN_WRITABLE: [&str; 10] = [
    "ext_id",
    "name",
    "start_date",
    "end_date",
    "auto_renew",
    "renewal_term_months",
    "billing_day",
    "currency",
    "po_number",
    "notes",
];

/// Dates are given as text; PostgreSQL casts them where its columns are `DATE`.
pub fn plan_values(f: &PlanFields) -> Vec<Value> {
    use Value::*;
    vec![
        Text(f.ext_id.clone()),
        OptText(f.name.clone()),
        Text(date_text(f.start_date)),
        OptText(f.end_date.map(date_text)),
        Bool(f.auto_renew),
        Int(i64::from(f.renewal_term_months)),
        OptInt(f.billing_day.map(i64::from)),
        Text(f.currency.code().to_owned()),
        OptText(f.po_number.clone()),
        OptText(f.notes.clone()),
    ]
}

impl TryFrom<PlanRecord> for Plan {
    type Error = StoreError;

    fn try_from(r: PlanRecord) -> Result<Self, StoreError> {
        let fields = PlanFields {
            ext_id: r.ext_id,
            name: r.name,
            start_date: parse_date(&r.start_date)?,
            end_date: parse_opt_date(r.end_date.as_deref())?,
            auto_renew: r.auto_renew,
            renewal_term_months: small("renewal term", r.renewal_term_months)?,
            billing_day: r.billing_day.map(|d| small("billing day", d)).transpose()?,
            currency: stored("currency", &r.currency)?,
            po_number: r.po_number,
            notes: r.notes,
        };
        Ok(Plan {
            id: PlanId(r.id),
            account_id: AccountId(r.account_id),
            account_ext_id: r.account_ext_id,
            fields,
            cancel_date: parse_opt_date(r.cancel_date.as_deref())?,
            created_at: from_micros(r.created_at)?,
            updated_at: from_micros(r.updated_at)?,
            deleted_at: r.deleted_at.map(from_micros).transpose()?,
            version: r.version,
        })
    }
}

/// Wraps an unexpected database error, keeping its context for the logs.
pub fn other(e: impl Into<anyhow::Error>, doing: &'static str) -> StoreError {
    StoreError::Other(e.into().context(doing))
}

/// A recurring item joined with what it needs of its plan.
#[derive(Debug, sqlx::FromRow)]
pub struct RecurringItemRecord {
    pub id: i64,
    pub plan_id: i64,
    pub plan_ext_id: String,
    pub account_id: i64,
    pub plan_billing_day: Option<i64>,
    pub plan_auto_renew: bool,
    pub ext_id: String,
    pub product_code: String,
    pub name: String,
    pub description: Option<String>,
    pub tax_code: Option<String>,
    pub billing_period: i64,
    pub period_count: i64,
    pub timing: i64,
    pub start_date: String,
    pub end_date: Option<String>,
    pub cancel_date: Option<String>,
    pub cancel_credit: Option<bool>,
    pub charged_through: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub version: i64,
}

/// The writable columns of `recurring_items`, in the order [`recurring_item_values`] gives them.
pub const RECURRING_ITEM_WRITABLE: [&str; 12] = [
    "ext_id",
    "product_code",
    "name",
    "description",
    "tax_code",
    "billing_period",
    "period_count",
    "timing",
    "start_date",
    "end_date",
    "cancel_date",
    "cancel_credit",
];

pub fn recurring_item_values(
    f: &RecurringItemFields,
    cancellation: Option<Cancellation>,
) -> Vec<Value> {
    use Value::*;
    vec![
        Text(f.ext_id.clone()),
        Text(f.product_code.clone()),
        Text(f.name.clone()),
        OptText(f.description.clone()),
        OptText(f.tax_code.clone()),
        Int(f.billing_period.code()),
        Int(i64::from(f.period_count)),
        Int(f.timing.code()),
        Text(date_text(f.start_date)),
        OptText(f.end_date.map(date_text)),
        OptText(cancellation.map(|c| date_text(c.date))),
        OptBool(cancellation.map(|c| c.credit)),
    ]
}

impl RecurringItemRecord {
    /// The item, with its history (`changes`, oldest first) attached.
    pub fn into_item(self, changes: Vec<ItemChange>) -> Result<RecurringItem, StoreError> {
        let fields = RecurringItemFields {
            ext_id: self.ext_id,
            product_code: self.product_code,
            name: self.name,
            description: self.description,
            tax_code: self.tax_code,
            billing_period: coded(
                "billing period",
                self.billing_period,
                BillingPeriod::from_code,
            )?,
            period_count: small("billing period count", self.period_count)?,
            timing: coded("billing timing", self.timing, BillingTiming::from_code)?,
            start_date: parse_date(&self.start_date)?,
            end_date: parse_opt_date(self.end_date.as_deref())?,
        };
        let cancellation = match parse_opt_date(self.cancel_date.as_deref())? {
            Some(date) => Some(Cancellation {
                date,
                credit: self.cancel_credit.unwrap_or(true),
            }),
            None => None,
        };
        Ok(RecurringItem {
            id: RecurringItemId(self.id),
            plan_id: PlanId(self.plan_id),
            plan_ext_id: self.plan_ext_id,
            account_id: AccountId(self.account_id),
            plan_billing_day: self
                .plan_billing_day
                .map(|d| small("billing day", d))
                .transpose()?,
            plan_auto_renew: self.plan_auto_renew,
            fields,
            cancellation,
            charged_through: parse_opt_date(self.charged_through.as_deref())?,
            changes,
            created_at: from_micros(self.created_at)?,
            updated_at: from_micros(self.updated_at)?,
            deleted_at: self.deleted_at.map(from_micros).transpose()?,
            version: self.version,
        })
    }
}

/// One entry of an item's history.
#[derive(Debug, sqlx::FromRow)]
pub struct ItemChangeRecord {
    pub id: i64,
    pub item_id: i64,
    pub kind: i64,
    pub effective_date: String,
    pub quantity: Option<String>,
    pub unit_price: Option<String>,
    pub discount_percent: Option<String>,
    pub start_date: String,
    pub end_date: Option<String>,
    pub prorate: Option<bool>,
    pub credit: Option<bool>,
    pub recorded_at: i64,
}

/// The columns of `recurring_item_changes` after `tenant_id, item_id`, in the order
/// [`item_change_values`] gives them.
pub const ITEM_CHANGE_WRITABLE: [&str; 10] = [
    "kind",
    "effective_date",
    "quantity",
    "unit_price",
    "discount_percent",
    "start_date",
    "end_date",
    "prorate",
    "credit",
    "recorded_at",
];

pub fn item_change_values(c: &ItemChange) -> Vec<Value> {
    use Value::*;
    let amount = |d: Option<Decimal>| OptText(d.map(|d| d.normalize().to_string()));
    vec![
        Int(c.kind.code()),
        Text(date_text(c.effective_date)),
        amount(c.quantity),
        amount(c.unit_price),
        amount(c.discount_percent),
        Text(date_text(c.start_date)),
        OptText(c.end_date.map(date_text)),
        OptBool(c.prorate),
        OptBool(c.credit),
        Int(micros(c.recorded_at)),
    ]
}

impl TryFrom<ItemChangeRecord> for ItemChange {
    type Error = StoreError;

    fn try_from(r: ItemChangeRecord) -> Result<Self, StoreError> {
        let amount = |t: Option<String>| t.as_deref().map(parse_decimal).transpose();
        Ok(ItemChange {
            seq: r.id,
            kind: coded("item change kind", r.kind, ItemChangeKind::from_code)?,
            effective_date: parse_date(&r.effective_date)?,
            quantity: amount(r.quantity)?,
            unit_price: amount(r.unit_price)?,
            discount_percent: amount(r.discount_percent)?,
            start_date: parse_date(&r.start_date)?,
            end_date: parse_opt_date(r.end_date.as_deref())?,
            prorate: r.prorate,
            credit: r.credit,
            recorded_at: from_micros(r.recorded_at)?,
        })
    }
}

/// Groups history rows (ordered by item, then entry) into each item's history and
/// attaches it, keeping the items' order.
pub fn attach_changes(
    records: Vec<RecurringItemRecord>,
    change_rows: Vec<ItemChangeRecord>,
) -> Result<Vec<RecurringItem>, StoreError> {
    let mut by_item: std::collections::HashMap<i64, Vec<ItemChange>> =
        std::collections::HashMap::new();
    for row in change_rows {
        let item_id = row.item_id;
        by_item.entry(item_id).or_default().push(row.try_into()?);
    }
    records
        .into_iter()
        .map(|r| {
            let changes = by_item.remove(&r.id).unwrap_or_default();
            r.into_item(changes)
        })
        .collect()
}

#[derive(Debug, sqlx::FromRow)]
pub struct OneTimeItemRecord {
    pub id: i64,
    pub plan_id: i64,
    pub plan_ext_id: String,
    pub account_id: i64,
    pub ext_id: String,
    pub product_code: String,
    pub name: String,
    pub description: Option<String>,
    pub quantity: String,
    pub unit_price: String,
    pub charge_date: String,
    pub tax_code: Option<String>,
    pub cancelled_at: Option<i64>,
    pub invoiced: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub version: i64,
}

/// The writable columns of `one_time_items`, in the order [`one_time_values`] gives them.
pub const ONE_TIME_WRITABLE: [&str; 8] = [
    "ext_id",
    "product_code",
    "name",
    "description",
    "quantity",
    "unit_price",
    "charge_date",
    "tax_code",
];

pub fn one_time_values(f: &OneTimeItemFields) -> Vec<Value> {
    use Value::*;
    vec![
        Text(f.ext_id.clone()),
        Text(f.product_code.clone()),
        Text(f.name.clone()),
        OptText(f.description.clone()),
        Text(f.quantity.normalize().to_string()),
        Text(f.unit_price.normalize().to_string()),
        Text(date_text(f.charge_date)),
        OptText(f.tax_code.clone()),
    ]
}

impl TryFrom<OneTimeItemRecord> for OneTimeItem {
    type Error = StoreError;

    fn try_from(r: OneTimeItemRecord) -> Result<Self, StoreError> {
        Ok(OneTimeItem {
            id: OneTimeItemId(r.id),
            plan_id: PlanId(r.plan_id),
            plan_ext_id: r.plan_ext_id,
            account_id: AccountId(r.account_id),
            fields: OneTimeItemFields {
                ext_id: r.ext_id,
                product_code: r.product_code,
                name: r.name,
                description: r.description,
                quantity: parse_decimal(&r.quantity)?,
                unit_price: parse_decimal(&r.unit_price)?,
                charge_date: parse_date(&r.charge_date)?,
                tax_code: r.tax_code,
            },
            cancelled_at: r.cancelled_at.map(from_micros).transpose()?,
            invoiced: r.invoiced,
            created_at: from_micros(r.created_at)?,
            updated_at: from_micros(r.updated_at)?,
            deleted_at: r.deleted_at.map(from_micros).transpose()?,
            version: r.version,
        })
    }
}

/// A ledger row: what an earlier bill run billed or settled for an item's piece.
#[derive(Debug, sqlx::FromRow)]
pub struct LedgerRecord {
    pub item_id: i64,
    pub period_start: String,
    pub period_end: String,
    pub entry: i64,
    pub base_seq: i64,
}

impl TryFrom<LedgerRecord> for LedgerEntry {
    type Error = StoreError;

    fn try_from(r: LedgerRecord) -> Result<Self, StoreError> {
        Ok(LedgerEntry {
            item: RecurringItemId(r.item_id),
            period_start: parse_date(&r.period_start)?,
            period_end: parse_date(&r.period_end)?,
            entry: EntryKey::from_code(r.entry)
                .ok_or_else(|| StoreError::Other(anyhow!("bad ledger entry {}", r.entry)))?,
            base_seq: r.base_seq,
        })
    }
}

/// The columns of `billing_ledger` after `tenant_id`, in the order [`ledger_values`] gives them.
pub const LEDGER_WRITABLE: [&str; 6] = [
    "item_id",
    "period_start",
    "entry",
    "period_end",
    "base_seq",
    "invoice_id",
];

/// With `$1` the tenant and `$2` an invoice being cancelled with rebill: each piece
/// (item and period) the invoice billed or adjusted, with the first ledger entry the
/// invoice holds for it. Entries are numbered in the order they were written, so the
/// piece's entries from `first_id` on are what the invoice's run, and the runs after
/// it, recorded for the piece.
macro_rules! rebill_pieces {
    () => {
        "WITH x AS (SELECT item_id, period_start, MIN(id) AS first_id \
        FROM billing_ledger WHERE tenant_id = $1 AND invoice_id = $2 \
        GROUP BY item_id, period_start) "
    };
}

/// The first other live (not cancelled) invoice holding an unreleased entry of one
/// of the invoice's pieces written after the invoice's own: a later invoice that
/// adjusted a period the invoice billed or adjusted. Rebilling then would count that
/// adjustment against terms the invoice no longer stands for.
pub const REBILL_BLOCKED_BY: &str = concat!(
    rebill_pieces!(),
    "SELECT o.invoice_id FROM x \
    JOIN billing_ledger o ON o.item_id = x.item_id AND o.period_start = x.period_start \
        AND o.id > x.first_id \
    JOIN invoices i ON i.id = o.invoice_id \
    WHERE o.released = FALSE AND o.invoice_id <> $2 AND i.status <> 5 \
    ORDER BY o.invoice_id LIMIT 1"
);

/// Releases, for each of the invoice's pieces, every entry from the invoice's first
/// on: its own, the settlements that made no line (they were decided knowing the
/// invoice's), and those on cancelled invoices; returns their items. What stays is
/// what was recorded before, so the next run settles the rest on top of it as if the
/// invoice had never existed.
pub const REBILL_RELEASE: &str = concat!(
    rebill_pieces!(),
    "UPDATE billing_ledger SET released = TRUE FROM x \
    WHERE billing_ledger.item_id = x.item_id AND billing_ledger.period_start = x.period_start \
    AND billing_ledger.id >= x.first_id AND billing_ledger.released = FALSE \
    RETURNING billing_ledger.item_id"
);

/// The refusal of a rebill that [`REBILL_BLOCKED_BY`] found blocked by `other`.
pub fn rebill_blocked(invoice: InvoiceId, other: i64) -> StoreError {
    StoreError::NotAllowed(format!(
        "invoice {other} adjusted periods that invoice {invoice} billed; cancel invoice {other} \
         with Rebill 1 first, or cancel this one with Rebill 0"
    ))
}

/// The billing snapshot of a batch, from its rows: each plan, item, ledger entry
/// and one-time item goes to its account (in one pass each, keeping the rows'
/// order), and accounts keep theirs.
pub fn billing_accounts(
    account_rows: Vec<AccountRecord>,
    plans: Vec<Plan>,
    items: Vec<RecurringItem>,
    ledger: Vec<LedgerEntry>,
    one_time: Vec<OneTimeItem>,
) -> Result<Vec<dynabill_app::model::BillingAccount>, StoreError> {
    use std::collections::HashMap;
    let mut out = Vec::with_capacity(account_rows.len());
    let mut index = HashMap::with_capacity(account_rows.len());
    for row in account_rows {
        let account = Account::try_from(row)?;
        index.insert(account.id, out.len());
        out.push(dynabill_app::model::BillingAccount {
            account,
            plans: Vec::new(),
            items: Vec::new(),
            ledger: Vec::new(),
            one_time: Vec::new(),
        });
    }
    for plan in plans {
        if let Some(&i) = index.get(&plan.account_id) {
            out[i].plans.push(plan);
        }
    }
    let mut item_account = HashMap::with_capacity(items.len());
    for item in items {
        if let Some(&i) = index.get(&item.account_id) {
            item_account.insert(item.id, i);
            out[i].items.push(item);
        }
    }
    for entry in ledger {
        if let Some(&i) = item_account.get(&entry.item) {
            out[i].ledger.push(entry);
        }
    }
    for item in one_time {
        if let Some(&i) = index.get(&item.account_id) {
            out[i].one_time.push(item);
        }
    }
    Ok(out)
}

/// The rows a batch of bills writes, once every invoice has its ID.
pub struct BillRows<'a> {
    /// The invoices' IDs, per bill, in the order of its `invoices`.
    pub ids: Vec<Vec<i64>>,
    /// Every invoice with its account and ID, bill by bill.
    pub invoices: Vec<(AccountId, i64, &'a NewInvoice)>,
    /// Every line with its invoice's ID, invoice by invoice.
    pub lines: Vec<(i64, &'a InvoiceLineRecord)>,
    /// Every ledger entry with its invoice's ID (`None` for a settlement without a line).
    pub ledger: Vec<(Option<i64>, &'a LedgerEntry)>,
    /// The one-time items now invoiced, with their invoice's ID.
    pub one_time: Vec<(i64, i64)>,
    /// The recurring items with new ledger entries, sorted, without duplicates.
    pub items: Vec<i64>,
}

impl<'a> BillRows<'a> {
    /// How many invoices `bills` hold.
    pub fn invoice_count(bills: &[dynabill_app::model::AccountBill]) -> usize {
        bills.iter().map(|b| b.invoices.len()).sum()
    }

    /// The rows of `bills`, the invoices numbered from `ids` in bill order (it must
    /// yield [`Self::invoice_count`] IDs).
    pub fn new(
        bills: &'a [dynabill_app::model::AccountBill],
        ids: impl IntoIterator<Item = i64>,
    ) -> Self {
        let mut ids = ids.into_iter();
        let ids: Vec<Vec<i64>> = bills
            .iter()
            .map(|bill| bill.invoices.iter().map_while(|_| ids.next()).collect())
            .collect();
        let mut rows = BillRows {
            invoices: Vec::new(),
            lines: Vec::new(),
            ledger: Vec::new(),
            one_time: Vec::new(),
            items: Vec::new(),
            ids: Vec::new(),
        };
        for (bill, ids) in bills.iter().zip(&ids) {
            for (id, invoice) in ids.iter().zip(&bill.invoices) {
                rows.invoices.push((bill.account, *id, invoice));
                rows.lines
                    .extend(invoice.lines.iter().map(|line| (*id, line)));
            }
            for (invoice, entry) in &bill.ledger {
                rows.ledger
                    .push((invoice.and_then(|i| ids.get(i).copied()), entry));
                rows.items.push(entry.item.0);
            }
            for (item, invoice) in &bill.one_time {
                if let Some(id) = ids.get(*invoice) {
                    rows.one_time.push((item.0, *id));
                }
            }
        }
        rows.items.sort_unstable();
        rows.items.dedup();
        rows.ids = ids;
        rows
    }

    /// The IDs per bill, as returned by a commit.
    pub fn invoice_ids(self) -> Vec<Vec<InvoiceId>> {
        self.ids
            .into_iter()
            .map(|ids| ids.into_iter().map(InvoiceId).collect())
            .collect()
    }
}

pub fn ledger_values(e: &LedgerEntry, invoice: Option<i64>) -> Vec<Value> {
    use Value::*;
    vec![
        Int(e.item.0),
        Text(date_text(e.period_start)),
        Int(e.entry.code()),
        Text(date_text(e.period_end)),
        Int(e.base_seq),
        OptInt(invoice),
    ]
}

#[derive(Debug, sqlx::FromRow)]
pub struct InvoiceRecord {
    pub id: i64,
    pub account_id: i64,
    pub account_ext_id: String,
    pub plan_id: Option<i64>,
    pub invoice_number: Option<String>,
    pub status: i64,
    pub invoice_date: String,
    pub due_date: String,
    pub currency: String,
    pub subtotal: String,
    pub tax_total: String,
    pub total: String,
    pub credit_applied: String,
    pub credit_added: String,
    pub amount_due: String,
    pub po_number: Option<String>,
    pub memo: Option<String>,
    pub paid_date: Option<String>,
    pub payment_reference: Option<String>,
    pub cancel_reason: Option<String>,
    pub tax_error: Option<String>,
    pub tax_attempts: i64,
    pub next_tax_attempt: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

impl InvoiceRecord {
    pub fn into_invoice(self, lines: Vec<InvoiceLineRecord>) -> Result<Invoice, StoreError> {
        Ok(Invoice {
            id: InvoiceId(self.id),
            account_id: AccountId(self.account_id),
            account_ext_id: self.account_ext_id,
            plan_id: self.plan_id.map(PlanId),
            number: self.invoice_number,
            status: coded("invoice status", self.status, InvoiceStatus::from_code)?,
            invoice_date: parse_date(&self.invoice_date)?,
            due_date: parse_date(&self.due_date)?,
            currency: stored("currency", &self.currency)?,
            subtotal: parse_decimal(&self.subtotal)?,
            tax_total: parse_decimal(&self.tax_total)?,
            total: parse_decimal(&self.total)?,
            credit_applied: parse_decimal(&self.credit_applied)?,
            credit_added: parse_decimal(&self.credit_added)?,
            amount_due: parse_decimal(&self.amount_due)?,
            po_number: self.po_number,
            memo: self.memo,
            paid_date: parse_opt_date(self.paid_date.as_deref())?,
            payment_reference: self.payment_reference,
            cancel_reason: self.cancel_reason,
            tax_error: self.tax_error,
            tax_attempts: self.tax_attempts,
            next_tax_attempt: self.next_tax_attempt.map(from_micros).transpose()?,
            lines,
            created_at: from_micros(self.created_at)?,
            updated_at: from_micros(self.updated_at)?,
            version: self.version,
        })
    }
}

/// The columns of `invoices` a new invoice writes (after `tenant_id, account_id`),
/// in the order [`invoice_values`] gives them.
pub const INVOICE_WRITABLE: [&str; 14] = [
    "plan_id",
    "status",
    "invoice_date",
    "due_date",
    "currency",
    "subtotal",
    "tax_total",
    "total",
    "credit_applied",
    "credit_added",
    "amount_due",
    "po_number",
    "created_at",
    "updated_at",
];

fn amount(d: Decimal) -> Value {
    Value::Text(d.to_string())
}

pub fn invoice_values(i: &NewInvoice, now: Timestamp) -> Vec<Value> {
    use Value::*;
    vec![
        OptInt(i.plan_id.map(|p| p.0)),
        Int(i.status.code()),
        Text(date_text(i.invoice_date)),
        Text(date_text(i.due_date)),
        Text(i.currency.code().to_owned()),
        amount(i.subtotal),
        amount(i.tax_total),
        amount(i.total),
        amount(i.credit_applied),
        amount(i.credit_added),
        amount(i.amount_due),
        OptText(i.po_number.clone()),
        Int(micros(now)),
        Int(micros(now)),
    ]
}

#[derive(Debug, sqlx::FromRow)]
pub struct InvoiceLineRow {
    pub id: i64,
    pub invoice_id: i64,
    pub line_type: i64,
    pub recurring_item_id: Option<i64>,
    pub one_time_item_id: Option<i64>,
    pub item_ext_id: String,
    pub product_code: String,
    pub description: String,
    pub quantity: String,
    pub unit_price: String,
    pub discount_percent: String,
    pub fraction: Option<String>,
    pub amount: String,
    pub service_start: String,
    pub service_end: String,
    pub period_start: Option<String>,
    pub period_end: Option<String>,
    pub tax_code: Option<String>,
    pub tax_amount: String,
    pub taxes: String,
}

impl TryFrom<InvoiceLineRow> for InvoiceLineRecord {
    type Error = StoreError;

    fn try_from(r: InvoiceLineRow) -> Result<Self, StoreError> {
        let period = match (
            parse_opt_date(r.period_start.as_deref())?,
            parse_opt_date(r.period_end.as_deref())?,
        ) {
            (Some(start), Some(end)) => Some((start, end)),
            _ => None,
        };
        Ok(InvoiceLineRecord {
            id: r.id,
            line_type: coded("line type", r.line_type, LineType::from_code)?,
            recurring_item_id: r.recurring_item_id.map(RecurringItemId),
            one_time_item_id: r.one_time_item_id.map(OneTimeItemId),
            item_ext_id: r.item_ext_id,
            product_code: r.product_code,
            description: r.description,
            quantity: parse_decimal(&r.quantity)?,
            unit_price: parse_decimal(&r.unit_price)?,
            discount_percent: parse_decimal(&r.discount_percent)?,
            fraction: r.fraction.as_deref().map(parse_decimal).transpose()?,
            amount: parse_decimal(&r.amount)?,
            service_start: parse_date(&r.service_start)?,
            service_end: parse_date(&r.service_end)?,
            period,
            tax_code: r.tax_code,
            tax_amount: parse_decimal(&r.tax_amount)?,
            taxes: parse_taxes(&r.taxes)?,
        })
    }
}

/// The columns of `invoice_lines` after `tenant_id, invoice_id`, in the order
/// [`line_values`] gives them.
pub const LINE_WRITABLE: [&str; 18] = [
    "line_type",
    "recurring_item_id",
    "one_time_item_id",
    "item_ext_id",
    "product_code",
    "description",
    "quantity",
    "unit_price",
    "discount_percent",
    "fraction",
    "amount",
    "service_start",
    "service_end",
    "period_start",
    "period_end",
    "tax_code",
    "tax_amount",
    "taxes",
];

pub fn line_values(l: &InvoiceLineRecord) -> Vec<Value> {
    use Value::*;
    vec![
        Int(l.line_type.code()),
        OptInt(l.recurring_item_id.map(|i| i.0)),
        OptInt(l.one_time_item_id.map(|i| i.0)),
        Text(l.item_ext_id.clone()),
        Text(l.product_code.clone()),
        Text(l.description.clone()),
        Text(l.quantity.normalize().to_string()),
        Text(l.unit_price.normalize().to_string()),
        Text(l.discount_percent.normalize().to_string()),
        OptText(l.fraction.map(|f| f.to_string())),
        amount(l.amount),
        Text(date_text(l.service_start)),
        Text(date_text(l.service_end)),
        OptText(l.period.map(|p| date_text(p.0))),
        OptText(l.period.map(|p| date_text(p.1))),
        OptText(l.tax_code.clone()),
        amount(l.tax_amount),
        Text(taxes_text(&l.taxes)),
    ]
}

/// A line's taxes as stored: a JSON array of `{description, amount, rate?,
/// jurisdiction?}` with amounts and rates as exact decimal strings.
pub fn taxes_text(taxes: &[LineTax]) -> String {
    let list: Vec<serde_json::Value> = taxes
        .iter()
        .map(|t| {
            let mut o = serde_json::Map::new();
            o.insert("description".into(), t.description.clone().into());
            o.insert("amount".into(), t.amount.to_string().into());
            if let Some(rate) = t.rate {
                o.insert("rate".into(), rate.to_string().into());
            }
            if let Some(j) = &t.jurisdiction {
                o.insert("jurisdiction".into(), j.clone().into());
            }
            serde_json::Value::Object(o)
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

fn parse_taxes(text: &str) -> Result<Vec<LineTax>, StoreError> {
    let bad = |why: &str| StoreError::Other(anyhow!("bad stored taxes {text:?}: {why}"));
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| bad("not JSON"))?;
    let list = value.as_array().ok_or_else(|| bad("not an array"))?;
    list.iter()
        .map(|t| {
            let field = |k: &str| t.get(k).and_then(serde_json::Value::as_str);
            Ok(LineTax {
                description: field("description")
                    .ok_or_else(|| bad("no description"))?
                    .to_owned(),
                amount: parse_decimal(field("amount").ok_or_else(|| bad("no amount"))?)?,
                rate: field("rate").map(parse_decimal).transpose()?,
                jurisdiction: field("jurisdiction").map(str::to_owned),
            })
        })
        .collect()
}

/// A row of `tax_rates`.
#[derive(Debug, sqlx::FromRow)]
pub struct TaxRateRow {
    pub id: i64,
    pub name: String,
    pub country: String,
    pub state: Option<String>,
    pub tax_code: Option<String>,
    pub rate: String,
}

impl TryFrom<TaxRateRow> for TaxRateRecord {
    type Error = StoreError;

    fn try_from(r: TaxRateRow) -> Result<Self, StoreError> {
        Ok(TaxRateRecord {
            id: r.id,
            rule: TaxRule {
                name: r.name,
                country: r.country,
                state: r.state,
                tax_code: r.tax_code,
                rate: parse_decimal(&r.rate)?,
            },
        })
    }
}

/// Groups line rows (ordered by invoice, then line) under their invoices, keeping
/// the invoices' order.
pub fn attach_lines(
    records: Vec<InvoiceRecord>,
    rows: Vec<InvoiceLineRow>,
) -> Result<Vec<Invoice>, StoreError> {
    let mut by_invoice: std::collections::HashMap<i64, Vec<InvoiceLineRecord>> =
        std::collections::HashMap::new();
    for row in rows {
        let invoice = row.invoice_id;
        by_invoice.entry(invoice).or_default().push(row.try_into()?);
    }
    records
        .into_iter()
        .map(|r| {
            let lines = by_invoice.remove(&r.id).unwrap_or_default();
            r.into_invoice(lines)
        })
        .collect()
}
