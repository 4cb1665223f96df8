//! Create-or-update of a recurring item (10/110).

use dynabill_core::domain::{BillingTiming, RecurringItemId};

use crate::App;
use crate::error::{AppError, Entity, Field};
use crate::model::{
    ItemChange, ItemChangeKind, ItemWrite, Plan, RecordKey, RecurringItem, RecurringItemFields,
    RecurringItemPatch, Tenant,
};
use crate::races::{Attempt, settle_upsert, until_done};

use super::{change, check_dates, not_allowed, require_live, require_never_invoiced, write};

impl App {
    /// Create-or-update (10/110). Descriptive fields change at any time; the
    /// commercial terms only while the item has never been invoiced.
    pub async fn upsert_recurring_item(
        &self,
        tenant: &Tenant,
        id: Option<RecurringItemId>,
        patch: RecurringItemPatch,
    ) -> Result<RecurringItem, AppError> {
        self.write_recurring_item(tenant, id, patch, false).await
    }

    /// Create only (the REST face's create): a new record, refused with
    /// [`AppError::Duplicate`] when its `ExtID` is taken (never an update).
    pub async fn create_recurring_item(
        &self,
        tenant: &Tenant,
        patch: RecurringItemPatch,
    ) -> Result<RecurringItem, AppError> {
        self.write_recurring_item(tenant, None, patch, true).await
    }

