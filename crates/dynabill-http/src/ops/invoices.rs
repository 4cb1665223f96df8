//! Invoices (entity 119): list/get (3), update (10), cancel (14). Invoices are made
//! only by bill runs, never by a create call.

use dynabill_app::App;
use dynabill_app::model::{InvoiceFilter, InvoiceUpdate, Tenant};
use dynabill_core::domain::{InvoiceId, InvoiceStatus};

use super::page_reply;
use crate::cursor::ListScope;
use crate::envelope::{self, Reply};
use crate::error::{DoorError, from_app};
use crate::fields::{ID, MAX_LONG_TEXT, MAX_TEXT};
use crate::params::Params;
use crate::wire::InvoiceOut;

const STATUSES: &str = "1 (Draft), 2 (Pending Tax), 3 (Posted), 4 (Paid) or 5 (Cancelled)";

/// `InvoiceStatus`: one code or a comma-separated list.
fn statuses(p: &Params) -> Result<Vec<InvoiceStatus>, DoorError> {
    let name = "InvoiceStatus";
    let Some(value) = p.get(name).filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let text = match value {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        _ => {
            return Err(DoorError::invalid(
                name,
                format!("must be {STATUSES}, or a comma-separated list of them"),
            ));
        }
    };
    text.split(',')
        .map(|code| {
            code.trim()
                .parse::<i64>()
                .ok()
                .and_then(InvoiceStatus::from_code)
                .ok_or_else(|| {
                    DoorError::invalid(
                        name,
                        format!(
                            "must be {STATUSES}, or a comma-separated list of them; got {code:?}"
                        ),
                    )
                })
        })
        .collect()
}

/// The filter of a list of invoices, and the list it names (for its cursors).
pub(crate) fn filter(p: &Params, tenant: &Tenant) -> Result<(InvoiceFilter, ListScope), DoorError> {
    let filter = InvoiceFilter {
        id: p.id(ID)?,
        account_id: p.id("AccountID")?,
        account_ext_id: p.text("AccountExtID", MAX_TEXT)?,
        plan_id: p.id("PlanID")?,
        statuses: statuses(p)?,
        date_from: p.required_date("InvoiceDateFrom")?,
        date_to: p.required_date("InvoiceDateTo")?,
    };
    let statuses: Vec<String> = filter
        .statuses
        .iter()
        .map(|s| s.code().to_string())
        .collect();
    let scope = ListScope::new(tenant, 119)
        .with(ID, filter.id)
        .with("AccountID", filter.account_id)
        .with("AccountExtID", filter.account_ext_id.as_deref())
        .with("PlanID", filter.plan_id)
        .with(
            "InvoiceStatus",
            (!statuses.is_empty()).then(|| statuses.join(",")),
        )
        .with("InvoiceDateFrom", filter.date_from)
        .with("InvoiceDateTo", filter.date_to);
    Ok((filter, scope))
}

pub async fn list(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let (filter, scope) = filter(p, tenant)?;
    let page = scope.page(p)?;
    // A single-invoice get always carries its lines.
    let with_lines = filter.id.is_some() || p.flag("IncludeLines")?.unwrap_or(false);
    if let Some(id) = filter.id {
        app.get_invoice(tenant, id)
            .await
            .map_err(|e| from_app(e, request_id))?;
    }
    let found = app
        .list_invoices(tenant, &filter, page, with_lines)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(page_reply(&found, &scope, |invoice| {
        InvoiceOut::new(invoice, with_lines)
    }))
}

fn required_id(p: &Params, doing: &str) -> Result<InvoiceId, DoorError> {
    p.id(ID)?.ok_or_else(|| DoorError::missing(ID, doing))
}

pub async fn update(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let id = required_id(p, "to update an invoice")?;
    let invoice = app
        .update_invoice(tenant, id, update_args(p)?)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(envelope::written_record(&invoice.id.to_string(), None))
}

/// An invoice update's fields (10/119).
pub(crate) fn update_args(p: &Params) -> Result<InvoiceUpdate, DoorError> {
    Ok(InvoiceUpdate {
        status: p.coded("InvoiceStatus", InvoiceStatus::from_code, STATUSES)?,
        due_date: p.required_date("DueDate")?,
        po_number: p.optional_text("PONumber", MAX_TEXT)?,
        memo: p.optional_text("Memo", MAX_LONG_TEXT)?,
        paid_date: p.required_date("PaidDate")?,
        payment_reference: p.optional_text("PaymentReference", MAX_TEXT)?,
    })
}

/// An invoice cancel's reason and whether to rebill what it billed.
pub(crate) fn cancel_args(p: &Params) -> Result<(Option<String>, bool), DoorError> {
    let reason = p.optional_text("CancelReason", MAX_LONG_TEXT)?.flatten();
    let rebill = p.flag("Rebill")?.unwrap_or(false);
    Ok((reason, rebill))
}

pub async fn cancel(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let id = required_id(p, "to cancel an invoice")?;
    let (reason, rebill) = cancel_args(p)?;
    let invoice = app
        .cancel_invoice(tenant, id, reason, rebill)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(envelope::written_record(&invoice.id.to_string(), None))
}
