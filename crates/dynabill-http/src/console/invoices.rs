//! The invoice list, the invoice page and its actions (post, mark paid,
//! cancel with or without rebill, download as PDF).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dynabill_app::model::{Invoice, InvoiceFilter, InvoiceUpdate, PageRequest, RecordKey};
use dynabill_core::domain::{AccountId, InvoiceId, InvoiceStatus};
use jiff::civil::Date;
use maud::{Markup, html};
use serde::Deserialize;

use super::session::Console;
use super::views::{self, badge, csrf, money, number, or_dash, words};
use super::{Form, app_failure, door_failure, failure, ok, see_other};
use crate::ops::invoices::{cancel_args, update_args};

const INVOICES_PER_PAGE: u32 = 50;

#[derive(Deserialize, Default)]
pub struct InvoicesQuery {
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    account: Option<String>,
    after: Option<i64>,
    /// The total the first page counted (a later page shows it instead of
    /// counting a date range's invoices again).
    total: Option<i64>,
}

/// A list's filter from its query; an unreadable value is named.
fn filter(query: &InvoicesQuery) -> Result<InvoiceFilter, String> {
    let mut filter = InvoiceFilter::default();
    if let Some(status) = query.status.as_deref().filter(|s| !s.is_empty()) {
        let code = status
            .parse::<i64>()
            .ok()
            .and_then(InvoiceStatus::from_code);
        filter.statuses =
            vec![code.ok_or_else(|| format!("status {status:?} is not an invoice status"))?];
    }
    let date = |value: &Option<String>, name: &str| -> Result<Option<Date>, String> {
        value
            .as_deref()
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<Date>()
                    .map_err(|_| format!("{name} must be a date (YYYY-MM-DD)"))
            })
            .transpose()
    };
    filter.date_from = date(&query.from, "from")?;
    filter.date_to = date(&query.to, "to")?;
    if let Some(account) = query.account.as_deref().filter(|a| !a.is_empty()) {
        match account.parse::<i64>() {
            Ok(id) => filter.account_id = Some(AccountId(id)),
            Err(_) => filter.account_ext_id = Some(account.to_owned()),
        }
    }
    Ok(filter)
}

pub async fn list(console: Console, Query(query): Query<InvoicesQuery>) -> Response {
    let found = match filter(&query) {
        Ok(filter) => {
            let page = PageRequest {
                size: INVOICES_PER_PAGE,
                after: query.after,
                counted: query.after.and(query.total),
            };
            console
                .app
                .list_invoices(&console.tenant, &filter, page, false)
                .await
                .map_err(|e| super::said(&crate::error::from_app(e, &console.request_id)))
        }
        Err(problem) => Err(problem),
    };
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let status = value(&query.status);
    let body = html! {
        form.row method="get" action="/console/invoices" {
            label { "Status"
                select name="status" {
                    option value="" { "Any" }
                    @for s in InvoiceStatus::ALL {
                        option value=(s.code()) selected[status == s.code().to_string()] { (words(*s)) }
                    }
                }
            }
            label { "From" input type="date" name="from" value=(value(&query.from)); }
            label { "To" input type="date" name="to" value=(value(&query.to)); }
            label { "Account (ID or ExtID)" input name="account" value=(value(&query.account)); }
            button type="submit" { "Filter" }
        }
        @match &found {
            Ok(page) => {
                p.muted { (page.total) " invoices" }
                (table(&page.items))
                (views::next_page("/console/invoices", &[
                    ("status", status.clone()), ("from", value(&query.from)),
                    ("to", value(&query.to)), ("account", value(&query.account)),
                    ("total", page.total.to_string()),
                ], page.next_after))
            }
            Err(problem) => { (views::problem(Some(problem))) }
        }
    };
    ok(views::page(&console, "Invoices", "/console/invoices", body))
}

