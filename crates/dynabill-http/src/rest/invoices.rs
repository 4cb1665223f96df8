//! Invoices and what makes them: `/v1/invoices` (list, get with `?include=lines`,
//! update, post, pay, cancel, taxes from a tax service), `/v1/tax/pending-lines`,
//! `/v1/accounts/{id}/upcoming-invoices` (a preview) and `/v1/bill-runs`.

#![expect(
    unused_qualifications,
    reason = "utoipa's path macro qualifies the parameter types it is given"
)]

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::Path;
use axum::response::Response;
use dynabill_app::model::{self, InvoiceLineRecord, InvoiceUpdate, NewInvoice, RecordKey};
use dynabill_core::domain::{AccountId, InvoiceId, InvoiceStatus};
use dynabill_core::money::Currency;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::call::{Empty, List, Outcome, Paging, includes, path_id};
use super::shapes::{day, decimal, money, stamp};
use super::{Call, Reply};
use crate::error::DoorError;
use crate::ops::{invoices as op, taxes as tax_op};

/// One tax on a line.
#[derive(Serialize, ToSchema)]
pub struct LineTax {
    /// What the tax is.
    #[schema(example = "CA State Tax")]
    description: String,
    /// The amount, a decimal string as computed or sent (up to 5 decimals from a
    /// tax service; the currency's minor unit from a rate table).
    #[schema(example = "7.25")]
    amount: String,
    /// The rate in percent, when known.
    #[schema(example = "7.25")]
    rate: Option<String>,
    /// The jurisdiction, when known.
    #[schema(example = "CA")]
    jurisdiction: Option<String>,
}

/// A line of an invoice.
#[derive(Serialize, ToSchema)]
pub struct InvoiceLine {
    /// The line's ID (absent in a preview: lines get theirs when written).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 90211)]
    id: Option<i64>,
    /// 1 recurring charge, 2 one-time charge, 3 proration, 4 credit (see the dynamic door's `LineType`).
    #[schema(example = 1)]
    line_type: i64,
    /// The recurring or one-time item billed.
    #[schema(example = 5120)]
    item_id: Option<i64>,
    /// The item's ExtID.
    #[schema(example = "SEATS-310")]
    item_ext_id: String,
    /// The item's product code.
    #[schema(example = "PRO-SEAT")]
    product_code: String,
    /// What the line bills.
    #[schema(example = "Pro seats, 2026-02-01 – 2026-02-28")]
    description: String,
    /// Quantity (decimal string).
    #[schema(example = "10")]
    quantity: String,
    /// Unit price (decimal string).
    #[schema(example = "49.5")]
    unit_price: String,
    /// Discount in percent (decimal string).
    #[schema(example = "0")]
    discount_percent: String,
    /// The share of the period billed (recurring lines).
    #[schema(example = "1")]
    fraction: Option<String>,
    /// The line's amount in the invoice's currency.
    #[schema(example = "495.00")]
    amount: String,
    /// The first day of service billed.
    #[schema(example = "2026-02-01")]
    service_start: String,
    /// The last day of service billed, inclusive, as invoices print it.
    #[schema(example = "2026-02-28")]
    service_end: String,
    /// The first day of the period the line belongs to (recurring lines).
    #[schema(example = "2026-02-01")]
    period_start: Option<String>,
    /// The last day of that period, inclusive.
    #[schema(example = "2026-02-28")]
    period_end: Option<String>,
    /// The tax code sent to the tax engine.
    #[schema(example = "SW054000")]
    tax_code: Option<String>,
    /// The sum of the line's taxes (decimal string, as computed or sent).
    #[schema(example = "0")]
    tax_amount: String,
    /// The line's taxes.
    taxes: Vec<LineTax>,
}

