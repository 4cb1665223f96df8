//! Items: `/v1/recurring-items` (list, get, create under a plan, update, delete,
//! renew, upsell, cancel, change dates; `?include=history`) and
//! `/v1/one-time-items` (list, get, create under a plan, update, delete).

#![expect(
    unused_qualifications,
    reason = "utoipa's path macro qualifies the parameter types it is given"
)]

use axum::body::Body;
use axum::extract::Path;
use axum::response::Response;
use dynabill_app::model::{self, ItemChange, RecordKey};
use dynabill_core::domain::{OneTimeItemId, PlanId, RecurringItemId};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::call::{Empty, GetOptions, List, Outcome, Paging, includes, path_id};
use super::shapes::{bodies, day, decimal, stamp};
use super::{Call, Reply};
use crate::error::{DoorError, internal};
use crate::fields::INCLUDE_DELETED;
use crate::ops::{one_time as one_time_op, recurring as op};
use crate::params::Params;
use crate::wire::change_name;

/// One change in a recurring item's history.
#[derive(Serialize, ToSchema)]
pub struct ItemChangeEntry {
    /// Created, Updated, Upsell, Renewal, Cancellation, DatesChanged or Deleted.
    #[schema(example = "Upsell")]
    change: &'static str,
    /// The change's code (as the dynamic door's `ChangeType`).
    #[schema(example = 3)]
    change_type: i64,
    /// The day the change takes effect.
    #[schema(example = "2026-03-10")]
    effective_date: String,
    /// The quantity from that day, when the change set one.
    #[schema(example = "12")]
    quantity: Option<String>,
    /// The unit price from that day, when the change set one.
    #[schema(example = "49.5")]
    unit_price: Option<String>,
    /// The discount from that day, when the change set one.
    #[schema(example = "0")]
    discount_percent: Option<String>,
    /// The item's start after the change.
    #[schema(example = "2026-01-15")]
    start_date: String,
    /// The item's end after the change (the first day past it).
    #[schema(example = "2027-01-15")]
    end_date: Option<String>,
    /// An upsell's proration: 1 by day, 0 from the next period.
    #[schema(example = 1)]
    proration_mode: Option<u8>,
    /// A cancel's credit: 1 credit, 0 none.
    #[schema(example = 1)]
    credit_mode: Option<u8>,
    /// When the change was recorded (RFC 3339, UTC).
    #[schema(example = "2026-03-01T12:00:00.000000Z")]
    recorded_at: String,
}

impl From<&ItemChange> for ItemChangeEntry {
    fn from(c: &ItemChange) -> Self {
        ItemChangeEntry {
            change: change_name(c.kind),
            change_type: c.kind.code(),
            effective_date: day(c.effective_date),
            quantity: c.quantity.map(decimal),
            unit_price: c.unit_price.map(decimal),
            discount_percent: c.discount_percent.map(decimal),
            start_date: day(c.start_date),
            end_date: c.end_date.map(day),
            proration_mode: c.prorate.map(u8::from),
            credit_mode: c.credit.map(u8::from),
            recorded_at: stamp(c.recorded_at),
        }
    }
}

