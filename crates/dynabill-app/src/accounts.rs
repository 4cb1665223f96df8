//! Account use cases: create-or-update, read, list, delete.

use dynabill_core::domain::{AccountId, DueDateMethod, InvoiceGrouping};

use crate::App;
use crate::error::{AppError, Entity, Field};
use crate::model::{
    Account, AccountFields, AccountFilter, AccountPatch, Page, PageRequest, RecordKey, Tenant,
};
use crate::races::{Attempt, settle, settle_upsert, until_done};
use crate::store::StoreError;

/// Defaults of the optional account fields (SPEC §4.1).
const DEFAULT_DUE_DATE_DAYS: u32 = 30;

impl AccountPatch {
    /// The fields of a new account: every required field must have been sent.
    fn into_new(self, tenant: &Tenant) -> Result<AccountFields, AppError> {
        let context = "to create an account";
        let missing = |field| AppError::Missing { field, context };
        Ok(AccountFields {
            ext_id: self.ext_id.ok_or(missing(Field::ExtId))?,
            name: self.name.ok_or(missing(Field::AccountName))?,
            account_type: self.account_type.ok_or(missing(Field::AccountType))?,
            status: self.status.ok_or(missing(Field::AccountStatus))?,
            email: self.email.ok_or(missing(Field::Email))?,
            ext_id2: self.ext_id2.flatten(),
            invoice_name: self.invoice_name.flatten(),
            phone: self.phone.flatten(),
            address: self.address.flatten(),
            city: self.city.flatten(),
            state: self.state.flatten(),
            zip: self.zip.flatten(),
            country: self.country.flatten(),
            account_manager: self.account_manager.flatten(),
            contact_person: self.contact_person.flatten(),
            due_date_method: self.due_date_method.unwrap_or(DueDateMethod::NetDays),
            due_date_days: self.due_date_days.unwrap_or(DEFAULT_DUE_DATE_DAYS),
            invoice_grouping: self.invoice_grouping.unwrap_or(InvoiceGrouping::PerAccount),
            currency: self.currency.unwrap_or(tenant.currency),
            tax_exempt: self.tax_exempt.unwrap_or(false),
            tax_exemption_number: self.tax_exemption_number.flatten(),
        })
    }

    /// `current` with the sent fields replaced.
    fn apply_to(self, current: &AccountFields) -> AccountFields {
        let mut f = current.clone();
        macro_rules! take {
            ($($field:ident),*) => {$( if let Some(v) = self.$field { f.$field = v; } )*};
        }
        take!(
            ext_id,
            name,
            account_type,
            status,
            email,
            ext_id2,
            invoice_name,
            phone,
            address,
            city,
            state,
            zip,
            country,
            account_manager,
            contact_person,
            due_date_method,
            due_date_days,
            invoice_grouping,
            currency,
            tax_exempt,
            tax_exemption_number
        );
        f
    }
}

