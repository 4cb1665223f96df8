//! Renewals: of one recurring item (12/110), and of a plan with its items (12/71).

use dynabill_core::domain::{PlanId, RecurringItemId};
use dynabill_core::items::renewed_end;
use jiff::civil::Date;
use rust_decimal::Decimal;

use crate::App;
use crate::error::{AppError, Field};
use crate::model::{ItemChangeKind, ItemFilter, ItemWrite, Plan, RecordKey, RecurringItem, Tenant};
use crate::races::{Attempt, until_done};
use crate::store::StoreError;

use super::{Renewal, change, not_allowed, require_live, write};

impl App {
    /// Renew (12/110): moves `EndDate` by the plan's renewal term, or to a given date.
    pub async fn renew_recurring_item(
        &self,
        tenant: &Tenant,
        key: &RecordKey<RecurringItemId>,
        renewal: Renewal,
    ) -> Result<RecurringItem, AppError> {
        let item = self.get_recurring_item(tenant, key, false).await?;
        let plan = self
            .get_plan(tenant, &RecordKey::Id(item.plan_id), true)
            .await?;
        self.edit_item(tenant, key, |item, _, now| {
            let new_end = match renewal.end_date {
                Some(end) => end,
                None => match item.fields.end_date {
                    Some(end) => renewed_end(end, plan.fields.renewal_term_months)?,
                    None => return Err(evergreen(item)),
                },
            };
            renewal_write(item, new_end, renewal.unit_price, now)
        })
        .await
    }

    /// Renew a plan (12/71): moves the plan's `EndDate` by its renewal term (or to
    /// a given date) and renews each of its live items that end, all at once.
    pub async fn renew_plan(
        &self,
        tenant: &Tenant,
        key: &RecordKey<PlanId>,
        renewal: Renewal,
    ) -> Result<Plan, AppError> {
        until_done("plan", move || async move {
            let plan = self.get_plan(tenant, key, false).await?;
            if let Some(date) = plan.cancel_date {
                return Err(not_allowed(format!(
                    "plan {:?} is cancelled (from {date}); it cannot be renewed",
                    plan.fields.ext_id
                )));
            }
            let Some(old_end) = plan.fields.end_date else {
                return Err(not_allowed(format!(
                    "plan {:?} is evergreen (no EndDate); there is nothing to renew",
                    plan.fields.ext_id
                )));
            };
            let months = plan.fields.renewal_term_months;
            let new_end = match renewal.end_date {
                Some(end) => end,
                None => renewed_end(old_end, months)?,
            };
            if new_end <= old_end {
                return Err(AppError::invalid(
                    Field::EndDate,
                    format!("must be after the plan's current EndDate ({old_end})"),
                ));
            }
            let mut fields = plan.fields.clone();
            fields.end_date = Some(new_end);
            let filter = ItemFilter {
                plan_id: Some(plan.id),
                ..ItemFilter::default()
            };
            let items = self.all_recurring_items(tenant, &filter).await?;
            let now = self.clock().now();
            let mut writes = Vec::new();
            for item in items
                .iter()
                .filter(|i| i.cancellation.is_none() && i.fields.end_date.is_some())
            {
                let item_end = match (renewal.end_date, item.fields.end_date) {
                    (Some(end), _) => end,
                    (None, Some(end)) if end == old_end => new_end,
                    (None, Some(end)) => renewed_end(end, months)?,
                    (None, None) => return Ok(Attempt::Lost),
                };
                if item.fields.end_date.is_some_and(|end| item_end > end) {
                    writes.push(renewal_write(item, item_end, None, now)?);
                }
            }
            match self
                .store()
                .write_recurring_items(
                    tenant.id,
                    Some((plan.id, plan.version, &fields)),
                    &writes,
                    now,
                )
                .await
            {
                Ok(()) => self
                    .get_plan(tenant, &RecordKey::Id(plan.id), false)
                    .await
                    .map(Attempt::Done),
                Err(StoreError::Stale) => Ok(Attempt::Lost),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }
}

fn evergreen(item: &RecurringItem) -> AppError {
    not_allowed(format!(
        "recurring item {:?} is evergreen (no EndDate); there is nothing to renew",
        item.fields.ext_id
    ))
}

fn renewal_write(
    item: &RecurringItem,
    new_end: Date,
    unit_price: Option<Decimal>,
    now: jiff::Timestamp,
) -> Result<ItemWrite, AppError> {
    require_live(item, "renewed")?;
    let Some(old_end) = item.fields.end_date else {
        return Err(evergreen(item));
    };
    if new_end <= old_end {
        return Err(AppError::invalid(
            Field::EndDate,
            format!("must be after the item's current EndDate ({old_end})"),
        ));
    }
    let mut fields = item.fields.clone();
    fields.end_date = Some(new_end);
    // The new price applies to the new term, from the old end.
    let mut entry = change(ItemChangeKind::Renewal, old_end, &fields, now);
    entry.unit_price = unit_price;
    Ok(write(item, fields, entry))
}