impl InvoiceLine {
    fn new(line: &InvoiceLineRecord, currency: Currency, written: bool) -> InvoiceLine {
        let inclusive = |d: jiff::civil::Date| day(d.yesterday().unwrap_or(d));
        InvoiceLine {
            id: written.then_some(line.id),
            line_type: line.line_type.code(),
            item_id: line
                .recurring_item_id
                .map(|i| i.0)
                .or(line.one_time_item_id.map(|i| i.0)),
            item_ext_id: line.item_ext_id.clone(),
            product_code: line.product_code.clone(),
            description: line.description.clone(),
            quantity: decimal(line.quantity),
            unit_price: decimal(line.unit_price),
            discount_percent: decimal(line.discount_percent),
            fraction: line.fraction.map(decimal),
            amount: money(line.amount, currency),
            service_start: day(line.service_start),
            service_end: inclusive(line.service_end),
            period_start: line.period.map(|p| day(p.0)),
            period_end: line.period.map(|p| inclusive(p.1)),
            tax_code: line.tax_code.clone(),
            tax_amount: line.tax_amount.to_string(),
            taxes: line
                .taxes
                .iter()
                .map(|t| LineTax {
                    description: t.description.clone(),
                    amount: t.amount.to_string(),
                    rate: t.rate.map(decimal),
                    jurisdiction: t.jurisdiction.clone(),
                })
                .collect(),
        }
    }
}

/// An invoice, made by a bill run.
#[derive(Serialize, ToSchema)]
pub struct Invoice {
    /// Assigned by dynabill.
    #[schema(example = 7001)]
    id: i64,
    /// The invoice number (given when it is posted or created past Draft).
    #[schema(example = "INV-000042")]
    invoice_number: Option<String>,
    /// The account billed.
    #[schema(example = 1042)]
    account_id: i64,
    /// The account's ExtID.
    #[schema(example = "CRM-1042")]
    account_ext_id: String,
    /// The plan, with one invoice per plan.
    #[schema(example = 310)]
    plan_id: Option<i64>,
    /// 1 Draft, 2 Pending Tax, 3 Posted, 4 Paid, 5 Cancelled.
    #[schema(example = 3)]
    invoice_status: i64,
    /// The bill run's date.
    #[schema(example = "2026-02-01")]
    invoice_date: String,
    /// When it is due.
    #[schema(example = "2026-03-03")]
    due_date: String,
    /// ISO 4217 currency.
    #[schema(example = "USD")]
    currency: String,
    /// The sum of the lines.
    #[schema(example = "495.00")]
    subtotal: String,
    /// The sum of the taxes.
    #[schema(example = "0.00")]
    tax_total: String,
    /// Subtotal plus taxes.
    #[schema(example = "495.00")]
    total: String,
    /// Credit of the account used by this invoice.
    #[schema(example = "0.00")]
    credit_applied: String,
    /// Credit this invoice gave the account (a negative total).
    #[schema(example = "0.00")]
    credit_added: String,
    /// What the customer owes: total less credit applied.
    #[schema(example = "495.00")]
    amount_due: String,
    /// The plan's purchase order number.
    #[schema(example = "PO-5521")]
    po_number: Option<String>,
    /// A note on the invoice.
    #[schema(example = "Thank you")]
    memo: Option<String>,
    /// When it was paid.
    #[schema(example = "2026-02-20")]
    paid_date: Option<String>,
    /// The payment's reference.
    #[schema(example = "WIRE-8812")]
    payment_reference: Option<String>,
    /// Why it was cancelled.
    #[schema(example = "Billed twice")]
    cancel_reason: Option<String>,
    /// Why the last attempt to tax it failed, while it waits in Pending Tax.
    #[schema(example = "AvaTax: the address could not be resolved")]
    tax_error: Option<String>,
    /// Attempts to tax it so far.
    #[schema(example = 0)]
    tax_attempts: i64,
    /// When taxing it will be tried again (RFC 3339, UTC).
    #[schema(example = "2026-02-01T02:05:00.000000Z")]
    next_tax_attempt: Option<String>,
    /// When it was created (RFC 3339, UTC).
    #[schema(example = "2026-02-01T02:00:00.000000Z")]
    created_at: String,
    /// When it last changed (RFC 3339, UTC).
    #[schema(example = "2026-02-01T02:00:00.000000Z")]
    updated_at: String,
    /// Its lines, with `include=lines`.
    #[serde(skip_serializing_if = "Option::is_none")]
    lines: Option<Vec<InvoiceLine>>,
}

