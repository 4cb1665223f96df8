//! Renewals: of one recurring item (12/110), and of a plan with its items (12/71).

use dynabill_core::domain::{PlanId, RecurringItemId};
use dynabill_core::items::renewed_end;
use jiff::civil::Date;
use rust_decimal::Decimal;

use crate::App;
use crate::error::{AppError, Field};
use crate::model::{
    ItemChangeKind, ItemFilter, ItemWrite, Plan, PlanFields, RecordKey, RecurringItem, Tenant,
};
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
            let new_end = match item.fields.end_date {
                Some(end) => renewal.new_end(end, &plan)?,
                None => return Err(evergreen(item)),
            };
            renewal_write(item, new_end, renewal.unit_price, now)
        })
        .await
    }

    /// Renew a plan (12/71): moves the plan's `EndDate` by its renewal term (or to
    /// a given date) and, with it, the `EndDate` of every uncancelled item that
    /// ended with the plan (BILLING.md §4, Renew), all at once. An item with an end
    /// of its own keeps it: only 12/110 renews it. Auto-renewal is this, without
    /// parameters, one term at a time.
    pub async fn renew_plan(
        &self,
        tenant: &Tenant,
        key: &RecordKey<PlanId>,
        renewal: Renewal,
    ) -> Result<Plan, AppError> {
        let renewal = &renewal;
        until_done("plan", move || async move {
            let plan = self.get_plan(tenant, key, false).await?;
            let filter = ItemFilter {
                plan_id: Some(plan.id),
                ..ItemFilter::default()
            };
            let items = self.all_recurring_items(tenant, &filter).await?;
            let now = self.clock().now();
            let (fields, writes) = plan_renewal(&plan, &items, renewal, now)?;
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

impl App {
    /// What the bill run would create for the plan's account before and after
    /// renewing the plan, writing nothing: the renewal's rule (`plan_renewal`)
    /// applied to the account's billing snapshot in memory. The run previewed is
    /// the one dated the plan's current end (when the renewed term starts), or
    /// today if that is later.
    pub async fn preview_plan_renewal(
        &self,
        tenant: &Tenant,
        key: &RecordKey<PlanId>,
        renewal: &Renewal,
    ) -> Result<super::EditPreview, AppError> {
        let plan = self.get_plan(tenant, key, false).await?;
        let filter = ItemFilter {
            plan_id: Some(plan.id),
            ..ItemFilter::default()
        };
        let items = self.all_recurring_items(tenant, &filter).await?;
        let (fields, writes) = plan_renewal(&plan, &items, renewal, self.clock().now())?;
        let today = self.today(tenant);
        let date = plan.fields.end_date.map_or(today, |end| end.max(today));
        let before = self.preview_bills(tenant, date, &[plan.account_id]).await?;
        let after = self
            .preview_bills_with(tenant, date, &[plan.account_id], &|account| {
                if let Some(p) = account.plans.iter_mut().find(|p| p.id == plan.id) {
                    p.fields = fields.clone();
                }
                for write in &writes {
                    crate::billing::apply_item_write(&mut account.items, write);
                }
                Ok(())
            })
            .await?;
        Ok(super::EditPreview::new(date, before, after))
    }
}

/// What renewing `plan` (whose live items are `items`) comes to: the plan's new
/// fields and the writes of the items that ended with it (BILLING.md §4, Renew).
/// Pure: 12/71 and auto-renewal store it; a preview applies it in memory.
pub(crate) fn plan_renewal(
    plan: &Plan,
    items: &[RecurringItem],
    renewal: &Renewal,
    now: jiff::Timestamp,
) -> Result<(PlanFields, Vec<ItemWrite>), AppError> {
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
    let new_end = renewal.new_end(old_end, plan)?;
    if new_end <= old_end {
        return Err(AppError::invalid(
            Field::EndDate,
            format!("must be after the plan's current EndDate ({old_end})"),
        ));
    }
    let mut fields = plan.fields.clone();
    fields.end_date = Some(new_end);
    let writes = items
        .iter()
        .filter(|i| {
            i.plan_id == plan.id && i.cancellation.is_none() && i.fields.end_date == Some(old_end)
        })
        .map(|item| renewal_write(item, new_end, None, now))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((fields, writes))
}

impl Renewal {
    /// The new end of a term ending `end`: the given date, else `end` plus the term.
    fn new_end(&self, end: Date, plan: &Plan) -> Result<Date, AppError> {
        match self.end_date {
            Some(date) => Ok(date),
            None => Ok(renewed_end(
                end,
                self.term_months.unwrap_or(plan.fields.renewal_term_months),
            )?),
        }
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