/// A recurring item: a product billed every period of its plan.
#[derive(Serialize, ToSchema)]
pub struct RecurringItem {
    /// Assigned by dynabill.
    #[schema(example = 5120)]
    id: i64,
    /// Your key for the item (unique in the tenant, never reused).
    #[schema(example = "SEATS-310")]
    ext_id: String,
    /// The plan it belongs to.
    #[schema(example = 310)]
    plan_id: i64,
    /// The plan's ExtID.
    #[schema(example = "SUB-310")]
    plan_ext_id: String,
    /// The plan's account.
    #[schema(example = 1042)]
    account_id: i64,
    /// Your product's code.
    #[schema(example = "PRO-SEAT")]
    product_code: String,
    /// The name on invoices.
    #[schema(example = "Pro seats")]
    item_name: String,
    /// A description.
    #[schema(example = "Seats of the Pro edition")]
    description: Option<String>,
    /// The quantity in force today (decimal string).
    #[schema(example = "10")]
    quantity: String,
    /// The unit price in force today (decimal string, the plan's currency).
    #[schema(example = "49.5")]
    unit_price: String,
    /// The discount in force today, in percent.
    #[schema(example = "0")]
    discount_percent: String,
    /// 1 Monthly, 2 Quarterly, 3 Semi-annual, 4 Annual, 5 Weekly, 6 Daily.
    #[schema(example = 1)]
    billing_period: i64,
    /// Periods per bill: 2 with Monthly bills every two months.
    #[schema(example = 1)]
    billing_period_count: u32,
    /// 1 in advance, 2 in arrears.
    #[schema(example = 1)]
    billing_timing: i64,
    /// The first day of service.
    #[schema(example = "2026-01-15")]
    start_date: String,
    /// The end of service (the first day past it); `null`: until cancelled.
    #[schema(example = "2027-01-15")]
    end_date: Option<String>,
    /// The tax code sent to the tax engine.
    #[schema(example = "SW054000")]
    tax_code: Option<String>,
    /// 1 Active, 2 Cancelled, 3 Ended, 4 Future (as of today).
    #[schema(example = 1)]
    item_status: i64,
    /// Billed up to this day (the first day not billed yet).
    #[schema(example = "2026-02-15")]
    charged_through_date: Option<String>,
    /// The day the next bill for it is due.
    #[schema(example = "2026-02-15")]
    next_billing_date: Option<String>,
    /// The first day without service after a cancel.
    #[schema(example = "2026-06-01")]
    cancel_date: Option<String>,
    /// A cancel's credit: 1 credit, 0 none.
    #[schema(example = 1)]
    credit_mode: Option<u8>,
    /// Whether the item was deleted.
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
    /// Its changes, oldest first, with `include=history`.
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<Vec<ItemChangeEntry>>,
}

impl RecurringItem {
    pub(super) fn new(
        item: &model::RecurringItem,
        today: Date,
        with_history: bool,
        request_id: &str,
    ) -> Result<RecurringItem, DoorError> {
        let f = &item.fields;
        let terms = item
            .current_terms(today)
            .map_err(|e| internal(&e, request_id))?;
        Ok(RecurringItem {
            id: item.id.0,
            ext_id: f.ext_id.clone(),
            plan_id: item.plan_id.0,
            plan_ext_id: item.plan_ext_id.clone(),
            account_id: item.account_id.0,
            product_code: f.product_code.clone(),
            item_name: f.name.clone(),
            description: f.description.clone(),
            quantity: decimal(terms.quantity()),
            unit_price: decimal(terms.unit_price()),
            discount_percent: decimal(terms.discount_percent()),
            billing_period: f.billing_period.code(),
            billing_period_count: f.period_count,
            billing_timing: f.timing.code(),
            start_date: day(f.start_date),
            end_date: f.end_date.map(day),
            tax_code: f.tax_code.clone(),
            item_status: item.status(today).code(),
            charged_through_date: item.charged_through.map(day),
            next_billing_date: item
                .next_billing_date()
                .map_err(|e| internal(&e, request_id))?
                .map(day),
            cancel_date: item.cancellation.map(|c| day(c.date)),
            credit_mode: item.cancellation.map(|c| u8::from(c.credit)),
            deleted: item.deleted_at.is_some(),
            deleted_at: item.deleted_at.map(stamp),
            created_at: stamp(item.created_at),
            updated_at: stamp(item.updated_at),
            history: with_history.then(|| item.changes.iter().map(ItemChangeEntry::from).collect()),
        })
    }
}

