//! Accounts.

use dynabill_core::domain::{
    AccountId, AccountStatus, AccountType, Country, DueDateMethod, Email, InvoiceGrouping,
};
use dynabill_core::money::Currency;
use jiff::Timestamp;
use rust_decimal::Decimal;

use super::Change;

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