    async fn write_recurring_item(
        &self,
        tenant: &Tenant,
        id: Option<RecurringItemId>,
        patch: RecurringItemPatch,
        create_only: bool,
    ) -> Result<RecurringItem, AppError> {
        let patch = &patch;
        until_done("item", move || async move {
            // Read inside the loop: a plan cancelled or deleted meanwhile makes the
            // insert stale, and the next attempt must see why.
            let plan = match &patch.plan {
                Some(key) => Some(self.parent_plan(tenant, key).await?),
                None => None,
            };
            let existing = self.item_for_upsert(tenant, id, patch, create_only).await?;
            let now = self.clock().now();
            let result = match existing {
                None => {
                    let Some(plan) = &plan else {
                        return Err(AppError::Missing {
                            field: Field::PlanId,
                            context: "(or PlanExtID) to create a recurring item",
                        });
                    };
                    if let Some(date) = plan.cancel_date {
                        return Err(not_allowed(format!(
                            "plan {:?} is cancelled (from {date}); it takes no new items",
                            plan.fields.ext_id
                        )));
                    }
                    let (fields, created) = new_item(patch.clone(), plan, now)?;
                    self.store()
                        .insert_recurring_item(tenant.id, plan.id, &fields, &created, now)
                        .await
                }
                Some(current) => {
                    let Some(write) = updated_item(&current, patch.clone(), plan.as_ref(), now)?
                    else {
                        return Ok(Attempt::Done(current));
                    };
                    match self
                        .store()
                        .write_recurring_items(tenant.id, None, &[write], now)
                        .await
                    {
                        Ok(()) => {
                            return self
                                .get_recurring_item(tenant, &RecordKey::Id(current.id), true)
                                .await
                                .map(Attempt::Done);
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            settle_upsert(result, id.is_some(), || AppError::Duplicate {
                field: Field::ExtId,
                reason: format!(
                    "another recurring item already has ExtID {:?}",
                    patch.ext_id.clone().unwrap_or_default()
                ),
            })
        })
        .await
    }

    async fn item_for_upsert(
        &self,
        tenant: &Tenant,
        id: Option<RecurringItemId>,
        patch: &RecurringItemPatch,
        create_only: bool,
    ) -> Result<Option<RecurringItem>, AppError> {
        if let Some(id) = id {
            let found = self
                .store()
                .find_recurring_item(tenant.id, &RecordKey::Id(id))
                .await?;
            return found.map(Some).ok_or(AppError::not_found(
                Entity::RecurringItem,
                Field::Id,
                id,
            ));
        }
        let Some(ext_id) = &patch.ext_id else {
            return Ok(None);
        };
        let found = self
            .store()
            .find_recurring_item(tenant.id, &RecordKey::ExtId(ext_id.clone()))
            .await?;
        if let Some(item) = &found
            && item.deleted_at.is_some()
        {
            return Err(AppError::Duplicate {
                field: Field::ExtId,
                reason: format!(
                    "ExtID {ext_id:?} belonged to a recurring item that was deleted; an ExtID is never reused"
                ),
            });
        }
        if create_only && found.is_some() {
            return Err(AppError::Duplicate {
                field: Field::ExtId,
                reason: format!("a recurring item with ExtID {ext_id:?} already exists"),
            });
        }
        Ok(found)
    }
}

/// A new item's fields and its creation entry, from a create call.
fn new_item(
    patch: RecurringItemPatch,
    plan: &Plan,
    now: jiff::Timestamp,
) -> Result<(RecurringItemFields, ItemChange), AppError> {
    let context = "to create a recurring item";
    let missing = |field| AppError::Missing { field, context };
    let fields = RecurringItemFields {
        ext_id: patch.ext_id.ok_or(missing(Field::ExtId))?,
        product_code: patch.product_code.ok_or(missing(Field::ProductCode))?,
        name: patch.name.ok_or(missing(Field::ItemName))?,
        description: patch.description.flatten(),
        tax_code: patch.tax_code.flatten(),
        billing_period: patch.billing_period.ok_or(missing(Field::BillingPeriod))?,
        period_count: patch.period_count.unwrap_or(1),
        timing: patch.timing.unwrap_or(BillingTiming::InAdvance),
        start_date: patch.start_date.unwrap_or(plan.fields.start_date),
        end_date: patch.end_date.unwrap_or(plan.fields.end_date),
    };
    let quantity = patch.quantity.ok_or(missing(Field::Quantity))?;
    let unit_price = patch.unit_price.ok_or(missing(Field::UnitPrice))?;
    check_dates(&fields)?;
    let mut created = change(ItemChangeKind::Created, fields.start_date, &fields, now);
    created.quantity = Some(quantity);
    created.unit_price = Some(unit_price);
    created.discount_percent = Some(patch.discount_percent.unwrap_or_default());
    Ok((fields, created))
}

/// The write an update call makes, or `None` when it changes nothing.
fn updated_item(
    current: &RecurringItem,
    patch: RecurringItemPatch,
    plan: Option<&Plan>,
    now: jiff::Timestamp,
) -> Result<Option<ItemWrite>, AppError> {
    if current.deleted_at.is_some() {
        return Err(not_allowed(format!(
            "recurring item {:?} was deleted and cannot be changed",
            current.fields.ext_id
        )));
    }
    if let Some(plan) = plan
        && plan.id != current.plan_id
    {
        return Err(AppError::Duplicate {
            field: Field::ExtId,
            reason: format!(
                "recurring item {:?} belongs to plan {:?}; an item cannot move to another plan",
                current.fields.ext_id, current.plan_ext_id
            ),
        });
    }
    let base = current.timeline()?.terms_at(current.fields.start_date);
    let mut fields = current.fields.clone();
    macro_rules! take {
        ($($field:ident),*) => {$( if let Some(v) = patch.$field.clone() { fields.$field = v; } )*};
    }
    take!(
        ext_id,
        product_code,
        name,
        description,
        tax_code,
        billing_period,
        period_count,
        timing,
        start_date,
        end_date
    );
    let quantity = patch.quantity.filter(|q| *q != base.quantity());
    let unit_price = patch.unit_price.filter(|p| *p != base.unit_price());
    let discount = patch
        .discount_percent
        .filter(|d| *d != base.discount_percent());
    let terms_change = quantity.is_some() || unit_price.is_some() || discount.is_some();
    let commercial_change = terms_change
        || fields.billing_period != current.fields.billing_period
        || fields.period_count != current.fields.period_count
        || fields.timing != current.fields.timing
        || fields.start_date != current.fields.start_date
        || fields.end_date != current.fields.end_date;
    if commercial_change {
        require_live(current, "given new terms")?;
        require_never_invoiced(
            current,
            "its terms change only through upsell (13), renew (12), cancel (14) or change dates (15)",
        )?;
        check_dates(&fields)?;
    }
    if !commercial_change && fields == current.fields {
        return Ok(None);
    }
    let mut entry = change(ItemChangeKind::Updated, fields.start_date, &fields, now);
    entry.quantity = quantity;
    entry.unit_price = unit_price;
    entry.discount_percent = discount;
    Ok(Some(write(current, fields, entry)))
}
