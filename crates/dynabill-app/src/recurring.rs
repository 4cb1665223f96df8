//! Recurring-item use cases (entity 110): create-or-update, read, list, delete,
//! renew, upsell, cancel, change dates; and renewing a whole plan (12/71).

use dynabill_core::calendar::ProrationMode;
use dynabill_core::domain::{BillingTiming, PlanId, RecurringItemId};
use dynabill_core::items::{end_of_current_period, renewed_end};
use jiff::civil::Date;
use rust_decimal::Decimal;

use crate::App;
use crate::accounts::not_found_by_key;
use crate::error::{AppError, Entity, Field};
use crate::model::{
    Cancellation, ItemChange, ItemChangeKind, ItemFilter, ItemWrite, Page, PageRequest, Plan,
    RecordKey, RecurringItem, RecurringItemFields, RecurringItemPatch, Tenant,
};
use crate::races::{Attempt, settle_upsert, until_done};
use crate::store::StoreError;

/// How `CancelAt` places a cancellation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelAt {
    /// On `CancelDate` (default today).
    Date(Option<Date>),
    /// `CancelAt` 2: at the end of the current billed period.
    EndOfBilledPeriod,
}

/// An upsell (13/110): new quantity and/or price from a date.
#[derive(Clone, Debug)]
pub struct Upsell {
    pub quantity: Option<Decimal>,
    pub unit_price: Option<Decimal>,
    pub effective: Option<Date>,
    pub mode: ProrationMode,
}

/// A renewal (12/110 and 12/71): a given new end, or the plan's renewal term.
#[derive(Clone, Debug, Default)]
pub struct Renewal {
    pub end_date: Option<Date>,
    pub unit_price: Option<Decimal>,
}

fn change(
    kind: ItemChangeKind,
    effective_date: Date,
    fields: &RecurringItemFields,
    now: jiff::Timestamp,
) -> ItemChange {
    ItemChange {
        seq: 0,
        kind,
        effective_date,
        quantity: None,
        unit_price: None,
        discount_percent: None,
        start_date: fields.start_date,
        end_date: fields.end_date,
        prorate: None,
        credit: None,
        recorded_at: now,
    }
}

fn check_dates(fields: &RecurringItemFields) -> Result<(), AppError> {
    match fields.end_date {
        Some(end) if end <= fields.start_date => Err(AppError::invalid(
            Field::EndDate,
            format!("must be after StartDate ({})", fields.start_date),
        )),
        _ => Ok(()),
    }
}

fn not_allowed(message: String) -> AppError {
    AppError::NotAllowed(message)
}

/// The state rules shared by every operation that changes an item's future.
fn require_live(item: &RecurringItem, doing: &str) -> Result<(), AppError> {
    if item.deleted_at.is_some() {
        return Err(not_allowed(format!(
            "recurring item {:?} is deleted; it cannot be {doing}",
            item.fields.ext_id
        )));
    }
    if let Some(c) = item.cancellation {
        return Err(not_allowed(format!(
            "recurring item {:?} is cancelled (from {}); it cannot be {doing}",
            item.fields.ext_id, c.date
        )));
    }
    Ok(())
}

