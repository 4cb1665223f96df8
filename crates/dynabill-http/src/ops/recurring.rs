//! Recurring items (entity 110): list/get (3), create-or-update (10), delete (11),
//! renew (12), upsell (13), cancel (14), change dates (15).

use dynabill_app::App;
use dynabill_app::model::{ItemFilter, RecordKey, RecurringItemPatch, Tenant};
use dynabill_app::recurring::{CancelAt, Renewal, Upsell};
use dynabill_core::calendar::{BillingPeriod, ProrationMode};
use dynabill_core::domain::{BillingTiming, PlanId};
use rust_decimal::Decimal;

use super::{MAX_SCALE, plan_key, quantity, renewal_term, required_key};
use crate::cursor::ListScope;
use crate::envelope::{self, Reply};
use crate::error::{DoorError, from_app, internal};
use crate::fields::{EXT_ID, ID, INCLUDE_DELETED, MAX_LONG_TEXT, MAX_TEXT};
use crate::params::Params;
use crate::wire::RecurringItemOut;

/// Largest `BillingPeriodCount` (SPEC §5).
const MAX_PERIOD_COUNT: i64 = 1000;

fn unit_price(p: &Params) -> Result<Option<Decimal>, DoorError> {
    let price = p.decimal("UnitPrice", MAX_SCALE)?;
    if price.is_some_and(|p| p < Decimal::ZERO) {
        return Err(DoorError::invalid(
            "UnitPrice",
            "must not be negative (use a one-time item for a credit)",
        ));
    }
    Ok(price)
}

pub(crate) fn patch(p: &Params) -> Result<RecurringItemPatch, DoorError> {
    let discount = p.decimal("DiscountPercent", MAX_SCALE)?;
    if discount.is_some_and(|d| d < Decimal::ZERO || d > Decimal::ONE_HUNDRED) {
        return Err(DoorError::invalid(
            "DiscountPercent",
            "must be between 0 and 100",
        ));
    }
    Ok(RecurringItemPatch {
        ext_id: p.text(EXT_ID, MAX_TEXT)?,
        plan: plan_key(p)?,
        product_code: p.text("ProductCode", MAX_TEXT)?,
        name: p.text("ItemName", MAX_TEXT)?,
        description: p.optional_text("Description", MAX_LONG_TEXT)?,
        tax_code: p.optional_text("TaxCode", MAX_TEXT)?,
        quantity: quantity(p)?,
        unit_price: unit_price(p)?,
        discount_percent: discount,
        billing_period: p.coded(
            "BillingPeriod",
            BillingPeriod::from_code,
            "1 (Monthly), 2 (Quarterly), 3 (Semi-annual), 4 (Annual), 5 (Weekly) or 6 (Daily)",
        )?,
        period_count: p
            .int_in("BillingPeriodCount", 1..=MAX_PERIOD_COUNT)?
            .map(|n| n as u32),
        timing: p.coded(
            "BillingTiming",
            BillingTiming::from_code,
            "1 (in advance) or 2 (in arrears)",
        )?,
        start_date: p.required_date("StartDate")?,
        end_date: p.date("EndDate")?,
    })
}

pub async fn list(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let (filter, scope) = filter(app, tenant, p, request_id, 110).await?;
    let with_history = p.flag("IncludeHistory")?.unwrap_or(false);
    let page = scope.page(p)?;
    if let Some(id) = filter.id {
        app.get_recurring_item(tenant, &RecordKey::Id(id), filter.include_deleted)
            .await
            .map_err(|e| from_app(e, request_id))?;
    }
    let found = app
        .list_recurring_items(tenant, &filter, page)
        .await
        .map_err(|e| from_app(e, request_id))?;
    let today = app.today(tenant);
    let data = found
        .items
        .iter()
        .map(|item| RecurringItemOut::new(item, today, with_history))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| internal(&e, request_id))?;
    let cursor = scope.next_cursor(&found);
    Ok(envelope::page(&data, found.total, cursor.as_deref()))
}

