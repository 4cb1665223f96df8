//! Account plan use cases: create-or-update, read, list, cancel, delete.

use dynabill_core::domain::{AccountId, PlanId};
use jiff::civil::Date;

use crate::App;
use crate::accounts::not_found_by_key;
use crate::error::{AppError, Entity, Field};
use crate::model::{
    Account, Cancellation, Page, PageRequest, Plan, PlanFields, PlanFilter, PlanPatch, RecordKey,
    Tenant,
};
use crate::races::{Attempt, settle, settle_upsert, until_done};

/// The renewal term of a plan that names none (SPEC §4.2).
const DEFAULT_RENEWAL_TERM_MONTHS: u32 = 12;

impl PlanPatch {
    fn into_new(self, account: &Account, today: Date) -> Result<PlanFields, AppError> {
        Ok(PlanFields {
            ext_id: self.ext_id.ok_or(AppError::Missing {
                field: Field::ExtId,
                context: "to create a plan",
            })?,
            name: self.name.flatten(),
            start_date: self.start_date.unwrap_or(today),
            end_date: self.end_date.flatten(),
            auto_renew: self.auto_renew.unwrap_or(false),
            renewal_term_months: self
                .renewal_term_months
                .unwrap_or(DEFAULT_RENEWAL_TERM_MONTHS),
            billing_day: self.billing_day.flatten(),
            currency: self.currency.unwrap_or(account.fields.currency),
            po_number: self.po_number.flatten(),
            notes: self.notes.flatten(),
        })
    }

    fn apply_to(self, current: &PlanFields) -> PlanFields {
        let mut f = current.clone();
        macro_rules! take {
            ($($field:ident),*) => {$( if let Some(v) = self.$field { f.$field = v; } )*};
        }
        take!(
            ext_id,
            name,
            start_date,
            end_date,
            auto_renew,
            renewal_term_months,
            billing_day,
            currency,
            po_number,
            notes
        );
        f
    }
}

/// Rules between fields of a plan that no single field's parser can see.
fn check_plan(fields: &PlanFields) -> Result<(), AppError> {
    if let Some(end) = fields.end_date
        && end <= fields.start_date
    {
        return Err(AppError::invalid(
            Field::EndDate,
            format!("must be after StartDate ({})", fields.start_date),
        ));
    }
    Ok(())
}

impl App {
    /// Create-or-update (10/71). The parent account is named by `AccountID` or
    /// `AccountExtID`; a plan never moves to another account.
    pub async fn upsert_plan(
        &self,
        tenant: &Tenant,
        id: Option<PlanId>,
        patch: PlanPatch,
    ) -> Result<Plan, AppError> {
        self.write_plan(tenant, id, patch, false).await
    }

    /// Create only (the REST face's create): a new record, refused with
    /// [`AppError::Duplicate`] when its `ExtID` is taken (never an update).
    pub async fn create_plan(&self, tenant: &Tenant, patch: PlanPatch) -> Result<Plan, AppError> {
        self.write_plan(tenant, None, patch, true).await
    }

