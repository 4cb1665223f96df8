//! Recurring-item use cases (entity 110): create-or-update (`upsert`), the edits of
//! a live item (`edits`: upsell, cancel, change dates, delete), renewals of an
//! item or a whole plan (`renewal`, 12/110 and 12/71); here the reads and the
//! rules they share.

mod edits;

pub(crate) use edits::cancellation_write;
pub use edits::{EditPreview, ItemEdit};
mod renewal;
mod upsert;

pub(crate) use renewal::plan_renewal;

use dynabill_core::calendar::ProrationMode;
use dynabill_core::domain::{PlanId, RecurringItemId};
use jiff::civil::Date;
use rust_decimal::Decimal;

use crate::App;
use crate::accounts::not_found_by_key;
use crate::error::{AppError, Entity, Field};
use crate::model::{
    ItemChange, ItemChangeKind, ItemFilter, ItemWrite, Page, PageRequest, Plan, RecordKey,
    RecurringItem, RecurringItemFields, Tenant,
};

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

/// A renewal (12/110 and 12/71): a given new end, or a term in months added to the
/// current end (`term_months`, else the plan's `RenewalTermMonths`).
#[derive(Clone, Debug, Default)]
pub struct Renewal {
    pub end_date: Option<Date>,
    pub term_months: Option<u32>,
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

impl App {
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

    /// Every item matching `filter`, page by page.
    async fn all_recurring_items(
        &self,
        tenant: &Tenant,
        filter: &ItemFilter<RecurringItemId>,
    ) -> Result<Vec<RecurringItem>, AppError> {
        let mut items = Vec::new();
        let mut request = PageRequest::first(1000);
        loop {
            let page = self
                .store()
                .list_recurring_items(tenant.id, filter, request)
                .await?;
            let next = request.next(&page);
            items.extend(page.items);
            match next {
                Some(next) => request = next,
                None => return Ok(items),
            }
        }
    }
}