/// The filter of a list of items (recurring, 110, or one-time, 75), and the
/// list it names (for its cursors).
pub(crate) async fn filter<I>(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
    entity: i64,
) -> Result<(ItemFilter<I>, ListScope), DoorError>
where
    I: From<i64> + std::fmt::Display + Copy,
{
    let include_deleted = p.flag(INCLUDE_DELETED)?.unwrap_or(false);
    let filter = ItemFilter {
        id: p.id(ID)?,
        ext_id: p.text(EXT_ID, MAX_TEXT)?,
        plan_id: item_plan_filter(app, tenant, p, request_id).await?,
        include_deleted,
    };
    let scope = ListScope::new(tenant, entity)
        .with(ID, filter.id)
        .with(EXT_ID, filter.ext_id.as_deref())
        .with("PlanID", filter.plan_id)
        .with(INCLUDE_DELETED, include_deleted.then_some(1));
    Ok((filter, scope))
}

/// `PlanID` or `PlanExtID` as a list filter: an unknown plan is error "3".
pub async fn item_plan_filter(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Option<PlanId>, DoorError> {
    match plan_key(p)? {
        None => Ok(None),
        Some(key) => {
            let plan = app
                .get_plan(tenant, &key, true)
                .await
                .map_err(|e| from_app(e, request_id))?;
            Ok(Some(plan.id))
        }
    }
}

fn written(item: &dynabill_app::model::RecurringItem) -> Reply {
    envelope::written(&item.id.to_string(), &item.fields.ext_id)
}

pub async fn upsert(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let id = p.id(ID)?;
    let patch = patch(p)?;
    let item = app
        .upsert_recurring_item(tenant, id, patch)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(written(&item))
}

pub async fn delete(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let key = required_key(p, "to delete a recurring item")?;
    let item = app
        .delete_recurring_item(tenant, &key)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(written(&item))
}

pub async fn renew(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let key = required_key(p, "to renew a recurring item")?;
    let item = app
        .renew_recurring_item(tenant, &key, renew_args(p)?)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(written(&item))
}

/// An item renewal's new term and price.
pub(crate) fn renew_args(p: &Params) -> Result<Renewal, DoorError> {
    let (end_date, term_months) = renewal_term(p)?;
    Ok(Renewal {
        end_date,
        term_months,
        unit_price: unit_price(p)?,
    })
}

pub async fn upsell(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let key = required_key(p, "to upsell a recurring item")?;
    let item = app
        .upsell_recurring_item(tenant, &key, upsell_args(p)?)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(written(&item))
}

/// An upsell's new terms, its date and its proration.
pub(crate) fn upsell_args(p: &Params) -> Result<Upsell, DoorError> {
    Ok(Upsell {
        quantity: quantity(p)?,
        unit_price: unit_price(p)?,
        effective: p.required_date("EffectiveDate")?,
        mode: p
            .coded(
                "ProrationMode",
                ProrationMode::from_code,
                "1 (prorate by day) or 0 (from the next period)",
            )?
            .unwrap_or(ProrationMode::ByDay),
    })
}

pub async fn cancel(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let key = required_key(p, "to cancel a recurring item")?;
    let (at, credit) = cancel_args(p)?;
    let item = app
        .cancel_recurring_item(tenant, &key, at, credit)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(written(&item))
}

/// When an item cancel takes effect, and whether it credits (default: yes).
pub(crate) fn cancel_args(p: &Params) -> Result<(CancelAt, bool), DoorError> {
    let date = p.required_date("CancelDate")?;
    let at = match p.int("CancelAt")? {
        None | Some(1) => CancelAt::Date(date),
        Some(2) if date.is_some() => {
            return Err(DoorError::invalid(
                "CancelAt",
                "2 (end of the billed period) cannot be combined with a CancelDate",
            ));
        }
        Some(2) => CancelAt::EndOfBilledPeriod,
        Some(other) => {
            return Err(DoorError::invalid(
                "CancelAt",
                format!("must be 1 (on CancelDate) or 2 (end of the billed period), got {other}"),
            ));
        }
    };
    let credit = p.flag("CreditMode").map_err(|_| {
        DoorError::invalid("CreditMode", "must be 1 (prorated credit) or 0 (no credit)")
    })?;
    Ok((at, credit.unwrap_or(true)))
}

pub async fn change_dates(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let key = required_key(p, "to change a recurring item's dates")?;
    let (start, end) = dates_args(p)?;
    let item = app
        .change_recurring_item_dates(tenant, &key, start, end)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(written(&item))
}

/// A change of dates: the new `StartDate` and `EndDate` (null: open-ended).
pub(crate) type DatesChange = (Option<jiff::civil::Date>, Option<Option<jiff::civil::Date>>);

pub(crate) fn dates_args(p: &Params) -> Result<DatesChange, DoorError> {
    Ok((p.required_date("StartDate")?, p.date("EndDate")?))
}