impl Invoice {
    pub(super) fn new(i: &model::Invoice, with_lines: bool) -> Invoice {
        let c = i.currency;
        Invoice {
            id: i.id.0,
            invoice_number: i.number.clone(),
            account_id: i.account_id.0,
            account_ext_id: i.account_ext_id.clone(),
            plan_id: i.plan_id.map(|p| p.0),
            invoice_status: i.status.code(),
            invoice_date: day(i.invoice_date),
            due_date: day(i.due_date),
            currency: c.code().to_owned(),
            subtotal: money(i.subtotal, c),
            tax_total: money(i.tax_total, c),
            total: money(i.total, c),
            credit_applied: money(i.credit_applied, c),
            credit_added: money(i.credit_added, c),
            amount_due: money(i.amount_due, c),
            po_number: i.po_number.clone(),
            memo: i.memo.clone(),
            paid_date: i.paid_date.map(day),
            payment_reference: i.payment_reference.clone(),
            cancel_reason: i.cancel_reason.clone(),
            tax_error: i.tax_error.clone(),
            tax_attempts: i.tax_attempts,
            next_tax_attempt: i.next_tax_attempt.map(stamp),
            created_at: stamp(i.created_at),
            updated_at: stamp(i.updated_at),
            lines: with_lines.then(|| {
                i.lines
                    .iter()
                    .map(|l| InvoiceLine::new(l, c, true))
                    .collect()
            }),
        }
    }
}

/// An invoice a bill run would create now (a preview: written nowhere, so no
/// ID or number yet).
#[derive(Serialize, ToSchema)]
pub struct UpcomingInvoice {
    /// The account it would bill.
    #[schema(example = 1042)]
    account_id: i64,
    /// The plan, with one invoice per plan.
    #[schema(example = 310)]
    plan_id: Option<i64>,
    /// The status it would be created in: 1 Draft, 2 Pending Tax, 3 Posted.
    #[schema(example = 3)]
    invoice_status: i64,
    /// The bill run's date.
    #[schema(example = "2026-02-01")]
    invoice_date: String,
    /// When it would be due.
    #[schema(example = "2026-03-03")]
    due_date: String,
    /// ISO 4217 currency.
    #[schema(example = "USD")]
    currency: String,
    /// The sum of the lines.
    #[schema(example = "495.00")]
    subtotal: String,
    /// The sum of the taxes computable now (built-in rates).
    #[schema(example = "0.00")]
    tax_total: String,
    /// Subtotal plus taxes.
    #[schema(example = "495.00")]
    total: String,
    /// Credit of the account it would use.
    #[schema(example = "0.00")]
    credit_applied: String,
    /// Credit it would give the account.
    #[schema(example = "0.00")]
    credit_added: String,
    /// What the customer would owe.
    #[schema(example = "495.00")]
    amount_due: String,
    /// The plan's purchase order number.
    #[schema(example = "PO-5521")]
    po_number: Option<String>,
    /// Its lines.
    lines: Vec<InvoiceLine>,
}

impl UpcomingInvoice {
    fn new(account: AccountId, i: &NewInvoice) -> UpcomingInvoice {
        let c = i.currency;
        UpcomingInvoice {
            account_id: account.0,
            plan_id: i.plan_id.map(|p| p.0),
            invoice_status: i.status.code(),
            invoice_date: day(i.invoice_date),
            due_date: day(i.due_date),
            currency: c.code().to_owned(),
            subtotal: money(i.subtotal, c),
            tax_total: money(i.tax_total, c),
            total: money(i.total, c),
            credit_applied: money(i.credit_applied, c),
            credit_added: money(i.credit_added, c),
            amount_due: money(i.amount_due, c),
            po_number: i.po_number.clone(),
            lines: i
                .lines
                .iter()
                .map(|l| InvoiceLine::new(l, c, false))
                .collect(),
        }
    }
}