    async fn write_plan(
        &self,
        tenant: &Tenant,
        id: Option<PlanId>,
        patch: PlanPatch,
        create_only: bool,
    ) -> Result<Plan, AppError> {
        let patch = &patch;
        until_done("plan", move || async move {
            // Read inside the loop: an account deleted meanwhile makes the insert
            // stale, and the next attempt must see why.
            let account = match &patch.account {
                Some(key) => Some(self.parent_account(tenant, key).await?),
                None => None,
            };
            let existing = self.plan_for_upsert(tenant, id, patch, create_only).await?;
            let now = self.clock().now();
            let result = match existing {
                None => {
                    let Some(account) = &account else {
                        return Err(AppError::Missing {
                            field: Field::AccountId,
                            context: "(or AccountExtID) to create a plan",
                        });
                    };
                    let fields = patch.clone().into_new(account, self.today(tenant))?;
                    check_plan(&fields)?;
                    self.store()
                        .insert_plan(tenant.id, account.id, &fields, now)
                        .await
                }
                Some(current) => {
                    if current.deleted_at.is_some() {
                        return Err(AppError::NotAllowed(format!(
                            "plan {} was deleted and cannot be changed",
                            current.id
                        )));
                    }
                    if let Some(account) = &account
                        && account.id != current.account_id
                    {
                        return Err(AppError::Duplicate {
                            field: Field::ExtId,
                            reason: format!(
                                "plan {:?} belongs to account {:?}; a plan cannot move to another account",
                                current.fields.ext_id, current.account_ext_id
                            ),
                        });
                    }
                    let fields = patch.clone().apply_to(&current.fields);
                    check_plan(&fields)?;
                    if fields == current.fields {
                        return Ok(Attempt::Done(current));
                    }
                    self.store()
                        .update_plan(tenant.id, current.id, current.version, &fields, now)
                        .await
                }
            };
            settle_upsert(result, id.is_some(), || AppError::Duplicate {
                field: Field::ExtId,
                reason: format!(
                    "another plan already has ExtID {:?}",
                    patch.ext_id.clone().unwrap_or_default()
                ),
            })
        })
        .await
    }

    /// The live account a plan hangs from; a deleted account cannot take new plans.
    async fn parent_account(
        &self,
        tenant: &Tenant,
        key: &RecordKey<AccountId>,
    ) -> Result<Account, AppError> {
        let found = self.store().find_account(tenant.id, key).await?;
        match found {
            Some(a) if a.deleted_at.is_none() => Ok(a),
            _ => Err(match key {
                RecordKey::Id(id) => AppError::not_found(Entity::Account, Field::AccountId, id),
                RecordKey::ExtId(ext) => {
                    AppError::not_found(Entity::Account, Field::AccountExtId, ext)
                }
            }),
        }
    }

    async fn plan_for_upsert(
        &self,
        tenant: &Tenant,
        id: Option<PlanId>,
        patch: &PlanPatch,
        create_only: bool,
    ) -> Result<Option<Plan>, AppError> {
        if let Some(id) = id {
            let found = self
                .store()
                .find_plan(tenant.id, &RecordKey::Id(id))
                .await?;
            return found
                .map(Some)
                .ok_or(AppError::not_found(Entity::Plan, Field::Id, id));
        }
        let Some(ext_id) = &patch.ext_id else {
            return Ok(None);
        };
        let found = self
            .store()
            .find_plan(tenant.id, &RecordKey::ExtId(ext_id.clone()))
            .await?;
        if let Some(plan) = &found
            && plan.deleted_at.is_some()
        {
            return Err(AppError::Duplicate {
                field: Field::ExtId,
                reason: format!(
                    "ExtID {ext_id:?} belonged to a plan that was deleted; an ExtID is never reused"
                ),
            });
        }
        if create_only && found.is_some() {
            return Err(AppError::Duplicate {
                field: Field::ExtId,
                reason: format!("a plan with ExtID {ext_id:?} already exists"),
            });
        }
        Ok(found)
    }

    pub async fn get_plan(
        &self,
        tenant: &Tenant,
        key: &RecordKey<PlanId>,
        include_deleted: bool,
    ) -> Result<Plan, AppError> {
        let found = self.store().find_plan(tenant.id, key).await?;
        match found {
            Some(p) if include_deleted || p.deleted_at.is_none() => Ok(p),
            _ => Err(not_found_by_key(Entity::Plan, key)),
        }
    }

    pub async fn list_plans(
        &self,
        tenant: &Tenant,
        filter: &PlanFilter,
        page: PageRequest,
    ) -> Result<Page<Plan>, AppError> {
        Ok(self
            .store()
            .list_plans(tenant.id, filter, self.today(tenant), page)
            .await?)
    }