impl App {
    /// Create-or-update (10/69): updates the account named by `id`, else the one
    /// with the patch's `ExtID`, else creates one. Safe under concurrent calls for
    /// one `ExtID`: exactly one record results, the losers of the race update it.
    pub async fn upsert_account(
        &self,
        tenant: &Tenant,
        id: Option<AccountId>,
        patch: AccountPatch,
    ) -> Result<Account, AppError> {
        // Most calls without an ID create: try the insert first, and read only when
        // the ExtID turns out to be taken (then it is an update, or a retired ExtID).
        if id.is_none()
            && let Ok(fields) = patch.clone().into_new(tenant)
        {
            match self
                .store()
                .insert_account(tenant.id, &fields, self.clock().now())
                .await
            {
                Ok(account) => return Ok(account),
                Err(StoreError::ExtIdTaken) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let patch = &patch;
        until_done("account", move || async move {
            let existing = self.account_for_upsert(tenant, id, patch).await?;
            let now = self.clock().now();
            let result = match existing {
                None => {
                    let fields = patch.clone().into_new(tenant)?;
                    self.store().insert_account(tenant.id, &fields, now).await
                }
                Some(current) => {
                    if current.deleted_at.is_some() {
                        return Err(AppError::NotAllowed(format!(
                            "account {} was deleted and cannot be changed",
                            current.id
                        )));
                    }
                    let fields = patch.clone().apply_to(&current.fields);
                    if fields == current.fields {
                        return Ok(Attempt::Done(current));
                    }
                    if fields.currency != current.fields.currency
                        && self
                            .store()
                            .account_has_invoices(tenant.id, current.id)
                            .await?
                    {
                        return Err(AppError::NotAllowed(format!(
                            "account {} has been invoiced in {}; its Currency cannot change",
                            current.fields.ext_id, current.fields.currency
                        )));
                    }
                    self.store()
                        .update_account(tenant.id, current.id, current.version, &fields, now)
                        .await
                }
            };
            settle_upsert(result, id.is_some(), || AppError::Duplicate {
                field: Field::ExtId,
                reason: format!(
                    "another account already has ExtID {:?}",
                    patch.ext_id.clone().unwrap_or_default()
                ),
            })
        })
        .await
    }

    /// Create only (the REST face's `POST /v1/accounts`): a new account, refused
    /// with [`AppError::Duplicate`] when its `ExtID` is taken (never an update).
    pub async fn create_account(
        &self,
        tenant: &Tenant,
        patch: AccountPatch,
    ) -> Result<Account, AppError> {
        let fields = patch.into_new(tenant)?;
        match self
            .store()
            .insert_account(tenant.id, &fields, self.clock().now())
            .await
        {
            Err(StoreError::ExtIdTaken) => Err(AppError::Duplicate {
                field: Field::ExtId,
                reason: format!("another account already has ExtID {:?}", fields.ext_id),
            }),
            other => Ok(other?),
        }
    }

    async fn account_for_upsert(
        &self,
        tenant: &Tenant,
        id: Option<AccountId>,
        patch: &AccountPatch,
    ) -> Result<Option<Account>, AppError> {
        if let Some(id) = id {
            let found = self
                .store()
                .find_account(tenant.id, &RecordKey::Id(id))
                .await?;
            return found
                .map(Some)
                .ok_or(AppError::not_found(Entity::Account, Field::Id, id));
        }
        let Some(ext_id) = &patch.ext_id else {
            return Ok(None);
        };
        let found = self
            .store()
            .find_account(tenant.id, &RecordKey::ExtId(ext_id.clone()))
            .await?;
        if let Some(account) = &found
            && account.deleted_at.is_some()
        {
            return Err(AppError::Duplicate {
                field: Field::ExtId,
                reason: format!(
                    "ExtID {ext_id:?} belonged to an account that was deleted; an ExtID is never reused"
                ),
            });
        }
        Ok(found)
    }

    /// One account by key. Deleted accounts are found only when asked for.
    pub async fn get_account(
        &self,
        tenant: &Tenant,
        key: &RecordKey<AccountId>,
        include_deleted: bool,
    ) -> Result<Account, AppError> {
        let found = self.store().find_account(tenant.id, key).await?;
        match found {
            Some(a) if include_deleted || a.deleted_at.is_none() => Ok(a),
            _ => Err(not_found_by_key(Entity::Account, key)),
        }
    }

    pub async fn list_accounts(
        &self,
        tenant: &Tenant,
        filter: &AccountFilter,
        page: PageRequest,
    ) -> Result<Page<Account>, AppError> {
        Ok(self.store().list_accounts(tenant.id, filter, page).await?)
    }

    /// The console's account search: up to `limit` live accounts whose ExtID or
    /// e-mail is `text`, or whose name starts with it, ignoring case, by name.
    pub async fn search_accounts(
        &self,
        tenant: &Tenant,
        text: &str,
        limit: u32,
    ) -> Result<Vec<Account>, AppError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let matches = self.store().search_accounts(tenant.id, text, limit).await?;
        Ok(matches)
    }

    /// Delete (11/69): cancels the account's plans from today, then hides the account.
    /// Nothing is erased.
    pub async fn delete_account(
        &self,
        tenant: &Tenant,
        key: &RecordKey<AccountId>,
    ) -> Result<Account, AppError> {
        until_done("account", move || async move {
            let account = self.get_account(tenant, key, true).await?;
            if account.deleted_at.is_some() {
                return Err(AppError::NotAllowed(format!(
                    "account {} is already deleted",
                    account.id
                )));
            }
            if self
                .store()
                .account_has_unpaid_invoices(tenant.id, account.id)
                .await?
            {
                return Err(AppError::NotAllowed(format!(
                    "account {} has unpaid posted invoices; mark them paid or cancel them first",
                    account.fields.ext_id
                )));
            }
            let today = self.today(tenant);
            let now = self.clock().now();
            settle(
                self.store()
                    .delete_account(tenant.id, account.id, account.version, today, now)
                    .await,
            )
        })
        .await
    }
}

pub(crate) fn not_found_by_key<I: std::fmt::Display>(
    entity: Entity,
    key: &RecordKey<I>,
) -> AppError {
    match key {
        RecordKey::Id(id) => AppError::not_found(entity, Field::Id, id),
        RecordKey::ExtId(ext_id) => AppError::not_found(entity, Field::ExtId, ext_id),
    }
}