/// A one-time item: a charge (or, with a negative price, a credit) billed once.
#[derive(Serialize, ToSchema)]
pub struct OneTimeItem {
    /// Assigned by dynabill.
    #[schema(example = 880)]
    id: i64,
    /// Your key for the item (unique in the tenant, never reused).
    #[schema(example = "SETUP-310")]
    ext_id: String,
    /// The plan it belongs to.
    #[schema(example = 310)]
    plan_id: i64,
    /// The plan's ExtID.
    #[schema(example = "SUB-310")]
    plan_ext_id: String,
    /// The plan's account.
    #[schema(example = 1042)]
    account_id: i64,
    /// Your product's code.
    #[schema(example = "SETUP")]
    product_code: String,
    /// The name on invoices.
    #[schema(example = "Onboarding")]
    item_name: String,
    /// A description.
    #[schema(example = "Two onboarding sessions")]
    description: Option<String>,
    /// Quantity (decimal string).
    #[schema(example = "1")]
    quantity: String,
    /// Unit price (decimal string; negative for a credit).
    #[schema(example = "500")]
    unit_price: String,
    /// The day it is billed on (the first bill run on or after it).
    #[schema(example = "2026-01-15")]
    charge_date: String,
    /// The tax code sent to the tax engine.
    #[schema(example = "SW054000")]
    tax_code: Option<String>,
    /// 1 Pending, 2 Invoiced, 3 Cancelled.
    #[schema(example = 1)]
    item_status: i64,
    /// Whether the item was deleted.
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

impl From<&model::OneTimeItem> for OneTimeItem {
    fn from(item: &model::OneTimeItem) -> Self {
        let f = &item.fields;
        OneTimeItem {
            id: item.id.0,
            ext_id: f.ext_id.clone(),
            plan_id: item.plan_id.0,
            plan_ext_id: item.plan_ext_id.clone(),
            account_id: item.account_id.0,
            product_code: f.product_code.clone(),
            item_name: f.name.clone(),
            description: f.description.clone(),
            quantity: decimal(f.quantity),
            unit_price: decimal(f.unit_price),
            charge_date: day(f.charge_date),
            tax_code: f.tax_code.clone(),
            item_status: item.status().code(),
            deleted: item.deleted_at.is_some(),
            deleted_at: item.deleted_at.map(stamp),
            created_at: stamp(item.created_at),
            updated_at: stamp(item.updated_at),
        }
    }
}

bodies! {
    /// A new recurring item of the plan in the path. `ext_id`, `product_code`,
    /// `item_name`, `quantity`, `unit_price` and `billing_period` are required;
    /// `start_date` and `end_date` default to the plan's, `billing_period_count`
    /// to 1, `billing_timing` to 1 (in advance).
    new NewRecurringItem;
    /// Changes to a recurring item: descriptive fields at any time, the
    /// commercial terms only while it has never been invoiced (after that, use
    /// upsell, renew, cancel or change-dates).
    changes RecurringItemChanges;
    required {
        /// Your key for the item, unique in the tenant.
        #[schema(example = "SEATS-310", min_length = 1, max_length = 255, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
        ext_id: String,
        /// Your product's code.
        #[schema(example = "PRO-SEAT", min_length = 1, max_length = 255, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
        product_code: String,
        /// The name on invoices.
        #[schema(example = "Pro seats", min_length = 1, max_length = 255, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
        item_name: String,
        /// Quantity, a decimal string greater than 0.
        #[schema(example = "10", pattern = r"^(0*[1-9][0-9]{0,11}(\.[0-9]{1,6})?|0{1,12}\.[0-9]{0,5}[1-9])$")]
        quantity: String,
        /// Unit price, a decimal string, not negative.
        #[schema(example = "49.50", pattern = r"^[0-9]{1,12}(\.[0-9]{1,6})?$")]
        unit_price: String,
        /// 1 Monthly, 2 Quarterly, 3 Semi-annual, 4 Annual, 5 Weekly, 6 Daily.
        #[schema(example = 1, minimum = 1, maximum = 6)]
        billing_period: u8,
    }
    create_only {}
    optional {
        /// A description; `null` clears it.
        #[schema(example = "Seats of the Pro edition", max_length = 4000, pattern = r"^[^\u0000]*$")]
        description: Option<String>,
        /// The tax code sent to the tax engine; `null` clears it.
        #[schema(example = "SW054000", max_length = 255, pattern = r"^[^\u0000]*$")]
        tax_code: Option<String>,
        /// The discount in percent, a decimal string from 0 to 100.
        #[schema(example = "10", pattern = r"^(100(\.0{1,6})?|[0-9]{1,2}(\.[0-9]{1,6})?)$")]
        discount_percent: String,
        /// Periods per bill, 1 to 1000.
        #[schema(example = 1, minimum = 1, maximum = 1000)]
        billing_period_count: u32,
        /// 1 in advance, 2 in arrears.
        #[schema(example = 1, minimum = 1, maximum = 2)]
        billing_timing: u8,
        /// The first day of service, `YYYY-MM-DD`.
        #[schema(example = "2026-01-15", format = Date)]
        start_date: String,
        /// The end of service (the first day past it), after `start_date`; `null`: until cancelled.
        #[schema(example = "2027-01-15", format = Date)]
        end_date: Option<String>,
    }
}

bodies! {
    /// A new one-time item of the plan in the path. `ext_id`, `product_code`,
    /// `item_name`, `quantity` and `unit_price` are required; `charge_date`
    /// defaults to today.
    new NewOneTimeItem;
    /// Changes to a one-time item, while it is pending (not invoiced).
    changes OneTimeItemChanges;
    required {
        /// Your key for the item, unique in the tenant.
        #[schema(example = "SETUP-310", min_length = 1, max_length = 255, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
        ext_id: String,
        /// Your product's code.
        #[schema(example = "SETUP", min_length = 1, max_length = 255, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
        product_code: String,
        /// The name on invoices.
        #[schema(example = "Onboarding", min_length = 1, max_length = 255, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
        item_name: String,
        /// Quantity, a decimal string greater than 0.
        #[schema(example = "1", pattern = r"^(0*[1-9][0-9]{0,11}(\.[0-9]{1,6})?|0{1,12}\.[0-9]{0,5}[1-9])$")]
        quantity: String,
        /// Unit price, a decimal string; negative for a credit.
        #[schema(example = "500", pattern = r"^-?[0-9]{1,12}(\.[0-9]{1,6})?$")]
        unit_price: String,
    }
    create_only {}
    optional {
        /// A description; `null` clears it.
        #[schema(example = "Two onboarding sessions", max_length = 4000, pattern = r"^[^\u0000]*$")]
        description: Option<String>,
        /// The day it is billed on, `YYYY-MM-DD`.
        #[schema(example = "2026-01-15", format = Date)]
        charge_date: String,
        /// The tax code sent to the tax engine; `null` clears it.
        #[schema(example = "SW054000", max_length = 255, pattern = r"^[^\u0000]*$")]
        tax_code: Option<String>,
    }
}

/// A renewal of an item: the new end, or the months to add, and optionally a
/// new price for the new term.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the door's parser reads the values"
)]
pub struct ItemRenewal {
    /// The new end of service (the first day past it).
    #[serde(default)]
    #[schema(example = "2028-01-15", format = Date)]
    end_date: String,
    /// Months to add to the current end (not with `end_date`), 1 to 1200.
    #[serde(default)]
    #[schema(example = 12, minimum = 1, maximum = 1200)]
    renewal_term_months: u32,
    /// The unit price of the new term, a decimal string.
    #[serde(default)]
    #[schema(example = "55", pattern = r"^[0-9]{1,12}(\.[0-9]{1,6})?$")]
    unit_price: String,
}

