//! One-time item use cases (entity 75): create-or-update, read, list, delete.
//! A one-time item changes only while it is Pending (not invoiced, not cancelled).

use dynabill_core::domain::{OneTimeItemId, OneTimeStatus};
use jiff::civil::Date;

use crate::App;
use crate::accounts::not_found_by_key;
use crate::error::{AppError, Entity, Field};
use crate::model::{
    ItemFilter, OneTimeItem, OneTimeItemFields, OneTimeItemPatch, OneTimeMark, Page, PageRequest,
    Plan, RecordKey, Tenant,
};
use crate::races::{Attempt, settle, settle_upsert, until_done};

fn new_one_time(patch: OneTimeItemPatch, today: Date) -> Result<OneTimeItemFields, AppError> {
    let context = "to create a one-time item";
    let missing = |field| AppError::Missing { field, context };
    Ok(OneTimeItemFields {
        ext_id: patch.ext_id.ok_or(missing(Field::ExtId))?,
        product_code: patch.product_code.ok_or(missing(Field::ProductCode))?,
        name: patch.name.ok_or(missing(Field::ItemName))?,
        description: patch.description.flatten(),
        quantity: patch.quantity.ok_or(missing(Field::Quantity))?,
        unit_price: patch.unit_price.ok_or(missing(Field::UnitPrice))?,
        charge_date: patch.charge_date.unwrap_or(today),
        tax_code: patch.tax_code.flatten(),
    })
}

fn apply(patch: OneTimeItemPatch, current: &OneTimeItemFields) -> OneTimeItemFields {
    let mut f = current.clone();
    macro_rules! take {
        ($($field:ident),*) => {$( if let Some(v) = patch.$field { f.$field = v; } )*};
    }
    take!(
        ext_id,
        product_code,
        name,
        description,
        quantity,
        unit_price,
        charge_date,
        tax_code
    );
    f
}

/// Only a Pending item may change.
fn require_pending(item: &OneTimeItem, doing: &str) -> Result<(), AppError> {
    if item.deleted_at.is_some() {
        return Err(AppError::NotAllowed(format!(
            "one-time item {:?} is deleted; it cannot be {doing}",
            item.fields.ext_id
        )));
    }
    match item.status() {
        OneTimeStatus::Pending => Ok(()),
        OneTimeStatus::Invoiced => Err(AppError::NotAllowed(format!(
            "one-time item {:?} has been invoiced; it cannot be {doing}",
            item.fields.ext_id
        ))),
        OneTimeStatus::Cancelled => Err(AppError::NotAllowed(format!(
            "one-time item {:?} is cancelled; it cannot be {doing}",
            item.fields.ext_id
        ))),
    }
}

impl App {
    /// Create-or-update (10/75).
    pub async fn upsert_one_time_item(
        &self,
        tenant: &Tenant,
        id: Option<OneTimeItemId>,
        patch: OneTimeItemPatch,
    ) -> Result<OneTimeItem, AppError> {
        self.write_one_time_item(tenant, id, patch, false).await
    }

    /// Create only (the REST face's create): a new record, refused with
    /// [`AppError::Duplicate`] when its `ExtID` is taken (never an update).
    pub async fn create_one_time_item(
        &self,
        tenant: &Tenant,
        patch: OneTimeItemPatch,
    ) -> Result<OneTimeItem, AppError> {
        self.write_one_time_item(tenant, None, patch, true).await
    }

    /// What the bill run for `date` would create for the plan's account before
    /// and after a new one-time item made of `patch`, writing nothing: the item is
    /// added, Pending, to the account's billing snapshot in memory.
    pub async fn preview_one_time_item(
        &self,
        tenant: &Tenant,
        patch: OneTimeItemPatch,
        date: Date,
    ) -> Result<crate::recurring::EditPreview, AppError> {
        let Some(key) = &patch.plan else {
            return Err(AppError::Missing {
                field: Field::PlanId,
                context: "(or PlanExtID) to create a one-time item",
            });
        };
        let plan = self.parent_plan(tenant, key).await?;
        let now = self.clock().now();
        let item = OneTimeItem {
            id: OneTimeItemId(0),
            plan_id: plan.id,
            plan_ext_id: plan.fields.ext_id.clone(),
            account_id: plan.account_id,
            fields: new_one_time(patch.clone(), self.today(tenant))?,
            cancelled_at: None,
            invoiced: false,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            version: 1,
        };
        let before = self.preview_bills(tenant, date, &[plan.account_id]).await?;
        let after = self
            .preview_bills_with(tenant, date, &[plan.account_id], &|account| {
                account.one_time.push(item.clone());
                Ok(())
            })
            .await?;
        Ok(crate::recurring::EditPreview::new(date, before, after))
    }

