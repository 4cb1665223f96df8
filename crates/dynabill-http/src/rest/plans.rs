//! `/v1/plans` and `/v1/accounts/{id}/plans`: list, get (by ID or ExtID),
//! create (under its account), update, delete, renew, cancel.

#![expect(
    unused_qualifications,
    reason = "utoipa's path macro qualifies the parameter types it is given"
)]

use axum::body::Body;
use axum::extract::Path;
use axum::response::Response;
use dynabill_app::model::{self, RecordKey};
use dynabill_core::domain::{AccountId, PlanId};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::call::{Empty, GetOptions, List, Outcome, Paging, path_id};
use super::shapes::{CurrencyCode, bodies, day, stamp};
use super::{Call, Reply};
use crate::fields::INCLUDE_DELETED;
use crate::ops::plans as op;

/// An account plan: a subscription of one account, holding its items.
#[derive(Serialize, ToSchema)]
pub struct Plan {
    /// Assigned by dynabill.
    #[schema(example = 310)]
    id: i64,
    /// Your key for the plan (unique in the tenant, never reused).
    #[schema(example = "SUB-310")]
    ext_id: String,
    /// The account the plan belongs to.
    #[schema(example = 1042)]
    account_id: i64,
    /// The account's ExtID.
    #[schema(example = "CRM-1042")]
    account_ext_id: String,
    /// A name for the plan.
    #[schema(example = "Pro, annual")]
    plan_name: Option<String>,
    /// The first day of the plan.
    #[schema(example = "2026-01-15")]
    start_date: String,
    /// The end of its committed term: the first day past it (terms are half-open,
    /// BILLING.md §1); `null`: evergreen.
    #[schema(example = "2027-01-15")]
    end_date: Option<String>,
    /// Whether the plan renews itself at the end of its term.
    #[schema(example = true)]
    auto_renew: bool,
    /// Months a renewal adds.
    #[schema(example = 12)]
    renewal_term_months: u32,
    /// The day of the month its periods start on (`null`: the start date's day).
    #[schema(example = 1)]
    billing_day: Option<u8>,
    /// ISO 4217 currency.
    #[schema(example = "USD")]
    currency: String,
    /// The customer's purchase order number, printed on invoices.
    #[schema(example = "PO-5521")]
    po_number: Option<String>,
    /// Notes.
    #[schema(example = "Signed by Sam")]
    notes: Option<String>,
    /// 1 Active, 2 Cancelled, 3 Expired (as of today).
    #[schema(example = 1)]
    plan_status: i64,
    /// The day the plan was cancelled from.
    #[schema(example = "2026-06-01")]
    cancel_date: Option<String>,
    /// Whether the plan was deleted.
    #[schema(example = false)]
    deleted: bool,
    /// When it was deleted (RFC 3339, UTC).
    #[schema(example = "2026-03-01T12:00:00.000000Z")]
    deleted_at: Option<String>,
    /// When it was created (RFC 3339, UTC).
    #[schema(example = "2026-01-05T09:30:00.000000Z")]
    created_at: String,
    /// When it last changed (RFC 3339, UTC).
    #[schema(example = "2026-01-05T09:30:00.000000Z")]
    updated_at: String,
}

impl Plan {
    pub(super) fn new(p: &model::Plan, today: Date) -> Plan {
        let f = &p.fields;
        Plan {
            id: p.id.0,
            ext_id: f.ext_id.clone(),
            account_id: p.account_id.0,
            account_ext_id: p.account_ext_id.clone(),
            plan_name: f.name.clone(),
            start_date: day(f.start_date),
            end_date: f.end_date.map(day),
            auto_renew: f.auto_renew,
            renewal_term_months: f.renewal_term_months,
            billing_day: f.billing_day,
            currency: f.currency.code().to_owned(),
            po_number: f.po_number.clone(),
            notes: f.notes.clone(),
            plan_status: p.status(today).code(),
            cancel_date: p.cancel_date.map(day),
            deleted: p.deleted_at.is_some(),
            deleted_at: p.deleted_at.map(stamp),
            created_at: stamp(p.created_at),
            updated_at: stamp(p.updated_at),
        }
    }
}