/// An upsell: new terms from a day, prorated or from the next period.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the door's parser reads the values"
)]
pub struct ItemUpsell {
    /// The new quantity, a decimal string greater than 0.
    #[serde(default)]
    #[schema(
        example = "12",
        pattern = r"^(0*[1-9][0-9]{0,11}(\.[0-9]{1,6})?|0{1,12}\.[0-9]{0,5}[1-9])$"
    )]
    quantity: String,
    /// The new unit price, a decimal string.
    #[serde(default)]
    #[schema(example = "49.50", pattern = r"^[0-9]{1,12}(\.[0-9]{1,6})?$")]
    unit_price: String,
    /// The day the new terms start.
    #[schema(example = "2026-03-10", format = Date)]
    effective_date: String,
    /// 1 prorate by day (the default), 0 from the next period.
    #[serde(default)]
    #[schema(example = 1, minimum = 0, maximum = 1)]
    proration_mode: u8,
}

/// A cancel of an item.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the door's parser reads the values"
)]
pub struct ItemCancel {
    /// The first day without service (default: today); not with `cancel_at` 2.
    #[serde(default)]
    #[schema(example = "2026-06-01", format = Date)]
    cancel_date: String,
    /// 1 on `cancel_date` (the default), 2 at the end of the billed period.
    #[serde(default)]
    #[schema(example = 1, minimum = 1, maximum = 2)]
    cancel_at: u8,
    /// 1 credit the unused part of billed periods (the default), 0 no credit.
    #[serde(default)]
    #[schema(example = 1, minimum = 0, maximum = 1)]
    credit_mode: u8,
}

