//! The wire shape of an account.

use dynabill_app::model::Account;
use serde::Serialize;

use super::{Amount, stamp};

#[derive(Serialize)]
#[expect(non_snake_case, reason = "the wire's field names")]
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