bodies! {
    /// A new plan of the account in the path. `ext_id` is required; `start_date`
    /// defaults to today, `renewal_term_months` to 12, `currency` to the account's.
    new NewPlan;
    /// Changes to a plan: only the fields sent change; `null` clears an optional
    /// field. A plan never moves to another account.
    changes PlanChanges;
    required {
        /// Your key for the plan, unique in the tenant.
        #[schema(example = "SUB-310", min_length = 1, max_length = 255, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
        ext_id: String,
    }
    create_only {}
    optional {
        /// A name for the plan.
        #[schema(example = "Pro, annual", max_length = 255, pattern = r"^[^\u0000]*$")]
        plan_name: Option<String>,
        /// The first day of the plan, `YYYY-MM-DD`.
        #[schema(example = "2026-01-15", format = Date)]
        start_date: String,
        /// The end of its committed term (the first day past it), after
        /// `start_date`; `null`: evergreen.
        #[schema(example = "2027-01-15", format = Date)]
        end_date: Option<String>,
        /// Whether the plan renews itself at the end of its term.
        #[schema(example = true)]
        auto_renew: bool,
        /// Months a renewal adds, 1 to 1200.
        #[schema(example = 12, minimum = 1, maximum = 1200)]
        renewal_term_months: u32,
        /// The day of the month its periods start on, 1 to 31; `null`: the start date's day.
        #[schema(example = 1, minimum = 1, maximum = 31)]
        billing_day: Option<u8>,
        /// ISO 4217 currency code, in upper case (default: the account's).
        #[schema(example = "USD")]
        currency: CurrencyCode,
        /// The customer's purchase order number.
        #[schema(example = "PO-5521", max_length = 255, pattern = r"^[^\u0000]*$")]
        po_number: Option<String>,
        /// Notes.
        #[schema(example = "Signed by Sam", max_length = 4000, pattern = r"^[^\u0000]*$")]
        notes: Option<String>,
    }
}

/// A renewal: the new end, or the months to add (neither: the plan's own term).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the door's parser reads the values"
)]
pub struct PlanRenewal {
    /// The new end of the term (the first day past it).
    #[serde(default)]
    #[schema(example = "2028-01-15", format = Date)]
    end_date: String,
    /// Months to add to the current end (not with `end_date`), 1 to 1200.
    #[serde(default)]
    #[schema(example = 12, minimum = 1, maximum = 1200)]
    renewal_term_months: u32,
}

/// A cancel: from which day, and whether the unused part is credited.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the door's parser reads the values"
)]
pub struct PlanCancel {
    /// The first day without service (default: today).
    #[serde(default)]
    #[schema(example = "2026-06-01", format = Date)]
    cancel_date: String,
    /// 1 credit the unused part of billed periods (the default), 0 no credit.
    #[serde(default)]
    #[schema(example = 1, minimum = 0, maximum = 1)]
    credit_mode: u8,
}

/// Filters of the list of plans.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "a schema: it checks the query; the door's parser reads the values"
)]
pub struct PlanFilters {
    /// Only the plan with this ExtID.
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    ext_id: Option<String>,
    /// Only plans of this account.
    #[param(minimum = 1)]
    account_id: Option<i64>,
    /// Only plans of the account with this ExtID.
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    account_ext_id: Option<String>,
    /// Only plans in this status today: 1 Active, 2 Cancelled, 3 Expired.
    #[param(minimum = 1, maximum = 3)]
    plan_status: Option<i64>,
    /// Include deleted plans.
    include_deleted: Option<bool>,
}

/// Filters of the list of an account's plans.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "a schema: it checks the query; the door's parser reads the values"
)]
pub struct AccountPlanFilters {
    /// Only the plan with this ExtID.
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    ext_id: Option<String>,
    /// Only plans in this status today: 1 Active, 2 Cancelled, 3 Expired.
    #[param(minimum = 1, maximum = 3)]
    plan_status: Option<i64>,
    /// Include deleted plans.
    include_deleted: Option<bool>,
}

async fn list_of(call: &Call, p: crate::params::Params) -> Outcome {
    let (filter, scope) = op::filter(&p, &call.tenant)?;
    let page = scope.page(&p)?;
    let found = call
        .app
        .list_plans(&call.tenant, &filter, page)
        .await
        .map_err(|e| call.fail(e))?;
    let today = call.app.today(&call.tenant);
    Ok(Reply::ok(&List::new(&found, &scope, &p, |plan| {
        Plan::new(plan, today)
    })))
}

/// List plans
#[utoipa::path(get, path = "/v1/plans", tag = "Plans",
    params(PlanFilters, Paging),
    responses((status = 200, description = "A page of plans", body = List<Plan>)))]
pub async fn list(call: Call) -> Response {
    call.read(async |call| list_of(call, call.query::<PlanFilters>(true)?).await)
        .await
}

/// List an account's plans
#[utoipa::path(get, path = "/v1/accounts/{id}/plans", tag = "Plans",
    params(("id" = i64, Path, description = "The account's ID", minimum = 1), AccountPlanFilters, Paging),
    responses((status = 200, description = "A page of the account's plans", body = List<Plan>)))]
pub async fn list_of_account(call: Call, Path(id): Path<String>) -> Response {
    call.read(async |call| {
        let account: AccountId = path_id(&id, "account")?;
        let mut p = call.query::<AccountPlanFilters>(true)?;
        // A deleted account is gone here as on its own URL, unless deleted
        // records are asked for.
        let include_deleted = p.flag(INCLUDE_DELETED)?.unwrap_or(false);
        call.app
            .get_account(&call.tenant, &RecordKey::Id(account), include_deleted)
            .await
            .map_err(|e| call.fail(e))?;
        p.set("AccountID", Value::from(account.0));
        list_of(call, p).await
    })
    .await
}

