//! Wire shapes of records: the field names and value forms of SPEC §4.

use dynabill_app::model::{
    Account, Invoice, InvoiceLineRecord, ItemChange, ItemChangeKind, OneTimeItem, Plan,
    RecurringItem,
};
use dynabill_core::calendar::CalendarError;
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

/// A quantity, price or percentage as a JSON number, without trailing zeros.
pub struct Num(Decimal);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let number: serde_json::Number = self
            .0
            .normalize()
            .to_string()
            .parse()
            .map_err(serde::ser::Error::custom)?;
        number.serialize(s)
    }
}

/// A decimal as a JSON number exactly as stored (tax amounts keep the scale they
/// were computed or sent with: `1.50` from a rate table, `0.00625` from a service).
pub struct Exact(Decimal);

impl Serialize for Exact {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let number: serde_json::Number = self
            .0
            .to_string()
            .parse()
            .map_err(serde::ser::Error::custom)?;
        number.serialize(s)
    }
}

fn name_of(kind: ItemChangeKind) -> &'static str {
    match kind {
        ItemChangeKind::Created => "Created",
        ItemChangeKind::Updated => "Updated",
        ItemChangeKind::Upsell => "Upsell",
        ItemChangeKind::Renewal => "Renewal",
        ItemChangeKind::Cancellation => "Cancellation",
        ItemChangeKind::DatesChanged => "DatesChanged",
        ItemChangeKind::Deleted => "Deleted",
    }
}

#[derive(Serialize)]
#[allow(non_snake_case)]
pub struct HistoryOut {
    Change: &'static str,
    ChangeType: i64,
    EffectiveDate: String,
    Quantity: Option<Num>,
    UnitPrice: Option<Num>,
    DiscountPercent: Option<Num>,
    StartDate: String,
    EndDate: Option<String>,
    ProrationMode: Option<u8>,
    CreditMode: Option<u8>,
    RecordedAt: String,
}

impl From<&ItemChange> for HistoryOut {
    fn from(c: &ItemChange) -> Self {
        HistoryOut {
            Change: name_of(c.kind),
            ChangeType: c.kind.code(),
            EffectiveDate: day(c.effective_date),
            Quantity: c.quantity.map(Num),
            UnitPrice: c.unit_price.map(Num),
            DiscountPercent: c.discount_percent.map(Num),
            StartDate: day(c.start_date),
            EndDate: c.end_date.map(day),
            ProrationMode: c.prorate.map(u8::from),
            CreditMode: c.credit.map(u8::from),
            RecordedAt: stamp(c.recorded_at),
        }
    }
}

#[derive(Serialize)]
#[allow(non_snake_case)]
pub struct RecurringItemOut<'a> {
    ID: String,
    ExtID: &'a str,
    PlanID: String,
    PlanExtID: &'a str,
    AccountID: String,
    ProductCode: &'a str,
    ItemName: &'a str,
    Description: Option<&'a str>,
    Quantity: Num,
    UnitPrice: Num,
    DiscountPercent: Num,
    BillingPeriod: i64,
    BillingPeriodCount: u32,
    BillingTiming: i64,
    StartDate: String,
    EndDate: Option<String>,
    TaxCode: Option<&'a str>,
    ItemStatus: i64,
    ChargedThroughDate: Option<String>,
    NextBillingDate: Option<String>,
    CancelDate: Option<String>,
    CreditMode: Option<u8>,
    Deleted: u8,
    DeletedAt: Option<String>,
    CreatedAt: String,
    UpdatedAt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    History: Option<Vec<HistoryOut>>,
}

impl<'a> RecurringItemOut<'a> {
    /// The item as of `today` (terms in force, status); with its history if asked.
    pub fn new(
        item: &'a RecurringItem,
        today: Date,
        with_history: bool,
    ) -> Result<Self, CalendarError> {
        let f = &item.fields;
        let terms = item.current_terms(today)?;
        Ok(RecurringItemOut {
            ID: item.id.to_string(),
            ExtID: &f.ext_id,
            PlanID: item.plan_id.to_string(),
            PlanExtID: &item.plan_ext_id,
            AccountID: item.account_id.to_string(),
            ProductCode: &f.product_code,
            ItemName: &f.name,
            Description: f.description.as_deref(),
            Quantity: Num(terms.quantity()),
            UnitPrice: Num(terms.unit_price()),
            DiscountPercent: Num(terms.discount_percent()),
            BillingPeriod: f.billing_period.code(),
            BillingPeriodCount: f.period_count,
            BillingTiming: f.timing.code(),
            StartDate: day(f.start_date),
            EndDate: f.end_date.map(day),
            TaxCode: f.tax_code.as_deref(),
            ItemStatus: item.status(today).code(),
            ChargedThroughDate: item.charged_through.map(day),
            NextBillingDate: item.next_billing_date()?.map(day),
            CancelDate: item.cancellation.map(|c| day(c.date)),
            CreditMode: item.cancellation.map(|c| u8::from(c.credit)),
            Deleted: u8::from(item.deleted_at.is_some()),
            DeletedAt: item.deleted_at.map(stamp),
            CreatedAt: stamp(item.created_at),
            UpdatedAt: stamp(item.updated_at),
            History: with_history.then(|| item.changes.iter().map(HistoryOut::from).collect()),
        })
    }
}

