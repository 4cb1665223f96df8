//! Invoices and their lines.

use anyhow::anyhow;
use dynabill_app::model::{Invoice, InvoiceLineRecord, LineTax, NewInvoice};
use dynabill_app::store::StoreError;
use dynabill_core::billing::LineType;
use dynabill_core::domain::{
    AccountId, InvoiceId, InvoiceStatus, OneTimeItemId, PlanId, RecurringItemId,
};
use jiff::Timestamp;

use crate::values::{
    Value, amount, coded, date_text, from_micros, micros, parse_date, parse_decimal,
    parse_opt_date, stored,
};

#[derive(Debug, sqlx::FromRow)]
pub struct InvoiceRow {
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

impl InvoiceRow {
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

/// Groups line rows (ordered by invoice, then line) under their invoices, keeping
/// the invoices' order.
pub fn attach_lines(
    records: Vec<InvoiceRow>,
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