/// Invoices as a table, each linking to its page.
pub fn table(invoices: &[Invoice]) -> Markup {
    html! {
        div.scroll { table {
            thead { tr {
                th { "Number" } th { "Account" } th { "Date" } th { "Due" } th { "Status" }
                th.num { "Total" } th.num { "Amount due" }
            } }
            tbody {
                @for i in invoices {
                    tr {
                        td { a href=(format!("/console/invoices/{}", i.id)) { (i.number.as_deref().unwrap_or("(draft)")) } }
                        td { a href=(format!("/console/accounts/{}", i.account_id)) { (i.account_ext_id) } }
                        td { (i.invoice_date) }
                        td { (i.due_date) }
                        td { (badge(i.status)) }
                        td.num { (money(i.total, i.currency)) }
                        td.num { (money(i.amount_due, i.currency)) }
                    }
                }
                @if invoices.is_empty() { tr { td colspan="7" { span.muted { "No invoices." } } } }
            }
        } }
    }
}

fn invoice_id(id: &str) -> Option<InvoiceId> {
    id.parse::<i64>().ok().map(InvoiceId)
}

pub async fn show(console: Console, Path(id): Path<String>) -> Response {
    let Some(id) = invoice_id(&id) else {
        return failure(StatusCode::NOT_FOUND, "No such invoice.");
    };
    match console.app.get_invoice(&console.tenant, id).await {
        Ok(invoice) => ok(invoice_page(&console, &invoice, None)),
        Err(e) => app_failure(e),
    }
}

fn invoice_page(console: &Console, i: &Invoice, problem: Option<&str>) -> Markup {
    let c = i.currency;
    let today = console.app.today(&console.tenant);
    let title = format!("Invoice {}", i.number.as_deref().unwrap_or("(draft)"));
    let body = html! {
        (views::problem(problem))
        div.split {
            section.card {
                dl.fields {
                    dt { "Status" } dd { (badge(i.status)) @if i.status == InvoiceStatus::Posted && i.due_date < today { " " span.badge.billing-issues { "overdue" } } }
                    dt { "Account" } dd { a href=(format!("/console/accounts/{}", i.account_id)) { (i.account_ext_id) } }
                    dt { "Invoice date" } dd { (i.invoice_date) }
                    dt { "Due date" } dd { (i.due_date) }
                    dt { "Currency" } dd { (c.code()) }
                    dt { "PO number" } dd { (or_dash(i.po_number.as_deref())) }
                    dt { "Memo" } dd { (or_dash(i.memo.as_deref())) }
                    @if let Some(paid) = i.paid_date { dt { "Paid" } dd { (paid) " " (or_dash(i.payment_reference.as_deref())) } }
                    @if let Some(reason) = &i.cancel_reason { dt { "Cancel reason" } dd { (reason) } }
                    @if let Some(error) = &i.tax_error { dt { "Tax error" } dd { (error) } }
                }
            }
            section.card {
                dl.fields {
                    dt { "Subtotal" } dd.num { (money(i.subtotal, c)) }
                    dt { "Tax" } dd.num { (money(i.tax_total, c)) }
                    dt { "Total" } dd.num { strong { (money(i.total, c)) } }
                    dt { "Credit applied" } dd.num { (money(i.credit_applied, c)) }
                    @if !i.credit_added.is_zero() { dt { "Credit added" } dd.num { (money(i.credit_added, c)) } }
                    dt { "Amount due" } dd.num { strong { (money(i.amount_due, c)) } }
                }
            }
        }
        h2 { "Lines" }
        div.scroll { table {
            thead { tr {
                th { "Description" } th { "Type" } th { "Service period" } th.num { "Quantity" }
                th.num { "Unit price" } th.num { "Amount" } th { "Taxes" }
            } }
            tbody {
                @for line in &i.lines {
                    tr {
                        td { (line.description) br; span.muted { (line.product_code) " · " (line.item_ext_id) } }
                        td { (words(line.line_type)) }
                        td { (line.service_start) " – " (line.service_end) }
                        td.num { (number(line.quantity)) }
                        td.num { (money(line.unit_price, c)) }
                        td.num { (money(line.amount, c)) }
                        td {
                            @for tax in &line.taxes {
                                (tax.description)
                                @if let Some(j) = &tax.jurisdiction { " (" (j) ")" }
                                ": " (money(tax.amount, c)) br;
                            }
                        }
                    }
                }
            }
        } }
        h2 { "Actions" }
        div.actions {
            a.button.secondary href=(format!("/console/invoices/{}/pdf", i.id)) { "Download PDF" }
            @if i.status == InvoiceStatus::Draft {
                form.inline method="post" action=(format!("/console/invoices/{}/post", i.id)) {
                    (csrf(console)) button type="submit" { "Post" }
                }
            }
        }
        @if i.status == InvoiceStatus::Posted {
            form.row method="post" action=(format!("/console/invoices/{}/pay", i.id)) {
                (csrf(console))
                label { "Paid on" input type="date" name="PaidDate" value=(today) required; }
                label { "Payment reference" input name="PaymentReference"; }
                button type="submit" { "Mark paid" }
            }
        }
        @if i.status.is_cancellable() {
            form.row method="post" action=(format!("/console/invoices/{}/cancel", i.id)) {
                (csrf(console))
                label { "Reason" input name="CancelReason"; }
                label.check { input type="checkbox" name="Rebill" value="1"; "Rebill what it billed" }
                button.danger type="submit" { "Cancel invoice" }
            }
        }
    };
    views::page(console, &title, "/console/invoices", body)
}

