//! The wire shapes of invoices, their lines and taxes, and the lines waiting for taxes.

use dynabill_app::model::{Invoice, InvoiceLineRecord};
use dynabill_core::money::Currency;
use serde::Serialize;

use super::{Amount, Exact, Num, day, stamp};

#[derive(Serialize)]
#[expect(non_snake_case, reason = "the wire's field names")]
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
#[expect(non_snake_case, reason = "the wire's field names")]
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
#[expect(non_snake_case, reason = "the wire's field names")]
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
#[expect(non_snake_case, reason = "the wire's field names")]
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
