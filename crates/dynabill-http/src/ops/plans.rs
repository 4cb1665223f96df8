//! Account plans (entity 71): list/get (3), create-or-update (10), delete (11), cancel (14).

use dynabill_app::App;
use dynabill_app::model::{PlanFilter, PlanPatch, RecordKey, Tenant};
use dynabill_core::domain::{AccountId, PlanStatus};
use dynabill_core::money::Currency;

use super::{MAX_RENEWAL_TERM_MONTHS, key, page_reply, record_key, renewal_term, required_key};
use crate::cursor::ListScope;
use crate::envelope::{self, Reply};
use crate::error::{DoorError, from_app};
use crate::fields::{EXT_ID, ID, INCLUDE_DELETED, MAX_LONG_TEXT, MAX_TEXT};
use crate::params::Params;
use crate::wire::PlanOut;

fn account_key(p: &Params) -> Result<Option<RecordKey<AccountId>>, DoorError> {
    key(p, "AccountID", "AccountExtID")
}

pub(crate) fn patch(p: &Params) -> Result<PlanPatch, DoorError> {
    Ok(PlanPatch {
        ext_id: p.text(EXT_ID, MAX_TEXT)?,
        account: account_key(p)?,
        name: p.optional_text("PlanName", MAX_TEXT)?,
        start_date: p.required_date("StartDate")?,
        end_date: p.date("EndDate")?,
        auto_renew: p.flag("AutoRenew")?,
        renewal_term_months: p
            .int_in("RenewalTermMonths", 1..=MAX_RENEWAL_TERM_MONTHS)?
            .map(|m| m as u32),
        billing_day: match p.get("BillingDay") {
            Some(v) if v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty()) => Some(None),
            _ => p.int_in("BillingDay", 1..=31)?.map(|d| Some(d as u8)),
        },
        currency: p
            .parsed("Currency", MAX_TEXT, "an ISO 4217 code such as USD", |s| {
                s.parse::<Currency>().ok()
            })?
            .map(|c| c.ok_or_else(|| DoorError::invalid("Currency", "must not be empty")))
            .transpose()?,
        po_number: p.optional_text("PONumber", MAX_TEXT)?,
        notes: p.optional_text("Notes", MAX_LONG_TEXT)?,
    })
}

/// The filter of a list of plans, and the list it names (for its cursors).
pub(crate) fn filter(p: &Params, tenant: &Tenant) -> Result<(PlanFilter, ListScope), DoorError> {
    let filter = PlanFilter {
        id: p.id(ID)?,
        ext_id: p.text(EXT_ID, MAX_TEXT)?,
        account_id: p.id("AccountID")?,
        account_ext_id: p.text("AccountExtID", MAX_TEXT)?,
        status: p.coded(
            "PlanStatus",
            PlanStatus::from_code,
            "1 (Active), 2 (Cancelled) or 3 (Expired)",
        )?,
        include_deleted: p.flag(INCLUDE_DELETED)?.unwrap_or(false),
    };
    let scope = ListScope::new(tenant, 71)
        .with(ID, filter.id)
        .with(EXT_ID, filter.ext_id.as_deref())
        .with("AccountID", filter.account_id)
        .with("AccountExtID", filter.account_ext_id.as_deref())
        .with("PlanStatus", filter.status.map(|s| s.code()))
        .with(INCLUDE_DELETED, filter.include_deleted.then_some(1));
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
    if let Some(key) = record_key(p)? {
        let plan = app
            .get_plan(tenant, &key, filter.include_deleted)
            .await
            .map_err(|e| from_app(e, request_id))?;
        // A plain get (one key, no other filter): the record is the whole answer.
        let only_key = filter.id.is_some() != filter.ext_id.is_some()
            && filter.account_id.is_none()
            && filter.account_ext_id.is_none()
            && filter.status.is_none()
            && page.after.is_none();
        if only_key {
            return Ok(envelope::page(
                &[PlanOut::new(&plan, app.today(tenant))],
                1,
                None,
            ));
        }
    }
    let found = app
        .list_plans(tenant, &filter, page)
        .await
        .map_err(|e| from_app(e, request_id))?;
    let today = app.today(tenant);
    Ok(page_reply(&found, &scope, |plan| PlanOut::new(plan, today)))
}

pub async fn upsert(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let id = p.id(ID)?;
    let patch = patch(p)?;
    let plan = app
        .upsert_plan(tenant, id, patch)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(envelope::written(&plan.id.to_string(), &plan.fields.ext_id))
}

pub async fn delete(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let key = required_key(p, "to delete a plan")?;
    let plan = app
        .delete_plan(tenant, &key)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(envelope::written(&plan.id.to_string(), &plan.fields.ext_id))
}

pub async fn cancel(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let key = required_key(p, "to cancel a plan")?;
    let (cancel_date, credit) = cancel_args(p)?;
    let plan = app
        .cancel_plan(tenant, &key, cancel_date, credit)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(envelope::written(&plan.id.to_string(), &plan.fields.ext_id))
}

/// A plan cancel's `CancelDate` (none: today) and `CreditMode` (default: credit).
pub(crate) fn cancel_args(p: &Params) -> Result<(Option<jiff::civil::Date>, bool), DoorError> {
    let cancel_date = p.required_date("CancelDate")?;
    let credit = p.flag("CreditMode").map_err(|_| {
        DoorError::invalid("CreditMode", "must be 1 (prorated credit) or 0 (no credit)")
    })?;
    Ok((cancel_date, credit.unwrap_or(true)))
}

/// A plan renewal's new term.
pub(crate) fn renew_args(p: &Params) -> Result<dynabill_app::recurring::Renewal, DoorError> {
    if p.get("UnitPrice").is_some() {
        return Err(DoorError::invalid(
            "UnitPrice",
            "is not taken by a plan renewal (12/71); renew an item (12/110) to give it a new price",
        ));
    }
    let (end_date, term_months) = renewal_term(p)?;
    Ok(dynabill_app::recurring::Renewal {
        end_date,
        term_months,
        unit_price: None,
    })
}

pub async fn renew(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let key = required_key(p, "to renew a plan")?;
    let plan = app
        .renew_plan(tenant, &key, renew_args(p)?)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(envelope::written(&plan.id.to_string(), &plan.fields.ext_id))
}