impl App {
    /// Create-or-update (10/110). Descriptive fields change at any time; the
    /// commercial terms only while the item has never been invoiced.
    pub async fn upsert_recurring_item(
        &self,
        tenant: &Tenant,
        id: Option<RecurringItemId>,
        patch: RecurringItemPatch,
    ) -> Result<RecurringItem, AppError> {
        let patch = &patch;
        until_done("item", move || async move {
            // Read inside the loop: a plan cancelled or deleted meanwhile makes the
            // insert stale, and the next attempt must see why.
            let plan = match &patch.plan {
                Some(key) => Some(self.parent_plan(tenant, key).await?),
                None => None,
            };
            let existing = self.item_for_upsert(tenant, id, &patch).await?;
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

    /// The live plan an item hangs from.
    pub(crate) async fn parent_plan(
        &self,
        tenant: &Tenant,
        key: &RecordKey<PlanId>,
    ) -> Result<Plan, AppError> {
        let found = self.store().find_plan(tenant.id, key).await?;
        match found {
            Some(p) if p.deleted_at.is_none() => Ok(p),
            _ => Err(match key {
                RecordKey::Id(id) => AppError::not_found(Entity::Plan, Field::PlanId, id),
                RecordKey::ExtId(ext) => AppError::not_found(Entity::Plan, Field::PlanExtId, ext),
            }),
        }
    }

    async fn item_for_upsert(
        &self,
        tenant: &Tenant,
        id: Option<RecurringItemId>,
        patch: &RecurringItemPatch,
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
        Ok(found)
    }

    pub async fn get_recurring_item(
        &self,
        tenant: &Tenant,
        key: &RecordKey<RecurringItemId>,
        include_deleted: bool,
    ) -> Result<RecurringItem, AppError> {
        let found = self.store().find_recurring_item(tenant.id, key).await?;
        match found {
            Some(item) if include_deleted || item.deleted_at.is_none() => Ok(item),
            _ => Err(not_found_by_key(Entity::RecurringItem, key)),
        }
    }

    /// List (3/110). An `ExtID` that names no item but a plan lists that plan's
    /// items, as DealHub's "list all recurring items by plan" does.
    pub async fn list_recurring_items(
        &self,
        tenant: &Tenant,
        filter: &ItemFilter<RecurringItemId>,
        page: PageRequest,
    ) -> Result<Page<RecurringItem>, AppError> {
        let filter = self
            .item_filter_by_plan_ext_id(tenant, filter, Entity::RecurringItem)
            .await?;
        Ok(self
            .store()
            .list_recurring_items(tenant.id, &filter, page)
            .await?)
    }

    /// Resolves the `ExtID` filter of an item list: an item's `ExtID` stays a get
    /// (absent: error "3"); a plan's becomes a plan filter.
    pub(crate) async fn item_filter_by_plan_ext_id<I: Clone>(
        &self,
        tenant: &Tenant,
        filter: &ItemFilter<I>,
        entity: Entity,
    ) -> Result<ItemFilter<I>, AppError> {
        let Some(ext_id) = &filter.ext_id else {
            return Ok(filter.clone());
        };
        let item_exists = match entity {
            Entity::OneTimeItem => self
                .store()
                .find_one_time_item(tenant.id, &RecordKey::ExtId(ext_id.clone()))
                .await?
                .is_some_and(|i| filter.include_deleted || i.deleted_at.is_none()),
            _ => self
                .store()
                .find_recurring_item(tenant.id, &RecordKey::ExtId(ext_id.clone()))
                .await?
                .is_some_and(|i| filter.include_deleted || i.deleted_at.is_none()),
        };
        if item_exists {
            return Ok(filter.clone());
        }
        match self
            .store()
            .find_plan(tenant.id, &RecordKey::ExtId(ext_id.clone()))
            .await?
        {
            Some(plan) if filter.include_deleted || plan.deleted_at.is_none() => {
                if filter.plan_id.is_some_and(|p| p != plan.id) {
                    return Ok(ItemFilter {
                        ext_id: Some(ext_id.clone()),
                        ..filter.clone()
                    });
                }
                Ok(ItemFilter {
                    ext_id: None,
                    plan_id: Some(plan.id),
                    ..filter.clone()
                })
            }
            _ => Err(AppError::not_found(entity, Field::ExtId, ext_id)),
        }
    }

    /// Applies `edit` to the item named by `key` and writes the result, retrying
    /// when a concurrent writer changed the item first.
    async fn edit_item(
        &self,
        tenant: &Tenant,
        key: &RecordKey<RecurringItemId>,
        edit: impl Fn(&RecurringItem, Date, jiff::Timestamp) -> Result<ItemWrite, AppError>,
    ) -> Result<RecurringItem, AppError> {
        let edit = &edit;
        until_done("item", move || async move {
            let item = self.get_recurring_item(tenant, key, true).await?;
            let now = self.clock().now();
            let write = edit(&item, self.today(tenant), now)?;
            match self
                .store()
                .write_recurring_items(tenant.id, None, &[write], now)
                .await
            {
                Ok(()) => {
                    return self
                        .get_recurring_item(tenant, &RecordKey::Id(item.id), true)
                        .await
                        .map(Attempt::Done);
                }
                Err(StoreError::Stale) => return Ok(Attempt::Lost),
                Err(e) => return Err(e.into()),
            }
        })
        .await
    }

    /// Upsell (13/110).
    pub async fn upsell_recurring_item(
        &self,
        tenant: &Tenant,
        key: &RecordKey<RecurringItemId>,
        upsell: Upsell,
    ) -> Result<RecurringItem, AppError> {
        if upsell.quantity.is_none() && upsell.unit_price.is_none() {
            return Err(AppError::Missing {
                field: Field::Quantity,
                context: "(or UnitPrice) to upsell an item",
            });
        }
        self.edit_item(tenant, key, |item, today, now| {
            require_live(item, "upsold")?;
            let requested = upsell.effective.unwrap_or(today);
            if requested < item.fields.start_date {
                return Err(not_allowed(format!(
                    "EffectiveDate {requested} is before the item's StartDate {}",
                    item.fields.start_date
                )));
            }
            let effective = upsell.mode.effective_date(item.grid()?, requested)?;
            if let Some(end) = item.fields.end_date
                && effective >= end
            {
                return Err(not_allowed(format!("the change would take effect on {effective}, when the item has already ended ({end})")));
            }
            let mut entry = change(ItemChangeKind::Upsell, effective, &item.fields, now);
            entry.quantity = upsell.quantity;
            entry.unit_price = upsell.unit_price;
            entry.prorate = Some(upsell.mode == ProrationMode::ByDay);
            Ok(write(item, item.fields.clone(), entry))
        })
        .await
    }

    /// Cancel (14/110).
    pub async fn cancel_recurring_item(
        &self,
        tenant: &Tenant,
        key: &RecordKey<RecurringItemId>,
        at: CancelAt,
        credit: bool,
    ) -> Result<RecurringItem, AppError> {
        self.edit_item(tenant, key, |item, today, now| {
            require_live(item, "cancelled")?;
            let date = match at {
                CancelAt::Date(date) => date.unwrap_or(today),
                CancelAt::EndOfBilledPeriod => end_of_current_period(
                    item.grid()?,
                    item.fields.start_date,
                    item.charged_through,
                    today,
                )?,
            };
            cancellation_write(item, date, credit, now)
        })
        .await
    }

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

    /// Change dates (15/110): only before the first invoice.
    pub async fn change_recurring_item_dates(
        &self,
        tenant: &Tenant,
        key: &RecordKey<RecurringItemId>,
        start: Option<Date>,
        end: Option<Option<Date>>,
    ) -> Result<RecurringItem, AppError> {
        if start.is_none() && end.is_none() {
            return Err(AppError::Missing {
                field: Field::StartDate,
                context: "(or EndDate) to change an item's dates",
            });
        }
        self.edit_item(tenant, key, |item, _, now| {
            require_live(item, "given new dates")?;
            require_never_invoiced(
                item,
                "its dates cannot change; cancel (14) or renew (12) it instead",
            )?;
            let mut fields = item.fields.clone();
            if let Some(start) = start {
                fields.start_date = start;
            }
            if let Some(end) = end {
                fields.end_date = end;
            }
            check_dates(&fields)?;
            let entry = change(
                ItemChangeKind::DatesChanged,
                fields.start_date,
                &fields,
                now,
            );
            Ok(write(item, fields, entry))
        })
        .await
    }

    /// Delete (11/110): only before the first invoice; the item is hidden, not erased.
    pub async fn delete_recurring_item(
        &self,
        tenant: &Tenant,
        key: &RecordKey<RecurringItemId>,
    ) -> Result<RecurringItem, AppError> {
        self.edit_item(tenant, key, |item, today, now| {
            if item.deleted_at.is_some() {
                return Err(not_allowed(format!(
                    "recurring item {:?} is already deleted",
                    item.fields.ext_id
                )));
            }
            require_never_invoiced(item, "it cannot be deleted; cancel it (14) instead")?;
            let mut w = write(
                item,
                item.fields.clone(),
                change(
                    ItemChangeKind::Deleted,
                    today.max(item.fields.start_date),
                    &item.fields,
                    now,
                ),
            );
            w.deleted = true;
            Ok(w)
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
                Ok(()) => {
                    return self
                        .get_plan(tenant, &RecordKey::Id(plan.id), false)
                        .await
                        .map(Attempt::Done);
                }
                Err(StoreError::Stale) => return Ok(Attempt::Lost),
                Err(e) => return Err(e.into()),
            }
        })
        .await
    }

    /// Every item matching `filter`, page by page.
    async fn all_recurring_items(
        &self,
        tenant: &Tenant,
        filter: &ItemFilter<RecurringItemId>,
    ) -> Result<Vec<RecurringItem>, AppError> {
        let mut items = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store()
                .list_recurring_items(tenant.id, filter, PageRequest { size: 1000, after })
                .await?;
            items.extend(page.items);
            match page.next_after {
                Some(next) => after = Some(next),
                None => return Ok(items),
            }
        }
    }
}

fn evergreen(item: &RecurringItem) -> AppError {
    not_allowed(format!(
        "recurring item {:?} is evergreen (no EndDate); there is nothing to renew",
        item.fields.ext_id
    ))
}

fn require_never_invoiced(item: &RecurringItem, consequence: &str) -> Result<(), AppError> {
    match item.charged_through {
        Some(through) => Err(not_allowed(format!(
            "recurring item {:?} has been invoiced (through {through}); {consequence}",
            item.fields.ext_id
        ))),
        None => Ok(()),
    }
}

fn write(item: &RecurringItem, fields: RecurringItemFields, change: ItemChange) -> ItemWrite {
    ItemWrite {
        id: item.id,
        version: item.version,
        fields,
        cancellation: item.cancellation,
        change,
        deleted: item.deleted_at.is_some(),
    }
}

fn cancellation_write(
    item: &RecurringItem,
    date: Date,
    credit: bool,
    now: jiff::Timestamp,
) -> Result<ItemWrite, AppError> {
    if date < item.fields.start_date {
        return Err(not_allowed(format!(
            "CancelDate {date} is before the item's StartDate {}",
            item.fields.start_date
        )));
    }
    if let Some(end) = item.fields.end_date
        && date > end
    {
        return Err(not_allowed(format!(
            "the item already ends on {end}, before CancelDate {date}"
        )));
    }
    let mut fields = item.fields.clone();
    fields.end_date = Some(date);
    let mut entry = change(ItemChangeKind::Cancellation, date, &fields, now);
    entry.credit = Some(credit);
    let mut w = write(item, fields, entry);
    w.cancellation = Some(Cancellation { date, credit });
    Ok(w)
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
