//! `/v1/accounts`: list, get (by ID or ExtID), create, update, delete.

#![expect(
    unused_qualifications,
    reason = "utoipa's path macro qualifies the parameter types it is given"
)]

use axum::body::Body;
use axum::extract::Path;
use axum::response::Response;
use dynabill_app::model::{self, RecordKey};
use dynabill_core::domain::AccountId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::call::{Empty, GetOptions, List, Paging, path_id};
use super::shapes::{CountryCode, CurrencyCode, InstantOrDay, bodies, money, stamp};
use super::{Call, Reply};
use crate::ops::accounts as op;

/// An account: a customer that plans belong to and invoices are sent to.
#[derive(Serialize, ToSchema)]
pub struct Account {
    /// Assigned by dynabill.
    #[schema(example = 1042)]
    id: i64,
    /// Your key for the account (unique in the tenant, never reused).
    #[schema(example = "CRM-1042")]
    ext_id: String,
    /// The customer's name.
    #[schema(example = "Acme Corp")]
    account_name: String,
    /// 1 Business, 2 Private.
    #[schema(example = 1)]
    account_type: i64,
    /// 1 Active, 2 Inactive (not billed), 3 Billing issues (billed).
    #[schema(example = 1)]
    account_status: i64,
    /// Where invoices go.
    #[schema(example = "billing@acme.example")]
    email: String,
    /// A second key of yours (e.g. an ERP's).
    #[schema(example = "ERP-77")]
    ext_id2: Option<String>,
    /// The name printed on invoices, when not the account's.
    #[schema(example = "Acme Corporation Ltd.")]
    invoice_name: Option<String>,
    /// A phone number.
    #[schema(example = "+1 415 555 0100")]
    phone: Option<String>,
    /// Street address (taxes are computed from the address).
    #[schema(example = "1 Market St")]
    address: Option<String>,
    /// City.
    #[schema(example = "San Francisco")]
    city: Option<String>,
    /// State or region.
    #[schema(example = "CA")]
    state: Option<String>,
    /// Postal code.
    #[schema(example = "94105")]
    zip: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    #[schema(example = "US")]
    country: Option<String>,
    /// Who manages the account on your side.
    #[schema(example = "Dana Lee")]
    account_manager: Option<String>,
    /// Who to talk to at the customer.
    #[schema(example = "Sam Doe")]
    contact_person: Option<String>,
    /// 1 Net+ (invoice date plus `due_date_days`), 2 End of month+.
    #[schema(example = 1)]
    due_date_method: i64,
    /// Days after the invoice date (or its month's end) an invoice is due.
    #[schema(example = 30)]
    due_date_days: u32,
    /// 1 one invoice per account per bill run, 0 one per plan.
    #[schema(example = 1)]
    invoice_grouping: i64,
    /// ISO 4217 currency of the account's plans and invoices.
    #[schema(example = "USD")]
    currency: String,
    /// Whether the account is exempt from taxes.
    #[schema(example = false)]
    tax_exempt: bool,
    /// The exemption certificate's number.
    #[schema(example = "EX-1234")]
    tax_exemption_number: Option<String>,
    /// Credit the next invoices will use, in the account's currency.
    #[schema(example = "0.00")]
    credit_balance: String,
    /// Whether the account was deleted.
    #[schema(example = false)]
    deleted: bool,
    /// When it was deleted (RFC 3339, UTC).
    #[schema(example = "2026-03-01T12:00:00.000000Z")]
    deleted_at: Option<String>,
    /// When it was created (RFC 3339, UTC).
    #[schema(example = "2026-01-05T09:30:00.000000Z")]
    created_at: String,
    /// When it last changed (RFC 3339, UTC).
    #[schema(example = "2026-01-05T09:30:00.000000Z")]
    updated_at: String,
}

impl From<&model::Account> for Account {
    fn from(a: &model::Account) -> Self {
        let f = &a.fields;
        Account {
            id: a.id.0,
            ext_id: f.ext_id.clone(),
            account_name: f.name.clone(),
            account_type: f.account_type.code(),
            account_status: f.status.code(),
            email: f.email.as_str().to_owned(),
            ext_id2: f.ext_id2.clone(),
            invoice_name: f.invoice_name.clone(),
            phone: f.phone.clone(),
            address: f.address.clone(),
            city: f.city.clone(),
            state: f.state.clone(),
            zip: f.zip.clone(),
            country: f.country.map(|c| c.alpha2().to_owned()),
            account_manager: f.account_manager.clone(),
            contact_person: f.contact_person.clone(),
            due_date_method: f.due_date_method.code(),
            due_date_days: f.due_date_days,
            invoice_grouping: f.invoice_grouping.code(),
            currency: f.currency.code().to_owned(),
            tax_exempt: f.tax_exempt,
            tax_exemption_number: f.tax_exemption_number.clone(),
            credit_balance: money(a.credit_balance, f.currency),
            deleted: a.deleted_at.is_some(),
            deleted_at: a.deleted_at.map(stamp),
            created_at: stamp(a.created_at),
            updated_at: stamp(a.updated_at),
        }
    }
}