/// Filters of the list of invoices.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "a schema: it checks the query; the door's parser reads the values"
)]
pub struct InvoiceFilters {
    /// Only invoices of this account.
    #[param(minimum = 1)]
    account_id: Option<i64>,
    /// Only invoices of the account with this ExtID.
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    account_ext_id: Option<String>,
    /// Only invoices of this plan.
    #[param(minimum = 1)]
    plan_id: Option<i64>,
    /// Only invoices in these statuses, comma-separated: 1 Draft, 2 Pending Tax,
    /// 3 Posted, 4 Paid, 5 Cancelled.
    #[param(pattern = "^[1-5](,[1-5])*$", example = "3,4")]
    invoice_status: Option<String>,
    /// Only invoices dated on or after this day.
    #[param(format = Date, example = "2026-01-01")]
    invoice_date_from: Option<String>,
    /// Only invoices dated on or before this day.
    #[param(format = Date, example = "2026-12-31")]
    invoice_date_to: Option<String>,
}

/// A get's options.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "a schema: it checks the query; the door's parser reads the values"
)]
pub struct InvoiceGetOptions {
    /// Extras, comma-separated: `lines` adds the invoice's lines (the other extras of
    /// lists, `total_count` and `history`, are taken and change nothing here).
    #[param(
        pattern = "^(total_count|lines|history)(,(total_count|lines|history))*$",
        example = "lines"
    )]
    #[serde(default, deserialize_with = "super::call::extras")]
    include: Option<String>,
}

/// Changes to an invoice's own fields (its status changes through post, pay and cancel).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the door's parser reads the values"
)]
pub struct InvoiceChanges {
    /// A new due date.
    #[serde(default)]
    #[schema(example = "2026-03-15", format = Date)]
    due_date: String,
    /// The purchase order number; `null` clears it.
    #[serde(default)]
    #[schema(example = "PO-5521", max_length = 255, pattern = r"^[^\u0000]*$")]
    po_number: Option<String>,
    /// A note; `null` clears it.
    #[serde(default)]
    #[schema(example = "Thank you", max_length = 4000, pattern = r"^[^\u0000]*$")]
    memo: Option<String>,
    /// The payment's reference; `null` clears it.
    #[serde(default)]
    #[schema(example = "WIRE-8812", max_length = 255, pattern = r"^[^\u0000]*$")]
    payment_reference: Option<String>,
}

/// A payment.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the door's parser reads the values"
)]
pub struct InvoicePayment {
    /// The day it was paid (default: today).
    #[serde(default)]
    #[schema(example = "2026-02-20", format = Date)]
    paid_date: String,
    /// The payment's reference.
    #[serde(default)]
    #[schema(example = "WIRE-8812", max_length = 255, pattern = r"^[^\u0000]*$")]
    payment_reference: Option<String>,
}

/// A cancel of an invoice.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the door's parser reads the values"
)]
pub struct InvoiceCancel {
    /// Why.
    #[serde(default)]
    #[schema(example = "Billed twice", max_length = 4000, pattern = r"^[^\u0000]*$")]
    cancel_reason: Option<String>,
    /// Bill again, in the next bill run, what this invoice billed.
    #[serde(default)]
    #[schema(example = false)]
    rebill: bool,
}

/// One tax a tax service computed for a line.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the door's parser reads the values"
)]
pub struct TaxInput {
    /// What the tax is.
    #[schema(
        example = "CA State Tax",
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    description: String,
    /// The amount, a decimal string with at most 5 decimals.
    #[schema(example = "7.25", pattern = r"^-?[0-9]{1,12}(\.[0-9]{1,5})?$")]
    amount: String,
}

/// A line's taxes from a tax service.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the door's parser reads the values"
)]
pub struct LineTaxesInput {
    /// The invoice line's ID.
    #[schema(example = 90211, minimum = 1)]
    id: i64,
    /// The tax code used, recorded on the line.
    #[serde(default)]
    #[schema(example = "SW054000", max_length = 255, pattern = r"^[^\u0000]*$")]
    tax_code: Option<String>,
    /// Its taxes (none: not taxed).
    #[serde(default)]
    taxes: Vec<TaxInput>,
}

/// Taxes from a tax service for the lines of an invoice waiting in Pending Tax.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the door's parser reads the values"
)]
pub struct InvoiceTaxes {
    /// One entry per line of the invoice.
    items: Vec<LineTaxesInput>,
}