/// New dates of an item.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the door's parser reads the values"
)]
pub struct ItemDates {
    /// The new first day of service.
    #[serde(default)]
    #[schema(example = "2026-02-01", format = Date)]
    start_date: String,
    /// The new end of service (the first day past it); `null`: until cancelled.
    #[serde(default)]
    #[schema(example = "2027-02-01", format = Date)]
    end_date: Option<String>,
}

/// Filters of the lists of items.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "a schema: it checks the query; the door's parser reads the values"
)]
pub struct ItemFilters {
    /// Only the item with this ExtID.
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    ext_id: Option<String>,
    /// Only items of this plan.
    #[param(minimum = 1)]
    plan_id: Option<i64>,
    /// Only items of the plan with this ExtID.
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    plan_ext_id: Option<String>,
    /// Include deleted items.
    include_deleted: Option<bool>,
}

/// Filters of the lists of a plan's items.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "a schema: it checks the query; the door's parser reads the values"
)]
pub struct PlanItemFilters {
    /// Only the item with this ExtID.
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    ext_id: Option<String>,
    /// Include deleted items.
    include_deleted: Option<bool>,
}

/// A get's options.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "a schema: it checks the query; the door's parser reads the values"
)]
pub struct ItemGetOptions {
    /// Find the record even if it was deleted.
    include_deleted: Option<bool>,
    /// Extras, comma-separated: `history` adds a recurring item's changes (the other extras of
    /// lists, `total_count` and `lines`, are taken and change nothing here).
    #[param(
        pattern = "^(total_count|lines|history)(,(total_count|lines|history))*$",
        example = "history"
    )]
    #[serde(default, deserialize_with = "super::call::extras")]
    include: Option<String>,
}

/// The plan in a path, which must exist in this tenant (and be live, unless
/// deleted records are asked for: a deleted plan is gone here as on its own URL).
async fn plan_in_path(call: &Call, id: &str, p: &mut Params) -> Result<PlanId, DoorError> {
    let plan: PlanId = path_id(id, "plan")?;
    let include_deleted = p.flag(INCLUDE_DELETED)?.unwrap_or(false);
    call.app
        .get_plan(&call.tenant, &RecordKey::Id(plan), include_deleted)
        .await
        .map_err(|e| call.fail(e))?;
    p.set("PlanID", Value::from(plan.0));
    Ok(plan)
}

async fn recurring_page(call: &Call, p: Params) -> Outcome {
    let (filter, scope) = op::filter(&call.app, &call.tenant, &p, &call.request_id, 110).await?;
    let page = scope.page(&p)?;
    let found = call
        .app
        .list_recurring_items(&call.tenant, &filter, page)
        .await
        .map_err(|e| call.fail(e))?;
    let today = call.app.today(&call.tenant);
    let history = includes(&p, "history");
    let list = List::try_new(&found, &scope, &p, |item| {
        RecurringItem::new(item, today, history, &call.request_id)
    })?;
    Ok(Reply::ok(&list))
}

/// List recurring items
#[utoipa::path(get, path = "/v1/recurring-items", tag = "Recurring items",
    params(ItemFilters, Paging),
    responses((status = 200, description = "A page of recurring items", body = List<RecurringItem>)))]
pub async fn list_recurring(call: Call) -> Response {
    call.read(async |call| recurring_page(call, call.query::<ItemFilters>(true)?).await)
        .await
}

/// List a plan's recurring items
#[utoipa::path(get, path = "/v1/plans/{id}/recurring-items", tag = "Recurring items",
    params(("id" = i64, Path, description = "The plan's ID", minimum = 1), PlanItemFilters, Paging),
    responses((status = 200, description = "A page of the plan's recurring items", body = List<RecurringItem>)))]
pub async fn list_recurring_of_plan(call: Call, Path(id): Path<String>) -> Response {
    call.read(async |call| {
        let mut p = call.query::<PlanItemFilters>(true)?;
        plan_in_path(call, &id, &mut p).await?;
        recurring_page(call, p).await
    })
    .await
}

