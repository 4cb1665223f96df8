//! Wire shapes of records: the field names and value forms of SPEC §4.

use dynabill_app::model::{Account, Plan};
use dynabill_core::money::{Currency, Rounding};
use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

/// An amount as a JSON number with exactly the currency's minor-unit digits.
pub struct Amount(Decimal);

impl Amount {
    pub fn in_currency(value: Decimal, currency: Currency) -> Amount {
        let mut v = Rounding::HalfUp.to_minor_unit(value, currency);
        v.rescale(currency.minor_unit());
        Amount(v)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let number: serde_json::Number = self
            .0
            .to_string()
            .parse()
            .map_err(serde::ser::Error::custom)?;
        number.serialize(s)
    }
}

fn stamp(ts: Timestamp) -> String {
    // RFC 3339 in UTC with a fixed precision, so that strings sort like instants.
    format!("{ts:.6}")
}

fn day(date: Date) -> String {
    date.to_string()
}

#[derive(Serialize)]
#[allow(non_snake_case)]
pub struct AccountOut<'a> {
    ID: String,
    ExtID: &'a str,
    AccountName: &'a str,
    AccountType: i64,
    AccountStatus: i64,
    Email: &'a str,
    ExtID2: Option<&'a str>,
    InvoiceName: Option<&'a str>,
    Phone: Option<&'a str>,
    Address: Option<&'a str>,
    City: Option<&'a str>,
    State: Option<&'a str>,
    Zip: Option<&'a str>,
    Country: Option<&'static str>,
    AccountManager: Option<&'a str>,
    ContactPerson: Option<&'a str>,
    DueDateMethod: i64,
    DueDateDays: u32,
    InvoiceGrouping: i64,
    Currency: &'static str,
    TaxExempt: u8,
    TaxExemptionNumber: Option<&'a str>,
    CreditBalance: Amount,
    Deleted: u8,
    DeletedAt: Option<String>,
    CreatedAt: String,
    UpdatedAt: String,
}

impl<'a> From<&'a Account> for AccountOut<'a> {
    fn from(a: &'a Account) -> Self {
        let f = &a.fields;
        AccountOut {
            ID: a.id.to_string(),
            ExtID: &f.ext_id,
            AccountName: &f.name,
            AccountType: f.account_type.code(),
            AccountStatus: f.status.code(),
            Email: f.email.as_str(),
            ExtID2: f.ext_id2.as_deref(),
            InvoiceName: f.invoice_name.as_deref(),
            Phone: f.phone.as_deref(),
            Address: f.address.as_deref(),
            City: f.city.as_deref(),
            State: f.state.as_deref(),
            Zip: f.zip.as_deref(),
            Country: f.country.map(|c| c.alpha2()),
            AccountManager: f.account_manager.as_deref(),
            ContactPerson: f.contact_person.as_deref(),
            DueDateMethod: f.due_date_method.code(),
            DueDateDays: f.due_date_days,
            InvoiceGrouping: f.invoice_grouping.code(),
            Currency: f.currency.code(),
            TaxExempt: u8::from(f.tax_exempt),
            TaxExemptionNumber: f.tax_exemption_number.as_deref(),
            CreditBalance: Amount::in_currency(a.credit_balance, f.currency),
            Deleted: u8::from(a.deleted_at.is_some()),
            DeletedAt: a.deleted_at.map(stamp),
            CreatedAt: stamp(a.created_at),
            UpdatedAt: stamp(a.updated_at),
        }
    }
}

#[derive(Serialize)]
#[allow(non_snake_case)]
pub struct PlanOut<'a> {
    ID: String,
    ExtID: &'a str,
    AccountID: String,
    AccountExtID: &'a str,
    PlanName: Option<&'a str>,
    StartDate: String,
    EndDate: Option<String>,
    AutoRenew: u8,
    RenewalTermMonths: u32,
    BillingDay: Option<u8>,
    Currency: &'static str,
    PONumber: Option<&'a str>,
    Notes: Option<&'a str>,
    PlanStatus: i64,
    CancelDate: Option<String>,
    Deleted: u8,
    DeletedAt: Option<String>,
    CreatedAt: String,
    UpdatedAt: String,
}

impl<'a> PlanOut<'a> {
    pub fn new(p: &'a Plan, today: Date) -> Self {
        let f = &p.fields;
        PlanOut {
            ID: p.id.to_string(),
            ExtID: &f.ext_id,
            AccountID: p.account_id.to_string(),
            AccountExtID: &p.account_ext_id,
            PlanName: f.name.as_deref(),
            StartDate: day(f.start_date),
            EndDate: f.end_date.map(day),
            AutoRenew: u8::from(f.auto_renew),
            RenewalTermMonths: f.renewal_term_months,
            BillingDay: f.billing_day,
            Currency: f.currency.code(),
            PONumber: f.po_number.as_deref(),
            Notes: f.notes.as_deref(),
            PlanStatus: p.status(today).code(),
            CancelDate: p.cancel_date.map(day),
            Deleted: u8::from(p.deleted_at.is_some()),
            DeletedAt: p.deleted_at.map(stamp),
            CreatedAt: stamp(p.created_at),
            UpdatedAt: stamp(p.updated_at),
        }
    }
}
