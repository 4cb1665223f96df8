//! The records the use cases read and write, and the shapes of their changes.

use dynabill_core::domain::{
    AccountId, AccountStatus, AccountType, Country, DueDateMethod, Email, InvoiceGrouping, PlanId,
    PlanStatus, TenantId,
};
use dynabill_core::money::Currency;
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
    pub created_at: Timestamp,
}

/// How a call names one record: internal ID or the caller's `ExtID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordKey {
    Id(i64),
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
    pub id: Option<i64>,
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
    pub account: Change<RecordKey>,
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
    pub id: Option<i64>,
    pub ext_id: Option<String>,
    pub account_id: Option<i64>,
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