async fn recurring_one(call: &Call, key: RecordKey<RecurringItemId>) -> Outcome {
    let p = call.query::<ItemGetOptions>(false)?;
    let include_deleted = p.flag(INCLUDE_DELETED)?.unwrap_or(false);
    let item = call
        .app
        .get_recurring_item(&call.tenant, &key, include_deleted)
        .await
        .map_err(|e| call.fail(e))?;
    recurring_reply(call, &item, includes(&p, "history"))
}

fn recurring_reply(call: &Call, item: &model::RecurringItem, history: bool) -> Outcome {
    let today = call.app.today(&call.tenant);
    Ok(Reply::ok(&RecurringItem::new(
        item,
        today,
        history,
        &call.request_id,
    )?))
}

/// Get a recurring item
#[utoipa::path(get, path = "/v1/recurring-items/{id}", tag = "Recurring items",
    params(("id" = i64, Path, description = "The item's ID", minimum = 1), ItemGetOptions),
    responses((status = 200, description = "The item", body = RecurringItem)))]
pub async fn get_recurring(call: Call, Path(id): Path<String>) -> Response {
    call.read(async |call| {
        recurring_one(call, RecordKey::Id(path_id(&id, "recurring item")?)).await
    })
    .await
}

/// Get a recurring item by its ExtID
#[utoipa::path(get, path = "/v1/recurring-items/by-ext-id/{ext_id}", tag = "Recurring items",
    params(("ext_id" = String, Path, description = "The item's ExtID"), ItemGetOptions),
    responses((status = 200, description = "The item", body = RecurringItem)))]
pub async fn get_recurring_by_ext_id(call: Call, Path(ext_id): Path<String>) -> Response {
    call.read(async |call| recurring_one(call, RecordKey::ExtId(ext_id)).await)
        .await
}

/// Create a recurring item in a plan
#[utoipa::path(post, path = "/v1/plans/{id}/recurring-items", tag = "Recurring items",
    params(("id" = i64, Path, description = "The plan's ID", minimum = 1)),
    request_body = NewRecurringItem,
    responses((status = 201, description = "The item created; `Location` names it", body = RecurringItem,
        headers(("Location" = String, description = "/v1/recurring-items/{id}")))))]
pub async fn create_recurring(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<NewRecurringItem>(body, async |call, p| {
        let plan: PlanId = path_id(&id, "plan")?;
        let mut patch = op::patch(&p)?;
        patch.plan = Some(RecordKey::Id(plan));
        let item = call
            .app
            .create_recurring_item(&call.tenant, patch)
            .await
            .map_err(|e| call.fail(e))?;
        let today = call.app.today(&call.tenant);
        Ok(Reply::created(
            format!("/v1/recurring-items/{}", item.id),
            &RecurringItem::new(&item, today, false, &call.request_id)?,
        ))
    })
    .await
}

/// The handler of an action on the recurring item in the path: checks the body
/// against `B`, runs `act`, answers the item as it is after.
async fn item_action<B: serde::de::DeserializeOwned>(
    call: Call,
    id: String,
    body: Body,
    act: impl AsyncFnOnce(
        &Call,
        RecordKey<RecurringItemId>,
        Params,
    ) -> Result<model::RecurringItem, DoorError>,
) -> Response {
    call.write::<B>(body, async |call, p| {
        let key = RecordKey::Id(path_id(&id, "recurring item")?);
        let item = act(call, key, p).await?;
        recurring_reply(call, &item, false)
    })
    .await
}

/// Update a recurring item
#[utoipa::path(patch, path = "/v1/recurring-items/{id}", tag = "Recurring items",
    params(("id" = i64, Path, description = "The item's ID", minimum = 1)),
    request_body = Option<RecurringItemChanges>,
    responses((status = 200, description = "The item as changed", body = RecurringItem)))]
pub async fn update_recurring(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<RecurringItemChanges>(body, async |call, p| {
        let id: RecurringItemId = path_id(&id, "recurring item")?;
        let item = call
            .app
            .upsert_recurring_item(&call.tenant, Some(id), op::patch(&p)?)
            .await
            .map_err(|e| call.fail(e))?;
        recurring_reply(call, &item, false)
    })
    .await
}