/// A line of an invoice waiting in Pending Tax, with what a tax service needs.
#[derive(Serialize, ToSchema)]
pub struct PendingTaxLine {
    /// The invoice.
    #[schema(example = 7001)]
    invoice_id: i64,
    /// The line.
    #[schema(example = 90211)]
    line_id: i64,
    /// The invoice's date.
    #[schema(example = "2026-02-01")]
    invoice_date: String,
    /// ISO 4217 currency.
    #[schema(example = "USD")]
    currency: String,
    /// The account billed.
    #[schema(example = 1042)]
    account_id: i64,
    /// The account's ExtID.
    #[schema(example = "CRM-1042")]
    account_ext_id: String,
    /// The account's name.
    #[schema(example = "Acme Corp")]
    account_name: String,
    /// Street address.
    #[schema(example = "1 Market St")]
    address: Option<String>,
    /// City.
    #[schema(example = "San Francisco")]
    city: Option<String>,
    /// State or region.
    #[schema(example = "CA")]
    state: Option<String>,
    /// Postal code.
    #[schema(example = "94105")]
    zip: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    #[schema(example = "US")]
    country: Option<String>,
    /// The exemption certificate's number.
    #[schema(example = "EX-1234")]
    tax_exemption_number: Option<String>,
    /// The line's product code.
    #[schema(example = "PRO-SEAT")]
    product_code: String,
    /// The line's description.
    #[schema(example = "Pro seats")]
    description: String,
    /// The line's tax code.
    #[schema(example = "SW054000")]
    tax_code: Option<String>,
    /// Quantity (decimal string).
    #[schema(example = "10")]
    quantity: String,
    /// The line's amount.
    #[schema(example = "495.00")]
    amount: String,
}

impl From<&dynabill_app::taxes::PendingTaxLine> for PendingTaxLine {
    fn from(row: &dynabill_app::taxes::PendingTaxLine) -> Self {
        let f = &row.account.fields;
        PendingTaxLine {
            invoice_id: row.invoice.id.0,
            line_id: row.line.id,
            invoice_date: day(row.invoice.invoice_date),
            currency: row.invoice.currency.code().to_owned(),
            account_id: row.account.id.0,
            account_ext_id: f.ext_id.clone(),
            account_name: f.name.clone(),
            address: f.address.clone(),
            city: f.city.clone(),
            state: f.state.clone(),
            zip: f.zip.clone(),
            country: f.country.map(|c| c.alpha2().to_owned()),
            tax_exemption_number: f.tax_exemption_number.clone(),
            product_code: row.line.product_code.clone(),
            description: row.line.description.clone(),
            tax_code: row.line.tax_code.clone(),
            quantity: decimal(row.line.quantity),
            amount: money(row.line.amount, row.invoice.currency),
        }
    }
}

/// Filters of the lines awaiting tax.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "a schema: it checks the query; the door's parser reads the values"
)]
pub struct PendingFilters {
    /// Only lines of this invoice.
    #[param(minimum = 1)]
    invoice_id: Option<i64>,
}

/// List invoices
#[utoipa::path(get, path = "/v1/invoices", tag = "Invoices",
    params(InvoiceFilters, Paging),
    responses((status = 200, description = "A page of invoices", body = List<Invoice>)))]
pub async fn list(call: Call) -> Response {
    call.read(async |call| {
        let p = call.query::<InvoiceFilters>(true)?;
        let (filter, scope) = op::filter(&p, &call.tenant)?;
        let page = scope.page(&p)?;
        let with_lines = includes(&p, "lines");
        let found = call
            .app
            .list_invoices(&call.tenant, &filter, page, with_lines)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&List::new(&found, &scope, &p, |i| {
            Invoice::new(i, with_lines)
        })))
    })
    .await
}

async fn invoice_reply(call: &Call, id: InvoiceId, with_lines: bool) -> Outcome {
    let invoice = call
        .app
        .get_invoice(&call.tenant, id)
        .await
        .map_err(|e| call.fail(e))?;
    Ok(Reply::ok(&Invoice::new(&invoice, with_lines)))
}

/// Get an invoice
#[utoipa::path(get, path = "/v1/invoices/{id}", tag = "Invoices",
    params(("id" = i64, Path, description = "The invoice's ID", minimum = 1), InvoiceGetOptions),
    responses((status = 200, description = "The invoice", body = Invoice)))]