#[derive(Serialize)]
#[allow(non_snake_case)]
pub struct OneTimeItemOut<'a> {
    ID: String,
    ExtID: &'a str,
    PlanID: String,
    PlanExtID: &'a str,
    AccountID: String,
    ProductCode: &'a str,
    ItemName: &'a str,
    Description: Option<&'a str>,
    Quantity: Num,
    UnitPrice: Num,
    ChargeDate: String,
    TaxCode: Option<&'a str>,
    ItemStatus: i64,
    Deleted: u8,
    DeletedAt: Option<String>,
    CreatedAt: String,
    UpdatedAt: String,
}

impl<'a> From<&'a OneTimeItem> for OneTimeItemOut<'a> {
    fn from(item: &'a OneTimeItem) -> Self {
        let f = &item.fields;
        OneTimeItemOut {
            ID: item.id.to_string(),
            ExtID: &f.ext_id,
            PlanID: item.plan_id.to_string(),
            PlanExtID: &item.plan_ext_id,
            AccountID: item.account_id.to_string(),
            ProductCode: &f.product_code,
            ItemName: &f.name,
            Description: f.description.as_deref(),
            Quantity: Num(f.quantity),
            UnitPrice: Num(f.unit_price),
            ChargeDate: day(f.charge_date),
            TaxCode: f.tax_code.as_deref(),
            ItemStatus: item.status().code(),
            Deleted: u8::from(item.deleted_at.is_some()),
            DeletedAt: item.deleted_at.map(stamp),
            CreatedAt: stamp(item.created_at),
            UpdatedAt: stamp(item.updated_at),
        }
    }
}

#[derive(Serialize)]
#[allow(non_snake_case)]
pub struct TaxOut<'a> {
    Description: &'a str,
    Amount: Exact,
    Rate: Option<Num>,
    Jurisdiction: Option<&'a str>,
}

impl<'a> From<&'a dynabill_app::model::LineTax> for TaxOut<'a> {
    fn from(t: &'a dynabill_app::model::LineTax) -> Self {
        TaxOut {
            Description: &t.description,
            Amount: Exact(t.amount),
            Rate: t.rate.map(Num),
            Jurisdiction: t.jurisdiction.as_deref(),
        }
    }
}

#[derive(Serialize)]
#[allow(non_snake_case)]
pub struct InvoiceLineOut<'a> {
    InvoiceLineID: String,
    LineType: i64,
    ItemID: Option<String>,
    ItemExtID: &'a str,
    ProductCode: &'a str,
    Description: &'a str,
    Quantity: Num,
    UnitPrice: Num,
    DiscountPercent: Num,
    Fraction: Option<Num>,
    Amount: Amount,
    ServiceStart: String,
    /// Inclusive, as invoices print it.
    ServiceEnd: String,
    PeriodStart: Option<String>,
    PeriodEnd: Option<String>,
    TaxCode: Option<&'a str>,
    TaxAmount: Exact,
    Taxes: Vec<TaxOut<'a>>,
}

impl<'a> InvoiceLineOut<'a> {
    fn new(line: &'a InvoiceLineRecord, currency: Currency) -> Self {
        let item = line
            .recurring_item_id
            .map(|i| i.to_string())
            .or(line.one_time_item_id.map(|i| i.to_string()));
        InvoiceLineOut {
            InvoiceLineID: line.id.to_string(),
            LineType: line.line_type.code(),
            ItemID: item,
            ItemExtID: &line.item_ext_id,
            ProductCode: &line.product_code,
            Description: &line.description,
            Quantity: Num(line.quantity),
            UnitPrice: Num(line.unit_price),
            DiscountPercent: Num(line.discount_percent),
            Fraction: line.fraction.map(Num),
            Amount: Amount::in_currency(line.amount, currency),
            ServiceStart: day(line.service_start),
            ServiceEnd: day(line.service_end.yesterday().unwrap_or(line.service_end)),
            PeriodStart: line.period.map(|p| day(p.0)),
            PeriodEnd: line.period.map(|p| day(p.1.yesterday().unwrap_or(p.1))),
            TaxCode: line.tax_code.as_deref(),
            TaxAmount: Exact(line.tax_amount),
            Taxes: line.taxes.iter().map(TaxOut::from).collect(),
        }
    }
}