/// Renew a recurring item
#[utoipa::path(post, path = "/v1/recurring-items/{id}/renew", tag = "Recurring items",
    params(("id" = i64, Path, description = "The item's ID", minimum = 1)),
    request_body = Option<ItemRenewal>,
    responses((status = 200, description = "The item renewed", body = RecurringItem)))]
pub async fn renew_recurring(call: Call, Path(id): Path<String>, body: Body) -> Response {
    item_action::<ItemRenewal>(call, id, body, async |call, key, p| {
        call.app
            .renew_recurring_item(&call.tenant, &key, op::renew_args(&p)?)
            .await
            .map_err(|e| call.fail(e))
    })
    .await
}

/// Upsell a recurring item
///
/// New quantity and/or price from `effective_date`; billed periods are adjusted
/// by day unless `proration_mode` is 0 (BILLING.md §4).
#[utoipa::path(post, path = "/v1/recurring-items/{id}/upsell", tag = "Recurring items",
    params(("id" = i64, Path, description = "The item's ID", minimum = 1)),
    request_body = ItemUpsell,
    responses((status = 200, description = "The item with its new terms", body = RecurringItem)))]
pub async fn upsell_recurring(call: Call, Path(id): Path<String>, body: Body) -> Response {
    item_action::<ItemUpsell>(call, id, body, async |call, key, p| {
        call.app
            .upsell_recurring_item(&call.tenant, &key, op::upsell_args(&p)?)
            .await
            .map_err(|e| call.fail(e))
    })
    .await
}

/// Cancel a recurring item
#[utoipa::path(post, path = "/v1/recurring-items/{id}/cancel", tag = "Recurring items",
    params(("id" = i64, Path, description = "The item's ID", minimum = 1)),
    request_body = Option<ItemCancel>,
    responses((status = 200, description = "The item cancelled", body = RecurringItem)))]
pub async fn cancel_recurring(call: Call, Path(id): Path<String>, body: Body) -> Response {
    item_action::<ItemCancel>(call, id, body, async |call, key, p| {
        let (at, credit) = op::cancel_args(&p)?;
        call.app
            .cancel_recurring_item(&call.tenant, &key, at, credit)
            .await
            .map_err(|e| call.fail(e))
    })
    .await
}

/// Change a recurring item's dates
#[utoipa::path(post, path = "/v1/recurring-items/{id}/change-dates", tag = "Recurring items",
    params(("id" = i64, Path, description = "The item's ID", minimum = 1)),
    request_body = ItemDates,
    responses((status = 200, description = "The item with its new dates", body = RecurringItem)))]
pub async fn change_recurring_dates(call: Call, Path(id): Path<String>, body: Body) -> Response {
    item_action::<ItemDates>(call, id, body, async |call, key, p| {
        let (start, end) = op::dates_args(&p)?;
        call.app
            .change_recurring_item_dates(&call.tenant, &key, start, end)
            .await
            .map_err(|e| call.fail(e))
    })
    .await
}

/// Delete a recurring item
#[utoipa::path(delete, path = "/v1/recurring-items/{id}", tag = "Recurring items",
    params(("id" = i64, Path, description = "The item's ID", minimum = 1)),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_recurring(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<Empty>(body, async |call, _| {
        let id: RecurringItemId = path_id(&id, "recurring item")?;
        call.app
            .delete_recurring_item(&call.tenant, &RecordKey::Id(id))
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::no_content())
    })
    .await
}

async fn one_time_page(call: &Call, p: Params) -> Outcome {
    let (filter, scope) = op::filter(&call.app, &call.tenant, &p, &call.request_id, 75).await?;
    let page = scope.page(&p)?;
    let found = call
        .app
        .list_one_time_items(&call.tenant, &filter, page)
        .await
        .map_err(|e| call.fail(e))?;
    Ok(Reply::ok(&List::new(&found, &scope, &p, |item| {
        OneTimeItem::from(item)
    })))
}

/// List one-time items
#[utoipa::path(get, path = "/v1/one-time-items", tag = "One-time items",
    params(ItemFilters, Paging),
    responses((status = 200, description = "A page of one-time items", body = List<OneTimeItem>)))]
pub async fn list_one_time(call: Call) -> Response {
    call.read(async |call| one_time_page(call, call.query::<ItemFilters>(true)?).await)
        .await
}

