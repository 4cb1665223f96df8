//! Accounts (entity 69): list/get (3), create-or-update (10), delete (11).

use dynabill_app::App;
use dynabill_app::model::{AccountFilter, AccountPatch, RecordKey, Tenant};
use dynabill_core::domain::{
    AccountId, AccountStatus, AccountType, Country, DueDateMethod, Email, InvoiceGrouping,
};
use dynabill_core::money::Currency;

use super::{page_reply, record_key, required_key};
use crate::cursor::ListScope;
use crate::envelope::{self, Reply};
use crate::error::{DoorError, from_app};
use crate::fields::{EXT_ID, ID, INCLUDE_DELETED, MAX_LONG_TEXT, MAX_TEXT};
use crate::params::Params;
use crate::wire::AccountOut;

/// Days an invoice may be due after its date, at most (ten years).
const MAX_DUE_DATE_DAYS: i64 = 3660;

pub(crate) fn patch(p: &Params) -> Result<AccountPatch, DoorError> {
    Ok(AccountPatch {
        ext_id: p.text(EXT_ID, MAX_TEXT)?,
        name: p.text("AccountName", MAX_TEXT)?,
        account_type: p.coded(
            "AccountType",
            AccountType::from_code,
            "1 (Business) or 2 (Private)",
        )?,
        status: p.coded(
            "AccountStatus",
            AccountStatus::from_code,
            "1 (Active), 2 (Inactive) or 3 (Billing issues)",
        )?,
        email: p
            .parsed("Email", MAX_TEXT, "a valid e-mail address", |s| {
                s.parse::<Email>().ok()
            })?
            .map(|e| e.ok_or_else(|| DoorError::invalid("Email", "must not be empty")))
            .transpose()?,
        ext_id2: p.optional_text("ExtID2", MAX_TEXT)?,
        invoice_name: p.optional_text("InvoiceName", MAX_TEXT)?,
        phone: p.optional_text("Phone", MAX_TEXT)?,
        address: p.optional_text("Address", MAX_LONG_TEXT)?,
        city: p.optional_text("City", MAX_LONG_TEXT)?,
        state: p.optional_text("State", MAX_LONG_TEXT)?,
        zip: p.optional_text("Zip", MAX_LONG_TEXT)?,
        country: p.parsed(
            "Country",
            MAX_TEXT,
            "an ISO 3166-1 alpha-2 code such as US",
            |s| s.parse::<Country>().ok(),
        )?,
        account_manager: p.optional_text("AccountManager", MAX_TEXT)?,
        contact_person: p.optional_text("ContactPerson", MAX_TEXT)?,
        due_date_method: p.coded(
            "DueDateMethod",
            DueDateMethod::from_code,
            "1 (Net+) or 2 (End of Month+)",
        )?,
        due_date_days: p
            .int_in("DueDateDays", 0..=MAX_DUE_DATE_DAYS)?
            .map(|d| d as u32),
        invoice_grouping: p.coded(
            "InvoiceGrouping",
            InvoiceGrouping::from_code,
            "1 (one invoice per account) or 0 (one per plan)",
        )?,
        currency: p
            .parsed("Currency", MAX_TEXT, "an ISO 4217 code such as USD", |s| {
                s.parse::<Currency>().ok()
            })?
            .map(|c| c.ok_or_else(|| DoorError::invalid("Currency", "must not be empty")))
            .transpose()?,
        tax_exempt: p.flag("TaxExempt")?,
        tax_exemption_number: p.optional_text("TaxExemptionNumber", MAX_TEXT)?,
    })
}

/// The filter of a list of accounts, and the list it names (for its cursors).
pub(crate) fn filter(p: &Params, tenant: &Tenant) -> Result<(AccountFilter, ListScope), DoorError> {
    let filter = AccountFilter {
        id: p.id(ID)?,
        ext_id: p.text(EXT_ID, MAX_TEXT)?,
        ext_id2: p.text("ExtID2", MAX_TEXT)?,
        status: p.coded("AccountStatus", AccountStatus::from_code, "1, 2 or 3")?,
        updated_since: super::instant(p, "UpdatedSince", &tenant.time_zone)?,
        include_deleted: p.flag(INCLUDE_DELETED)?.unwrap_or(false),
    };
    let scope = ListScope::new(tenant, 69)
        .with(ID, filter.id)
        .with(EXT_ID, filter.ext_id.as_deref())
        .with("ExtID2", filter.ext_id2.as_deref())
        .with("AccountStatus", filter.status.map(|s| s.code()))
        .with(
            "UpdatedSince",
            filter.updated_since.map(|t| t.as_microsecond()),
        )
        .with(INCLUDE_DELETED, filter.include_deleted.then_some(1));
    Ok((filter, scope))
}

pub async fn list(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let (filter, scope) = filter(p, tenant)?;
    let page = scope.page(p)?;
    // Naming one record by ID or ExtID is a get: its absence is an error, not an empty page.
    if let Some(key) = record_key(p)? {
        let account = app
            .get_account(tenant, &key, filter.include_deleted)
            .await
            .map_err(|e| from_app(e, request_id))?;
        // A plain get (one key, no other filter): the record is the whole answer.
        let only_key = filter.id.is_some() != filter.ext_id.is_some()
            && filter.ext_id2.is_none()
            && filter.status.is_none()
            && filter.updated_since.is_none()
            && page.after.is_none();
        if only_key {
            return Ok(envelope::page(&[AccountOut::from(&account)], 1, None));
        }
    }
    let found = app
        .list_accounts(tenant, &filter, page)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(page_reply(&found, &scope, AccountOut::from))
}

pub async fn upsert(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let id = p.id(ID)?;
    let patch = patch(p)?;
    let account = app
        .upsert_account(tenant, id, patch)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(envelope::written(
        &account.id.to_string(),
        &account.fields.ext_id,
    ))
}

pub async fn delete(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let key: RecordKey<AccountId> = required_key(p, "to delete an account")?;
    let account = app
        .delete_account(tenant, &key)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(envelope::written(
        &account.id.to_string(),
        &account.fields.ext_id,
    ))
}