pub async fn get(call: Call, Path(id): Path<String>) -> Response {
    call.read(async |call| {
        let p = call.query::<InvoiceGetOptions>(false)?;
        invoice_reply(call, path_id(&id, "invoice")?, includes(&p, "lines")).await
    })
    .await
}

/// A read that takes no query parameter.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoQuery {}

/// An invoice document (PDF).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct InvoicePdf(());

/// Get an invoice as PDF
///
/// The invoice drawn as a document (A4 by default; `serve --invoice-template`
/// changes its words and looks): seller and buyer, number and dates, the lines
/// with their service periods and taxes, credit applied and the amount due.
/// The same invoice gives the same bytes.
#[utoipa::path(get, path = "/v1/invoices/{id}/pdf", tag = "Invoices",
    params(("id" = i64, Path, description = "The invoice's ID", minimum = 1)),
    responses((status = 200, description = "The invoice as a PDF document",
        content_type = "application/pdf", body = InvoicePdf)))]
pub async fn pdf(
    axum::extract::State(state): axum::extract::State<crate::ServerState>,
    call: Call,
    Path(id): Path<String>,
) -> Response {
    let drawn = async {
        call.query::<NoQuery>(false)?;
        let id: InvoiceId = path_id(&id, "invoice")?;
        let invoice = call
            .app
            .get_invoice(&call.tenant, id)
            .await
            .map_err(|e| call.fail(e))?;
        let account = call
            .app
            .get_account(&call.tenant, &RecordKey::Id(invoice.account_id), true)
            .await
            .map_err(|e| call.fail(e))?;
        Ok::<_, DoorError>(crate::pdf::response(
            &state.invoice_template,
            &call.tenant,
            &account,
            &invoice,
        ))
    };
    match drawn.await {
        Ok(response) => response,
        Err(e) => super::problem_response(&e, &call.request_id),
    }
}

/// The handler of a change of the invoice in the path: checks the body against
/// `B`, makes the change, answers the invoice (with its lines) as it is after.
async fn change<B: serde::de::DeserializeOwned>(
    call: Call,
    id: String,
    body: Body,
    act: impl AsyncFnOnce(&Call, InvoiceId, crate::params::Params) -> Result<(), DoorError>,
) -> Response {
    call.write::<B>(body, async |call, p| {
        let id: InvoiceId = path_id(&id, "invoice")?;
        act(call, id, p).await?;
        invoice_reply(call, id, true).await
    })
    .await
}

async fn update_with(call: &Call, id: InvoiceId, update: InvoiceUpdate) -> Result<(), DoorError> {
    call.app
        .update_invoice(&call.tenant, id, update)
        .await
        .map(drop)
        .map_err(|e| call.fail(e))
}

/// Update an invoice
#[utoipa::path(patch, path = "/v1/invoices/{id}", tag = "Invoices",
    params(("id" = i64, Path, description = "The invoice's ID", minimum = 1)),
    request_body = Option<InvoiceChanges>,
    responses((status = 200, description = "The invoice as changed, with its lines", body = Invoice)))]
pub async fn update(call: Call, Path(id): Path<String>, body: Body) -> Response {
    change::<InvoiceChanges>(call, id, body, async |call, id, p| {
        update_with(call, id, op::update_args(&p)?).await
    })
    .await
}

/// Post an invoice
///
/// A Draft leaves Draft: it gets its number, and its taxes when the tenant's tax
/// mode computes them (else it waits in Pending Tax).
#[utoipa::path(post, path = "/v1/invoices/{id}/post", tag = "Invoices",
    params(("id" = i64, Path, description = "The invoice's ID", minimum = 1)),
    responses((status = 200, description = "The invoice posted, with its lines", body = Invoice)))]
pub async fn post(call: Call, Path(id): Path<String>, body: Body) -> Response {
    change::<Empty>(call, id, body, async |call, id, _| {
        let update = InvoiceUpdate {
            status: Some(InvoiceStatus::Posted),
            ..InvoiceUpdate::default()
        };
        update_with(call, id, update).await
    })
    .await
}