/// List a plan's one-time items
#[utoipa::path(get, path = "/v1/plans/{id}/one-time-items", tag = "One-time items",
    params(("id" = i64, Path, description = "The plan's ID", minimum = 1), PlanItemFilters, Paging),
    responses((status = 200, description = "A page of the plan's one-time items", body = List<OneTimeItem>)))]
pub async fn list_one_time_of_plan(call: Call, Path(id): Path<String>) -> Response {
    call.read(async |call| {
        let mut p = call.query::<PlanItemFilters>(true)?;
        plan_in_path(call, &id, &mut p).await?;
        one_time_page(call, p).await
    })
    .await
}

async fn one_time_one(call: &Call, key: RecordKey<OneTimeItemId>) -> Outcome {
    let p = call.query::<GetOptions>(false)?;
    let include_deleted = p.flag(INCLUDE_DELETED)?.unwrap_or(false);
    let item = call
        .app
        .get_one_time_item(&call.tenant, &key, include_deleted)
        .await
        .map_err(|e| call.fail(e))?;
    Ok(Reply::ok(&OneTimeItem::from(&item)))
}

/// Get a one-time item
#[utoipa::path(get, path = "/v1/one-time-items/{id}", tag = "One-time items",
    params(("id" = i64, Path, description = "The item's ID", minimum = 1), GetOptions),
    responses((status = 200, description = "The item", body = OneTimeItem)))]
pub async fn get_one_time(call: Call, Path(id): Path<String>) -> Response {
    call.read(async |call| one_time_one(call, RecordKey::Id(path_id(&id, "one-time item")?)).await)
        .await
}

/// Get a one-time item by its ExtID
#[utoipa::path(get, path = "/v1/one-time-items/by-ext-id/{ext_id}", tag = "One-time items",
    params(("ext_id" = String, Path, description = "The item's ExtID"), GetOptions),
    responses((status = 200, description = "The item", body = OneTimeItem)))]
pub async fn get_one_time_by_ext_id(call: Call, Path(ext_id): Path<String>) -> Response {
    call.read(async |call| one_time_one(call, RecordKey::ExtId(ext_id)).await)
        .await
}

/// Create a one-time item in a plan
#[utoipa::path(post, path = "/v1/plans/{id}/one-time-items", tag = "One-time items",
    params(("id" = i64, Path, description = "The plan's ID", minimum = 1)),
    request_body = NewOneTimeItem,
    responses((status = 201, description = "The item created; `Location` names it", body = OneTimeItem,
        headers(("Location" = String, description = "/v1/one-time-items/{id}")))))]
pub async fn create_one_time(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<NewOneTimeItem>(body, async |call, p| {
        let plan: PlanId = path_id(&id, "plan")?;
        let mut patch = one_time_op::patch(&p)?;
        patch.plan = Some(RecordKey::Id(plan));
        let item = call
            .app
            .create_one_time_item(&call.tenant, patch)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::created(
            format!("/v1/one-time-items/{}", item.id),
            &OneTimeItem::from(&item),
        ))
    })
    .await
}

/// Update a one-time item
#[utoipa::path(patch, path = "/v1/one-time-items/{id}", tag = "One-time items",
    params(("id" = i64, Path, description = "The item's ID", minimum = 1)),
    request_body = Option<OneTimeItemChanges>,
    responses((status = 200, description = "The item as changed", body = OneTimeItem)))]
pub async fn update_one_time(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<OneTimeItemChanges>(body, async |call, p| {
        let id: OneTimeItemId = path_id(&id, "one-time item")?;
        let item = call
            .app
            .upsert_one_time_item(&call.tenant, Some(id), one_time_op::patch(&p)?)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&OneTimeItem::from(&item)))
    })
    .await
}

/// Delete a one-time item
///
/// Allowed while it is pending (not invoiced).
#[utoipa::path(delete, path = "/v1/one-time-items/{id}", tag = "One-time items",
    params(("id" = i64, Path, description = "The item's ID", minimum = 1)),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_one_time(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<Empty>(body, async |call, _| {
        let id: OneTimeItemId = path_id(&id, "one-time item")?;
        call.app
            .delete_one_time_item(&call.tenant, &RecordKey::Id(id))
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::no_content())
    })
    .await
}
