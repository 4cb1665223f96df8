//! The external tax workflow on invoices (entity 119): lines awaiting taxation
//! (1007) and a tax service's answer (1008), in DealHub's body shape.

use dynabill_app::App;
use dynabill_app::model::Tenant;
use dynabill_app::taxes::{EXTERNAL_TAX_SCALE, ExternalLineTaxes};
use dynabill_core::domain::InvoiceId;
use rust_decimal::Decimal;
use serde_json::Value;

use super::page_reply;
use crate::cursor::ListScope;
use crate::envelope::{self, Reply};
use crate::error::{DoorError, from_app};
use crate::fields::{ID, MAX_TEXT};
use crate::params::Params;
use crate::wire::PendingTaxLineOut;

pub async fn pending_lines(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let (invoice, scope) = pending_scope(p, tenant)?;
    let page = scope.page(p)?;
    let found = app
        .pending_tax_lines(tenant, invoice, page)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(page_reply(&found, &scope, PendingTaxLineOut::from))
}

/// The invoice a list of lines awaiting tax is limited to, and the list it names.
pub(crate) fn pending_scope(
    p: &Params,
    tenant: &Tenant,
) -> Result<(Option<InvoiceId>, ListScope), DoorError> {
    let invoice = p.id(ID)?;
    // Its own list (1007): a cursor of 3/119 does not page it.
    Ok((invoice, ListScope::new(tenant, 1007).with(ID, invoice)))
}

/// Reads a JSON value as an integer ID (a number or a numeric string).
fn as_id(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Reads a tax amount: an exact decimal with at most 5 decimal places.
fn tax_amount(value: &Value, at: &str) -> Result<Decimal, DoorError> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return Err(DoorError::invalid(at, "must be a number")),
    };
    let amount = Decimal::from_str_exact(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| DoorError::invalid(at, format!("must be a decimal number, got {text:?}")))?
        .normalize();
    if amount.scale() > EXTERNAL_TAX_SCALE {
        return Err(DoorError::invalid(
            at,
            format!("must have at most {EXTERNAL_TAX_SCALE} decimal places, got {text}"),
        ));
    }
    if amount.abs() >= Decimal::from(1_000_000_000_000i64) {
        return Err(DoorError::invalid(at, "must be below 10^12 in magnitude"));
    }
    Ok(amount)
}

/// The `items` of a 1008 body.
pub(crate) fn items(p: &Params) -> Result<Vec<ExternalLineTaxes>, DoorError> {
    let Some(items) = p.get("items").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let items = items
        .as_array()
        .ok_or_else(|| DoorError::invalid("items", "must be an array"))?;
    items
        .iter()
        .enumerate()
        .map(|(n, item)| {
            let at = |field: &str| format!("items[{n}].{field}");
            let item = item
                .as_object()
                .ok_or_else(|| DoorError::invalid(&format!("items[{n}]"), "must be an object"))?;
            let get = |name: &str| {
                item.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            };
            let line_id = match get("id") {
                None | Some(Value::Null) => {
                    return Err(DoorError::missing(&at("id"), "(the invoice line's ID)"));
                }
                Some(v) => as_id(v)
                    .ok_or_else(|| DoorError::invalid(&at("id"), "must be an invoice line ID"))?,
            };
            let tax_code = match get("tax_code") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(Value::String(s)) if s.chars().count() <= MAX_TEXT => Some(s.clone()),
                Some(_) => {
                    return Err(DoorError::invalid(
                        &at("tax_code"),
                        format!("must be a string of at most {MAX_TEXT} characters"),
                    ));
                }
            };
            let taxes = match get("taxes") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(taxes)) => taxes
                    .iter()
                    .enumerate()
                    .map(|(k, tax)| {
                        let at = |field: &str| format!("items[{n}].taxes[{k}].{field}");
                        let tax = tax.as_object().ok_or_else(|| {
                            DoorError::invalid(
                                &format!("items[{n}].taxes[{k}]"),
                                "must be an object",
                            )
                        })?;
                        let get = |name: &str| {
                            tax.iter()
                                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                                .map(|(_, v)| v)
                        };
                        let description = match get("description") {
                            Some(Value::String(s))
                                if !s.trim().is_empty() && s.chars().count() <= MAX_TEXT =>
                            {
                                s.clone()
                            }
                            None | Some(Value::Null) => {
                                return Err(DoorError::missing(&at("description"), ""));
                            }
                            Some(_) => {
                                return Err(DoorError::invalid(
                                    &at("description"),
                                    "must be a non-empty string",
                                ));
                            }
                        };
                        let amount = match get("amount") {
                            None | Some(Value::Null) => {
                                return Err(DoorError::missing(&at("amount"), ""));
                            }
                            Some(v) => tax_amount(v, &at("amount"))?,
                        };
                        Ok((description, amount))
                    })
                    .collect::<Result<Vec<_>, DoorError>>()?,
                Some(_) => return Err(DoorError::invalid(&at("taxes"), "must be an array")),
            };
            Ok(ExternalLineTaxes {
                line_id,
                tax_code,
                taxes,
            })
        })
        .collect()
}

pub async fn update_tax(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let id = match p.get("id") {
        None | Some(Value::Null) => return Err(DoorError::missing("id", "(the invoice's ID)")),
        Some(v) => as_id(v)
            .map(InvoiceId)
            .ok_or_else(|| DoorError::invalid("id", "must be an invoice ID"))?,
    };
    let lines = items(p)?;
    let invoice = app
        .update_invoice_tax(tenant, id, lines)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(envelope::written_record(&invoice.id.to_string(), None))
}