/// Mark an invoice paid
#[utoipa::path(post, path = "/v1/invoices/{id}/pay", tag = "Invoices",
    params(("id" = i64, Path, description = "The invoice's ID", minimum = 1)),
    request_body = Option<InvoicePayment>,
    responses((status = 200, description = "The invoice paid, with its lines", body = Invoice)))]
pub async fn pay(call: Call, Path(id): Path<String>, body: Body) -> Response {
    change::<InvoicePayment>(call, id, body, async |call, id, p| {
        let update = InvoiceUpdate {
            status: Some(InvoiceStatus::Paid),
            ..op::update_args(&p)?
        };
        update_with(call, id, update).await
    })
    .await
}

/// Cancel an invoice
///
/// With `rebill`, the next bill run bills again what this invoice billed.
#[utoipa::path(post, path = "/v1/invoices/{id}/cancel", tag = "Invoices",
    params(("id" = i64, Path, description = "The invoice's ID", minimum = 1)),
    request_body = Option<InvoiceCancel>,
    responses((status = 200, description = "The invoice cancelled, with its lines", body = Invoice)))]
pub async fn cancel(call: Call, Path(id): Path<String>, body: Body) -> Response {
    change::<InvoiceCancel>(call, id, body, async |call, id, p| {
        let (reason, rebill) = op::cancel_args(&p)?;
        call.app
            .cancel_invoice(&call.tenant, id, reason, rebill)
            .await
            .map(drop)
            .map_err(|e| call.fail(e))
    })
    .await
}

/// Record an invoice's taxes from a tax service
///
/// For an invoice in Pending Tax (the external tax mode): one entry per line;
/// the invoice is then posted.
#[utoipa::path(post, path = "/v1/invoices/{id}/taxes", tag = "Taxes",
    params(("id" = i64, Path, description = "The invoice's ID", minimum = 1)),
    request_body = InvoiceTaxes,
    responses((status = 200, description = "The invoice taxed and posted, with its lines", body = Invoice)))]
pub async fn taxes(call: Call, Path(id): Path<String>, body: Body) -> Response {
    change::<InvoiceTaxes>(call, id, body, async |call, id, p| {
        call.app
            .update_invoice_tax(&call.tenant, id, tax_op::items(&p)?)
            .await
            .map(drop)
            .map_err(|e| call.fail(e))
    })
    .await
}

/// List the lines awaiting tax
#[utoipa::path(get, path = "/v1/tax/pending-lines", tag = "Taxes",
    params(PendingFilters, Paging),
    responses((status = 200, description = "A page of lines of invoices in Pending Tax", body = List<PendingTaxLine>)))]
pub async fn pending_lines(call: Call) -> Response {
    call.read(async |call| {
        let mut p = call.query::<PendingFilters>(true)?;
        if let Some(invoice) = p.get("InvoiceID").cloned() {
            p.set("ID", invoice);
        }
        let (invoice, scope) = tax_op::pending_scope(&p, &call.tenant)?;
        let page = scope.page(&p)?;
        let found = call
            .app
            .pending_tax_lines(&call.tenant, invoice, page)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&List::new(&found, &scope, &p, |line| {
            PendingTaxLine::from(line)
        })))
    })
    .await
}

/// The day of a preview or a bill run.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "a schema: it checks the query; the door's parser reads the values"
)]
pub struct PreviewOptions {
    /// The bill run's date (default: today in the tenant's time zone).
    #[param(format = Date, example = "2026-02-01")]
    date: Option<String>,
}

/// What a bill run did (or, dry, would do).
#[derive(Serialize, ToSchema)]
pub struct BillRun {
    /// The run's date.
    #[schema(example = "2026-02-01")]
    date: String,
    /// Whether nothing was written.
    #[schema(example = false)]
    dry_run: bool,
    /// Accounts looked at by this request's part of the run.
    #[schema(example = 120)]
    accounts_seen: u64,
    /// Accounts that got (or would get) an invoice.
    #[schema(example = 80)]
    accounts_billed: u64,
    /// Invoices created (or that would be).
    #[schema(example = 80)]
    invoices: u64,
    /// Their lines.
    #[schema(example = 240)]
    lines: u64,
    /// Batches of accounts finished for another process whose lease expired.
    #[schema(example = 0)]
    batches_taken_over: u64,
    /// The sum of the invoices' totals, per currency.
    #[schema(example = json!({"USD": "39600.00"}))]
    totals: BTreeMap<String, String>,
    /// With `dry_run`: the invoices the run would create.
    #[serde(skip_serializing_if = "Option::is_none")]
    upcoming_invoices: Option<Vec<UpcomingInvoice>>,
}