#[derive(Serialize)]
#[allow(non_snake_case)]
pub struct InvoiceOut<'a> {
    ID: String,
    BillingInvoiceID: String,
    InvoiceNumber: Option<&'a str>,
    AccountID: String,
    AccountExtID: &'a str,
    PlanID: Option<String>,
    InvoiceStatus: i64,
    InvoiceDate: String,
    DueDate: String,
    Currency: &'static str,
    Subtotal: Amount,
    TaxTotal: Amount,
    Total: Amount,
    CreditApplied: Amount,
    CreditAdded: Amount,
    AmountDue: Amount,
    PONumber: Option<&'a str>,
    Memo: Option<&'a str>,
    PaidDate: Option<String>,
    PaymentReference: Option<&'a str>,
    CancelReason: Option<&'a str>,
    /// Why the last attempt to tax it failed, while it waits in Pending Tax.
    TaxError: Option<&'a str>,
    TaxAttempts: i64,
    NextTaxAttempt: Option<String>,
    CreatedAt: String,
    UpdatedAt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    Lines: Option<Vec<InvoiceLineOut<'a>>>,
}

impl<'a> InvoiceOut<'a> {
    pub fn new(i: &'a Invoice, with_lines: bool) -> Self {
        let c = i.currency;
        InvoiceOut {
            ID: i.id.to_string(),
            BillingInvoiceID: i.id.to_string(),
            InvoiceNumber: i.number.as_deref(),
            AccountID: i.account_id.to_string(),
            AccountExtID: &i.account_ext_id,
            PlanID: i.plan_id.map(|p| p.to_string()),
            InvoiceStatus: i.status.code(),
            InvoiceDate: day(i.invoice_date),
            DueDate: day(i.due_date),
            Currency: c.code(),
            Subtotal: Amount::in_currency(i.subtotal, c),
            TaxTotal: Amount::in_currency(i.tax_total, c),
            Total: Amount::in_currency(i.total, c),
            CreditApplied: Amount::in_currency(i.credit_applied, c),
            CreditAdded: Amount::in_currency(i.credit_added, c),
            AmountDue: Amount::in_currency(i.amount_due, c),
            PONumber: i.po_number.as_deref(),
            Memo: i.memo.as_deref(),
            PaidDate: i.paid_date.map(day),
            PaymentReference: i.payment_reference.as_deref(),
            CancelReason: i.cancel_reason.as_deref(),
            TaxError: i.tax_error.as_deref(),
            TaxAttempts: i.tax_attempts,
            NextTaxAttempt: i.next_tax_attempt.map(stamp),
            CreatedAt: stamp(i.created_at),
            UpdatedAt: stamp(i.updated_at),
            Lines: with_lines.then(|| i.lines.iter().map(|l| InvoiceLineOut::new(l, c)).collect()),
        }
    }
}

/// One row of 1007/119, with DealHub's names for the two keys.
#[derive(Serialize)]
#[allow(non_snake_case)]
pub struct PendingTaxLineOut<'a> {
    BillingInvoiceID2: String,
    InvoiceLineID2: String,
    InvoiceDate: String,
    Currency: &'static str,
    AccountID: String,
    AccountExtID: &'a str,
    AccountName: &'a str,
    Address: Option<&'a str>,
    City: Option<&'a str>,
    State: Option<&'a str>,
    Zip: Option<&'a str>,
    Country: Option<&'static str>,
    TaxExemptionNumber: Option<&'a str>,
    ProductCode: &'a str,
    Description: &'a str,
    TaxCode: Option<&'a str>,
    Quantity: Num,
    Amount: Amount,
}

impl<'a> From<&'a dynabill_app::taxes::PendingTaxLine> for PendingTaxLineOut<'a> {
    fn from(row: &'a dynabill_app::taxes::PendingTaxLine) -> Self {
        let f = &row.account.fields;
        PendingTaxLineOut {
            BillingInvoiceID2: row.invoice.id.to_string(),
            InvoiceLineID2: row.line.id.to_string(),
            InvoiceDate: day(row.invoice.invoice_date),
            Currency: row.invoice.currency.code(),
            AccountID: row.account.id.to_string(),
            AccountExtID: &f.ext_id,
            AccountName: &f.name,
            Address: f.address.as_deref(),
            City: f.city.as_deref(),
            State: f.state.as_deref(),
            Zip: f.zip.as_deref(),
            Country: f.country.map(|c| c.alpha2()),
            TaxExemptionNumber: f.tax_exemption_number.as_deref(),
            ProductCode: &row.line.product_code,
            Description: &row.line.description,
            TaxCode: row.line.tax_code.as_deref(),
            Quantity: Num(row.line.quantity),
            Amount: Amount::in_currency(row.line.amount, row.invoice.currency),
        }
    }
}