async fn get_one(call: &Call, key: RecordKey<PlanId>) -> Outcome {
    let p = call.query::<GetOptions>(false)?;
    let include_deleted = p.flag(INCLUDE_DELETED)?.unwrap_or(false);
    let plan = call
        .app
        .get_plan(&call.tenant, &key, include_deleted)
        .await
        .map_err(|e| call.fail(e))?;
    Ok(Reply::ok(&Plan::new(&plan, call.app.today(&call.tenant))))
}

/// Get a plan
#[utoipa::path(get, path = "/v1/plans/{id}", tag = "Plans",
    params(("id" = i64, Path, description = "The plan's ID", minimum = 1), GetOptions),
    responses((status = 200, description = "The plan", body = Plan)))]
pub async fn get(call: Call, Path(id): Path<String>) -> Response {
    call.read(async |call| get_one(call, RecordKey::Id(path_id(&id, "plan")?)).await)
        .await
}

/// Get a plan by its ExtID
#[utoipa::path(get, path = "/v1/plans/by-ext-id/{ext_id}", tag = "Plans",
    params(("ext_id" = String, Path, description = "The plan's ExtID"), GetOptions),
    responses((status = 200, description = "The plan", body = Plan)))]
pub async fn get_by_ext_id(call: Call, Path(ext_id): Path<String>) -> Response {
    call.read(async |call| get_one(call, RecordKey::ExtId(ext_id)).await)
        .await
}

/// Create a plan for an account
#[utoipa::path(post, path = "/v1/accounts/{id}/plans", tag = "Plans",
    params(("id" = i64, Path, description = "The account's ID", minimum = 1)),
    request_body = NewPlan,
    responses((status = 201, description = "The plan created; `Location` names it", body = Plan,
        headers(("Location" = String, description = "/v1/plans/{id}")))))]
pub async fn create(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<NewPlan>(body, async |call, p| {
        let account: AccountId = path_id(&id, "account")?;
        let mut patch = op::patch(&p)?;
        patch.account = Some(RecordKey::Id(account));
        let plan = call
            .app
            .create_plan(&call.tenant, patch)
            .await
            .map_err(|e| call.fail(e))?;
        let today = call.app.today(&call.tenant);
        Ok(Reply::created(
            format!("/v1/plans/{}", plan.id),
            &Plan::new(&plan, today),
        ))
    })
    .await
}

/// Update a plan
#[utoipa::path(patch, path = "/v1/plans/{id}", tag = "Plans",
    params(("id" = i64, Path, description = "The plan's ID", minimum = 1)),
    request_body = Option<PlanChanges>,
    responses((status = 200, description = "The plan as changed", body = Plan)))]
pub async fn update(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<PlanChanges>(body, async |call, p| {
        let id: PlanId = path_id(&id, "plan")?;
        let plan = call
            .app
            .upsert_plan(&call.tenant, Some(id), op::patch(&p)?)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&Plan::new(&plan, call.app.today(&call.tenant))))
    })
    .await
}

/// Delete a plan
///
/// Allowed only for a plan never invoiced; it is kept, marked deleted.
#[utoipa::path(delete, path = "/v1/plans/{id}", tag = "Plans",
    params(("id" = i64, Path, description = "The plan's ID", minimum = 1)),
    responses((status = 204, description = "Deleted")))]
pub async fn delete(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<Empty>(body, async |call, _| {
        let id: PlanId = path_id(&id, "plan")?;
        call.app
            .delete_plan(&call.tenant, &RecordKey::Id(id))
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::no_content())
    })
    .await
}

/// Renew a plan
///
/// Moves the end of the plan, and of every uncancelled item that ended with it,
/// to the new end (BILLING.md §3).
#[utoipa::path(post, path = "/v1/plans/{id}/renew", tag = "Plans",
    params(("id" = i64, Path, description = "The plan's ID", minimum = 1)),
    request_body = Option<PlanRenewal>,
    responses((status = 200, description = "The plan renewed", body = Plan)))]
pub async fn renew(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<PlanRenewal>(body, async |call, p| {
        let id: PlanId = path_id(&id, "plan")?;
        let plan = call
            .app
            .renew_plan(&call.tenant, &RecordKey::Id(id), op::renew_args(&p)?)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&Plan::new(&plan, call.app.today(&call.tenant))))
    })
    .await
}

/// Cancel a plan
///
/// Cancels the plan and every item of it from `cancel_date`; billed periods past
/// that day are credited unless `credit_mode` is 0.
#[utoipa::path(post, path = "/v1/plans/{id}/cancel", tag = "Plans",
    params(("id" = i64, Path, description = "The plan's ID", minimum = 1)),
    request_body = Option<PlanCancel>,
    responses((status = 200, description = "The plan cancelled", body = Plan)))]
pub async fn cancel(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<PlanCancel>(body, async |call, p| {
        let id: PlanId = path_id(&id, "plan")?;
        let (date, credit) = op::cancel_args(&p)?;
        let plan = call
            .app
            .cancel_plan(&call.tenant, &RecordKey::Id(id), date, credit)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&Plan::new(&plan, call.app.today(&call.tenant))))
    })
    .await
}