    async fn write_one_time_item(
        &self,
        tenant: &Tenant,
        id: Option<OneTimeItemId>,
        patch: OneTimeItemPatch,
        create_only: bool,
    ) -> Result<OneTimeItem, AppError> {
        let patch = &patch;
        until_done("item", move || async move {
            // Read inside the loop: a plan deleted meanwhile makes the insert stale,
            // and the next attempt must see why.
            let plan: Option<Plan> = match &patch.plan {
                Some(key) => Some(self.parent_plan(tenant, key).await?),
                None => None,
            };
            let existing = self.one_time_for_upsert(tenant, id, patch, create_only).await?;
            let now = self.clock().now();
            let result = match existing {
                None => {
                    let Some(plan) = &plan else {
                        return Err(AppError::Missing {
                            field: Field::PlanId,
                            context: "(or PlanExtID) to create a one-time item",
                        });
                    };
                    let fields = new_one_time(patch.clone(), self.today(tenant))?;
                    self.store()
                        .insert_one_time_item(tenant.id, plan.id, &fields, now)
                        .await
                }
                Some(current) => {
                    if let Some(plan) = &plan
                        && plan.id != current.plan_id
                    {
                        return Err(AppError::Duplicate {
                            field: Field::ExtId,
                            reason: format!(
                                "one-time item {:?} belongs to plan {:?}; an item cannot move to another plan",
                                current.fields.ext_id, current.plan_ext_id
                            ),
                        });
                    }
                    let fields = apply(patch.clone(), &current.fields);
                    if fields == current.fields {
                        return Ok(Attempt::Done(current));
                    }
                    require_pending(&current, "changed")?;
                    self.store()
                        .update_one_time_item(
                            tenant.id,
                            current.id,
                            current.version,
                            &fields,
                            OneTimeMark::Fields,
                            now,
                        )
                        .await
                }
            };
            settle_upsert(result, id.is_some(), || AppError::Duplicate {
                field: Field::ExtId,
                reason: format!(
                    "another one-time item already has ExtID {:?}",
                    patch.ext_id.clone().unwrap_or_default()
                ),
            })
        })
        .await
    }

    async fn one_time_for_upsert(
        &self,
        tenant: &Tenant,
        id: Option<OneTimeItemId>,
        patch: &OneTimeItemPatch,
        create_only: bool,
    ) -> Result<Option<OneTimeItem>, AppError> {
        if let Some(id) = id {
            let found = self
                .store()
                .find_one_time_item(tenant.id, &RecordKey::Id(id))
                .await?;
            return found
                .map(Some)
                .ok_or(AppError::not_found(Entity::OneTimeItem, Field::Id, id));
        }
        let Some(ext_id) = &patch.ext_id else {
            return Ok(None);
        };
        let found = self
            .store()
            .find_one_time_item(tenant.id, &RecordKey::ExtId(ext_id.clone()))
            .await?;
        if let Some(item) = &found
            && item.deleted_at.is_some()
        {
            return Err(AppError::Duplicate {
                field: Field::ExtId,
                reason: format!(
                    "ExtID {ext_id:?} belonged to a one-time item that was deleted; an ExtID is never reused"
                ),
            });
        }
        if create_only && found.is_some() {
            return Err(AppError::Duplicate {
                field: Field::ExtId,
                reason: format!("a one-time item with ExtID {ext_id:?} already exists"),
            });
        }
        Ok(found)
    }

    pub async fn get_one_time_item(
        &self,
        tenant: &Tenant,
        key: &RecordKey<OneTimeItemId>,
        include_deleted: bool,
    ) -> Result<OneTimeItem, AppError> {
        let found = self.store().find_one_time_item(tenant.id, key).await?;
        match found {
            Some(item) if include_deleted || item.deleted_at.is_none() => Ok(item),
            _ => Err(not_found_by_key(Entity::OneTimeItem, key)),
        }
    }

    /// List (3/75), with the plan-`ExtID` reading of the `ExtID` filter.
    pub async fn list_one_time_items(
        &self,
        tenant: &Tenant,
        filter: &ItemFilter<OneTimeItemId>,
        page: PageRequest,
    ) -> Result<Page<OneTimeItem>, AppError> {
        let filter = self
            .item_filter_by_plan_ext_id(tenant, filter, Entity::OneTimeItem)
            .await?;
        Ok(self
            .store()
            .list_one_time_items(tenant.id, &filter, page)
            .await?)
    }

    /// Delete (11/75): only while Pending; the item is cancelled and hidden.
    pub async fn delete_one_time_item(
        &self,
        tenant: &Tenant,
        key: &RecordKey<OneTimeItemId>,
    ) -> Result<OneTimeItem, AppError> {
        until_done("item", move || async move {
            let item = self.get_one_time_item(tenant, key, true).await?;
            require_pending(&item, "deleted")?;
            let now = self.clock().now();
            settle(
                self.store()
                    .update_one_time_item(
                        tenant.id,
                        item.id,
                        item.version,
                        &item.fields,
                        OneTimeMark::CancelledAndDeleted,
                        now,
                    )
                    .await,
            )
        })
        .await
    }
}