/// A bill run to start.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the door's parser reads the values"
)]
pub struct NewBillRun {
    /// The run's date (default: today in the tenant's time zone).
    #[serde(default)]
    #[schema(example = "2026-02-01", format = Date)]
    date: String,
    /// Compute what the run would create, and write nothing.
    #[serde(default)]
    #[schema(example = true)]
    dry_run: bool,
}

/// The `date` of a call, or the tenant's today.
fn run_date(call: &Call, p: &crate::params::Params) -> Result<jiff::civil::Date, DoorError> {
    Ok(p.required_date("Date")?
        .unwrap_or_else(|| call.app.today(&call.tenant)))
}

/// Preview an account's upcoming invoices
///
/// The invoices a bill run for `date` would create for this account now, with
/// their lines, the taxes computable now and the credit they would use. Writes
/// nothing; if nothing changes before it, the bill run creates exactly these.
#[utoipa::path(get, path = "/v1/accounts/{id}/upcoming-invoices", tag = "Billing",
    params(("id" = i64, Path, description = "The account's ID", minimum = 1), PreviewOptions),
    responses((status = 200, description = "The invoices the bill run would create", body = Vec<UpcomingInvoice>)))]
pub async fn upcoming(call: Call, Path(id): Path<String>) -> Response {
    call.read(async |call| {
        let p = call.query::<PreviewOptions>(false)?;
        let account: AccountId = path_id(&id, "account")?;
        let date = run_date(call, &p)?;
        let invoices = call
            .app
            .upcoming_invoices(&call.tenant, &RecordKey::Id(account), date)
            .await
            .map_err(|e| call.fail(e))?;
        let shaped: Vec<UpcomingInvoice> = invoices
            .iter()
            .map(|i| UpcomingInvoice::new(account, i))
            .collect();
        Ok(Reply::ok(&shaped))
    })
    .await
}

/// Run a bill run
///
/// Bills every billable account of the tenant for `date`, as `dynabill
/// bill-run` does (joining the run other processes are running for that date,
/// if any). With `dry_run`, computes the invoices it would create and writes
/// nothing.
#[utoipa::path(post, path = "/v1/bill-runs", tag = "Billing",
    request_body = Option<NewBillRun>,
    responses((status = 200, description = "What the run did, or would do", body = BillRun)))]
pub async fn bill_run(call: Call, body: Body) -> Response {
    call.write::<NewBillRun>(body, async |call, p| {
        let date = run_date(call, &p)?;
        let dry_run = p.flag("DryRun")?.unwrap_or(false);
        let mut upcoming = Vec::new();
        let summary = if dry_run {
            call.app
                .dry_run_each(&call.tenant, date, &|_| {}, &mut |bill| {
                    upcoming.extend(
                        bill.invoices
                            .iter()
                            .map(|i| UpcomingInvoice::new(bill.account, i)),
                    );
                })
                .await
        } else {
            call.app.bill_run(&call.tenant, date, &|_| {}).await
        }
        .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&BillRun {
            date: day(date),
            dry_run,
            accounts_seen: summary.accounts_seen,
            accounts_billed: summary.accounts_billed,
            invoices: summary.invoices,
            lines: summary.lines,
            batches_taken_over: summary.batches_taken_over,
            totals: summary
                .totals
                .iter()
                .map(|(code, total)| {
                    let shown = code
                        .parse::<Currency>()
                        .map_or_else(|_| total.to_string(), |c| money(*total, c));
                    (code.clone(), shown)
                })
                .collect(),
            upcoming_invoices: dry_run.then_some(upcoming),
        }))
    })
    .await
}