bodies! {
    /// A new account. `ext_id`, `account_name`, `account_type`, `account_status`
    /// and `email` are required; the rest take their defaults (`currency`: the
    /// tenant's; `due_date_method` 1 and `due_date_days` 30; `invoice_grouping` 1).
    new NewAccount;
    /// Changes to an account: only the fields sent change; `null` clears an
    /// optional field.
    changes AccountChanges;
    required {
        /// Your key for the account, unique in the tenant.
        #[schema(example = "CRM-1042", min_length = 1, max_length = 255, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
        ext_id: String,
        /// The customer's name.
        #[schema(example = "Acme Corp", min_length = 1, max_length = 255, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
        account_name: String,
        /// 1 Business, 2 Private.
        #[schema(example = 1, minimum = 1, maximum = 2)]
        account_type: u8,
        /// 1 Active, 2 Inactive, 3 Billing issues.
        #[schema(example = 1, minimum = 1, maximum = 3)]
        account_status: u8,
        /// Where invoices go.
        #[schema(example = "billing@acme.example", max_length = 254, pattern = r"^[A-Za-z0-9_%+-]{1,64}@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,4}[A-Za-z]{2,24}$")]
        email: String,
    }
    create_only {}
    optional {
        /// A second key of yours; `null` clears it.
        #[schema(example = "ERP-77", max_length = 255, pattern = r"^[^\u0000]*$")]
        ext_id2: Option<String>,
        /// The name printed on invoices.
        #[schema(example = "Acme Corporation Ltd.", max_length = 255, pattern = r"^[^\u0000]*$")]
        invoice_name: Option<String>,
        /// A phone number.
        #[schema(example = "+1 415 555 0100", max_length = 255, pattern = r"^[^\u0000]*$")]
        phone: Option<String>,
        /// Street address.
        #[schema(example = "1 Market St", max_length = 4000, pattern = r"^[^\u0000]*$")]
        address: Option<String>,
        /// City.
        #[schema(example = "San Francisco", max_length = 4000, pattern = r"^[^\u0000]*$")]
        city: Option<String>,
        /// State or region.
        #[schema(example = "CA", max_length = 4000, pattern = r"^[^\u0000]*$")]
        state: Option<String>,
        /// Postal code.
        #[schema(example = "94105", max_length = 4000, pattern = r"^[^\u0000]*$")]
        zip: Option<String>,
        /// ISO 3166-1 alpha-2 country code, in upper case; `null` clears it.
        #[schema(example = "US")]
        country: Option<CountryCode>,
        /// Who manages the account on your side.
        #[schema(example = "Dana Lee", max_length = 255, pattern = r"^[^\u0000]*$")]
        account_manager: Option<String>,
        /// Who to talk to at the customer.
        #[schema(example = "Sam Doe", max_length = 255, pattern = r"^[^\u0000]*$")]
        contact_person: Option<String>,
        /// 1 Net+, 2 End of month+.
        #[schema(example = 1, minimum = 1, maximum = 2)]
        due_date_method: u8,
        /// Days until an invoice is due, 0 to 3660.
        #[schema(example = 30, minimum = 0, maximum = 3660)]
        due_date_days: u32,
        /// 1 one invoice per account, 0 one per plan.
        #[schema(example = 1, minimum = 0, maximum = 1)]
        invoice_grouping: u8,
        /// ISO 4217 currency code, in upper case (default: the tenant's).
        #[schema(example = "USD")]
        currency: CurrencyCode,
        /// Whether the account is exempt from taxes.
        #[schema(example = false)]
        tax_exempt: bool,
        /// The exemption certificate's number.
        #[schema(example = "EX-1234", max_length = 255, pattern = r"^[^\u0000]*$")]
        tax_exemption_number: Option<String>,
    }
}