/// An invoice action: `post`, `pay` or `cancel`; back to the invoice page.
pub async fn act(
    console: Console,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = match Form::read(&console, &body) {
        Ok(form) => form,
        Err(refused) => return refused.into_response(),
    };
    let Some(id) = invoice_id(&id) else {
        return failure(StatusCode::NOT_FOUND, "No such invoice.");
    };
    let p = form.params();
    let update = |status: InvoiceStatus, paid: Option<InvoiceUpdate>| {
        let paid = paid.unwrap_or_default();
        InvoiceUpdate {
            status: Some(status),
            paid_date: paid.paid_date,
            payment_reference: paid.payment_reference,
            ..InvoiceUpdate::default()
        }
    };
    let (app, tenant) = (&console.app, &console.tenant);
    let done = match action.as_str() {
        "post" => {
            app.update_invoice(tenant, id, update(InvoiceStatus::Posted, None))
                .await
        }
        "pay" => match update_args(&p) {
            Ok(paid) => {
                app.update_invoice(tenant, id, update(InvoiceStatus::Paid, Some(paid)))
                    .await
            }
            Err(e) => return shown_with_problem(&console, id, &super::said(&e)).await,
        },
        "cancel" => match cancel_args(&p) {
            Ok((reason, rebill)) => app.cancel_invoice(tenant, id, reason, rebill).await,
            Err(e) => return shown_with_problem(&console, id, &super::said(&e)).await,
        },
        _ => return failure(StatusCode::NOT_FOUND, "No such invoice action."),
    };
    match done {
        Ok(invoice) => see_other(&format!("/console/invoices/{}", invoice.id)),
        Err(e) => {
            let e = crate::error::from_app(e, &console.request_id);
            if matches!(
                e,
                crate::error::DoorError::Method(crate::codes::MethodError::NotAllowed, _)
                    | crate::error::DoorError::Field { .. }
            ) {
                shown_with_problem(&console, id, &super::said(&e)).await
            } else {
                door_failure(&e)
            }
        }
    }
}

/// The invoice page again, with what went wrong above it (422).
async fn shown_with_problem(console: &Console, id: InvoiceId, problem: &str) -> Response {
    match console.app.get_invoice(&console.tenant, id).await {
        Ok(invoice) => {
            let mut response = ok(invoice_page(console, &invoice, Some(problem)));
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            response
        }
        Err(e) => app_failure(e),
    }
}

/// The invoice as a PDF, rendered as `GET /v1/invoices/{id}/pdf` renders it.
pub async fn pdf(
    State(state): State<crate::ServerState>,
    console: Console,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = invoice_id(&id) else {
        return failure(StatusCode::NOT_FOUND, "No such invoice.");
    };
    let invoice = match console.app.get_invoice(&console.tenant, id).await {
        Ok(invoice) => invoice,
        Err(e) => return app_failure(e),
    };
    let account = match console
        .app
        .get_account(&console.tenant, &RecordKey::Id(invoice.account_id), true)
        .await
    {
        Ok(account) => account,
        Err(e) => return app_failure(e),
    };
    crate::pdf::response(&state.invoice_template, &console.tenant, &account, &invoice)
}