    /// Cancel (14/71): the plan ends at `cancel_date` (default today), and its
    /// running items with it, crediting billed days past the date when `credit`
    /// (`CreditMode` 1).
    pub async fn cancel_plan(
        &self,
        tenant: &Tenant,
        key: &RecordKey<PlanId>,
        cancel_date: Option<Date>,
        credit: bool,
    ) -> Result<Plan, AppError> {
        until_done("plan", move || async move {
            let plan = self.get_plan(tenant, key, false).await?;
            let cancellation = self.plan_cancellation(tenant, &plan, cancel_date, credit)?;
            settle(
                self.store()
                    .cancel_plan(
                        tenant.id,
                        plan.id,
                        plan.version,
                        cancellation,
                        self.clock().now(),
                    )
                    .await,
            )
        })
        .await
    }

    /// The cancellation of `plan` from `cancel_date` (default today), if allowed.
    fn plan_cancellation(
        &self,
        tenant: &Tenant,
        plan: &Plan,
        cancel_date: Option<Date>,
        credit: bool,
    ) -> Result<Cancellation, AppError> {
        if let Some(date) = plan.cancel_date {
            return Err(AppError::NotAllowed(format!(
                "plan {:?} is already cancelled (from {date})",
                plan.fields.ext_id
            )));
        }
        let date = cancel_date.unwrap_or_else(|| self.today(tenant));
        if date < plan.fields.start_date {
            return Err(AppError::NotAllowed(format!(
                "CancelDate {date} is before the plan's StartDate {}",
                plan.fields.start_date
            )));
        }
        Ok(Cancellation { date, credit })
    }

    /// What the bill run dated the cancellation (or today, if later) would
    /// create for the plan's account before and after cancelling the plan,
    /// writing nothing. The store cancels a plan in one statement per table
    /// (`PlanStore::cancel_plan`); here the same rule is applied to the billing
    /// snapshot: each live item of the plan that runs past the date ends there
    /// (not before its start), with the credit mode; the plan's pending one-time
    /// items charged on or after the date are dropped. The console's test makes
    /// the cancellation after previewing it and checks the run makes the same
    /// invoice.
    pub async fn preview_plan_cancel(
        &self,
        tenant: &Tenant,
        key: &RecordKey<PlanId>,
        cancel_date: Option<Date>,
        credit: bool,
    ) -> Result<crate::recurring::EditPreview, AppError> {
        let plan = self.get_plan(tenant, key, false).await?;
        let cancellation = self.plan_cancellation(tenant, &plan, cancel_date, credit)?;
        let date = cancellation.date.max(self.today(tenant));
        let now = self.clock().now();
        let before = self.preview_bills(tenant, date, &[plan.account_id]).await?;
        let after = self
            .preview_bills_with(tenant, date, &[plan.account_id], &|account| {
                if let Some(p) = account.plans.iter_mut().find(|p| p.id == plan.id) {
                    p.cancel_date = Some(cancellation.date);
                }
                let mut writes = Vec::new();
                for item in &account.items {
                    let runs_past = item
                        .fields
                        .end_date
                        .is_none_or(|end| end > cancellation.date);
                    if item.plan_id == plan.id && item.cancellation.is_none() && runs_past {
                        let on = cancellation.date.max(item.fields.start_date);
                        writes.push(crate::recurring::cancellation_write(item, on, credit, now)?);
                    }
                }
                for write in &writes {
                    crate::billing::apply_item_write(&mut account.items, write);
                }
                account
                    .one_time
                    .retain(|o| o.plan_id != plan.id || o.fields.charge_date < cancellation.date);
                Ok(())
            })
            .await?;
        Ok(crate::recurring::EditPreview::new(date, before, after))
    }

    /// Delete (11/71): cancels the plan from today if it is active, then hides it.
    pub async fn delete_plan(
        &self,
        tenant: &Tenant,
        key: &RecordKey<PlanId>,
    ) -> Result<Plan, AppError> {
        until_done("plan", move || async move {
            let plan = self.get_plan(tenant, key, true).await?;
            if plan.deleted_at.is_some() {
                return Err(AppError::NotAllowed(format!(
                    "plan {:?} is already deleted",
                    plan.fields.ext_id
                )));
            }
            let today = self.today(tenant).max(plan.fields.start_date);
            settle(
                self.store()
                    .delete_plan(tenant.id, plan.id, plan.version, today, self.clock().now())
                    .await,
            )
        })
        .await
    }
}