/// Filters of the list of accounts.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "a schema: it checks the query; the door's parser reads the values"
)]
pub struct AccountFilters {
    /// Only the account with this ExtID.
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    ext_id: Option<String>,
    /// Only accounts with this second key.
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    ext_id2: Option<String>,
    /// Only accounts in this status: 1 Active, 2 Inactive, 3 Billing issues.
    #[param(minimum = 1, maximum = 3)]
    account_status: Option<i64>,
    /// Only accounts changed at or after this instant (RFC 3339) or day (`YYYY-MM-DD`,
    /// midnight in the tenant's time zone).
    #[param(inline, example = "2026-01-01")]
    updated_since: Option<InstantOrDay>,
    /// Include deleted accounts.
    include_deleted: Option<bool>,
}

/// List accounts
#[utoipa::path(get, path = "/v1/accounts", tag = "Accounts",
    params(AccountFilters, Paging),
    responses((status = 200, description = "A page of accounts", body = List<Account>)))]
pub async fn list(call: Call) -> Response {
    call.read(async |call| {
        let p = call.query::<AccountFilters>(true)?;
        let (filter, scope) = op::filter(&p, &call.tenant)?;
        let page = scope.page(&p)?;
        let found = call
            .app
            .list_accounts(&call.tenant, &filter, page)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&List::new(&found, &scope, &p, |a| {
            Account::from(a)
        })))
    })
    .await
}

async fn get_one(call: &Call, key: RecordKey<AccountId>) -> super::call::Outcome {
    let p = call.query::<GetOptions>(false)?;
    let include_deleted = p.flag(crate::fields::INCLUDE_DELETED)?.unwrap_or(false);
    let account = call
        .app
        .get_account(&call.tenant, &key, include_deleted)
        .await
        .map_err(|e| call.fail(e))?;
    Ok(Reply::ok(&Account::from(&account)))
}

/// Get an account
#[utoipa::path(get, path = "/v1/accounts/{id}", tag = "Accounts",
    params(("id" = i64, Path, description = "The account's ID", minimum = 1), GetOptions),
    responses((status = 200, description = "The account", body = Account)))]
pub async fn get(call: Call, Path(id): Path<String>) -> Response {
    call.read(async |call| get_one(call, RecordKey::Id(path_id(&id, "account")?)).await)
        .await
}

/// Get an account by its ExtID
#[utoipa::path(get, path = "/v1/accounts/by-ext-id/{ext_id}", tag = "Accounts",
    params(("ext_id" = String, Path, description = "The account's ExtID"), GetOptions),
    responses((status = 200, description = "The account", body = Account)))]
pub async fn get_by_ext_id(call: Call, Path(ext_id): Path<String>) -> Response {
    call.read(async |call| get_one(call, RecordKey::ExtId(ext_id)).await)
        .await
}

/// Create an account
#[utoipa::path(post, path = "/v1/accounts", tag = "Accounts",
    request_body = NewAccount,
    responses((status = 201, description = "The account created; `Location` names it", body = Account,
        headers(("Location" = String, description = "/v1/accounts/{id}")))))]
pub async fn create(call: Call, body: Body) -> Response {
    call.write::<NewAccount>(body, async |call, p| {
        let account = call
            .app
            .create_account(&call.tenant, op::patch(&p)?)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::created(
            format!("/v1/accounts/{}", account.id),
            &Account::from(&account),
        ))
    })
    .await
}

/// Update an account
#[utoipa::path(patch, path = "/v1/accounts/{id}", tag = "Accounts",
    params(("id" = i64, Path, description = "The account's ID", minimum = 1)),
    request_body = Option<AccountChanges>,
    responses((status = 200, description = "The account as changed", body = Account)))]
pub async fn update(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<AccountChanges>(body, async |call, p| {
        let id: AccountId = path_id(&id, "account")?;
        let account = call
            .app
            .upsert_account(&call.tenant, Some(id), op::patch(&p)?)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&Account::from(&account)))
    })
    .await
}

/// Delete an account
///
/// Allowed only when the account has no live plans; the account is kept,
/// marked deleted, and its ExtID is never reused.
#[utoipa::path(delete, path = "/v1/accounts/{id}", tag = "Accounts",
    params(("id" = i64, Path, description = "The account's ID", minimum = 1)),
    responses((status = 204, description = "Deleted")))]
pub async fn delete(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<Empty>(body, async |call, _| {
        let id: AccountId = path_id(&id, "account")?;
        call.app
            .delete_account(&call.tenant, &RecordKey::Id(id))
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::no_content())
    })
    .await
}
