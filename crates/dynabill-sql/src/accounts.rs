//! Accounts.

use async_trait::async_trait;
use dynabill_app::model::{
    Account, AccountFields, AccountFilter, Cancellation, Page, PageRequest, RecordKey,
};
use dynabill_app::store::{AccountStore, StoreError, StoreResult};
use dynabill_core::domain::{
    AccountId, AccountStatus, AccountType, DueDateMethod, InvoiceGrouping, TenantId,
};
use jiff::Timestamp;
use jiff::civil::Date;

use crate::backend::{Backend, conflicted, failed, refused};
use crate::items::{PlanScope, cancel_items_of};
use crate::paging::{Listing, PageOrder, Tally, convert, finish};
use crate::query::{Query, kept, row_columns, select_list};
use crate::rows::RowOf;
use crate::store::SqlStore;
use crate::values::{Value, coded, from_micros, parse_decimal, small, stored};

/// A row of `accounts` (also read from the JSON an event keeps of it: on SQLite an
/// array of the columns in the order of these fields, see `0008_events.sql`).
#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct AccountRow {
    pub id: i64,
    pub ext_id: String,
    pub name: String,
    pub account_type: i64,
    pub status: i64,
    pub email: String,
    pub ext_id2: Option<String>,
    pub invoice_name: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub country: Option<String>,
    pub account_manager: Option<String>,
    pub contact_person: Option<String>,
    pub due_date_method: i64,
    pub due_date_days: i64,
    pub invoice_grouping: i64,
    pub currency: String,
    pub tax_exempt: bool,
    pub tax_exemption_number: Option<String>,
    pub credit_balance: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub version: i64,
}

/// The writable columns of `accounts`, in the order [`account_values`] gives them.
pub const ACCOUNT_WRITABLE: [&str; 21] = [
    "ext_id",
    "name",
    "account_type",
    "status",
    "email",
    "ext_id2",
    "invoice_name",
    "phone",
    "address",
    "city",
    "state",
    "zip",
    "country",
    "account_manager",
    "contact_person",
    "due_date_method",
    "due_date_days",
    "invoice_grouping",
    "currency",
    "tax_exempt",
    "tax_exemption_number",
];

/// The values of [`ACCOUNT_WRITABLE`] for `f`, in order.
pub fn account_values(f: &AccountFields) -> Vec<Value> {
    use Value::*;
    vec![
        Text(f.ext_id.clone()),
        Text(f.name.clone()),
        Int(f.account_type.code()),
        Int(f.status.code()),
        Text(f.email.as_str().to_owned()),
        OptText(f.ext_id2.clone()),
        OptText(f.invoice_name.clone()),
        OptText(f.phone.clone()),
        OptText(f.address.clone()),
        OptText(f.city.clone()),
        OptText(f.state.clone()),
        OptText(f.zip.clone()),
        OptText(f.country.map(|c| c.alpha2().to_owned())),
        OptText(f.account_manager.clone()),
        OptText(f.contact_person.clone()),
        Int(f.due_date_method.code()),
        Int(i64::from(f.due_date_days)),
        Int(f.invoice_grouping.code()),
        Text(f.currency.code().to_owned()),
        Bool(f.tax_exempt),
        OptText(f.tax_exemption_number.clone()),
    ]
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;

    fn try_from(r: AccountRow) -> Result<Self, StoreError> {
        let fields = AccountFields {
            ext_id: r.ext_id,
            name: r.name,
            account_type: coded("account type", r.account_type, AccountType::from_code)?,
            status: coded("account status", r.status, AccountStatus::from_code)?,
            email: stored("e-mail", &r.email)?,
            ext_id2: r.ext_id2,
            invoice_name: r.invoice_name,
            phone: r.phone,
            address: r.address,
            city: r.city,
            state: r.state,
            zip: r.zip,
            country: r
                .country
                .as_deref()
                .map(|c| stored("country", c))
                .transpose()?,
            account_manager: r.account_manager,
            contact_person: r.contact_person,
            due_date_method: coded(
                "due date method",
                r.due_date_method,
                DueDateMethod::from_code,
            )?,
            due_date_days: small("due date days", r.due_date_days)?,
            invoice_grouping: coded(
                "invoice grouping",
                r.invoice_grouping,
                InvoiceGrouping::from_code,
            )?,
            currency: stored("currency", &r.currency)?,
            tax_exempt: r.tax_exempt,
            tax_exemption_number: r.tax_exemption_number,
        };
        Ok(Account {
            id: AccountId(r.id),
            fields,
            credit_balance: parse_decimal(&r.credit_balance)?,
            created_at: from_micros(r.created_at)?,
            updated_at: from_micros(r.updated_at)?,
            deleted_at: r.deleted_at.map(from_micros).transpose()?,
            version: r.version,
        })
    }
}

/// The columns an [`AccountRow`] reads.
pub(crate) fn account_columns() -> Vec<&'static str> {
    row_columns(
        &["id"],
        &ACCOUNT_WRITABLE,
        &[
            "credit_balance",
            "created_at",
            "updated_at",
            "deleted_at",
            "version",
        ],
    )
}

fn push_filter<B: Backend>(q: &mut Query<B>, tenant: TenantId, filter: &AccountFilter) {
    q.push(" WHERE tenant_id = ").bind(tenant);
    if let Some(id) = filter.id {
        q.push(" AND id = ").bind(id);
    }
    if let Some(ext_id) = &filter.ext_id {
        q.push(" AND ext_id = ").bind(ext_id);
    }
    if let Some(ext_id2) = &filter.ext_id2 {
        q.push(" AND ext_id2 = ").bind(ext_id2);
    }
    if let Some(status) = filter.status {
        q.push(" AND status = ").bind(status.code());
    }
    if let Some(since) = filter.updated_since {
        q.push(" AND updated_at >= ").bind(since);
    }
    if !filter.include_deleted {
        // Read through the filter's index, a row's liveness is checked on it.
        let live = if by_filter(filter) { "+" } else { "" };
        q.push(format_args!(" AND {live}deleted_at IS NULL"));
    }
}

/// Whether a page of `filter` is read through the filter's index and sorted (see
/// [`PageOrder::Filter`]): a time range may hold few of the tenant's accounts or
/// all of them, and a status among deleted accounts too.
fn by_filter(filter: &AccountFilter) -> bool {
    filter.updated_since.is_some() || (filter.status.is_some() && filter.include_deleted)
}

/// The list of the accounts `filter` selects (3/69). Its total is a maintained
/// count unless the filter names a key or a date.
pub(crate) fn account_listing<'a, B: Backend>(
    tenant: TenantId,
    filter: &'a AccountFilter,
) -> Listing<'a, B> {
    let counted = filter.id.is_none()
        && filter.ext_id.is_none()
        && filter.ext_id2.is_none()
        && filter.updated_since.is_none();
    Listing {
        columns: account_select::<B>(),
        from: "FROM accounts",
        count_from: None,
        key: "id",
        filter: Box::new(move |q: &mut Query<B>| push_filter(q, tenant, filter)),
        order: PageOrder::of(by_filter(filter), counted).probing("accounts", tenant),
        tally: counted.then(|| Tally {
            tenant,
            list: "accounts",
            live_only: !filter.include_deleted,
            statuses: filter.status.iter().map(|s| s.code()).collect(),
        }),
    }
}

/// The console's account search (`search_accounts`), after `prefix` (`EXPLAIN`):
/// the live accounts whose ExtID is `text`, whose e-mail is `text` in any case, or
/// whose name starts with it in any case, by name. Each of the three is its own
/// read, bounded by its own index and cut at `limit` in name order
/// (`accounts_ext_id`, `accounts_email_search`, `accounts_name_search`), so that
/// an e-mail or a name shared by the whole book costs `limit` rows, not the book;
/// the name's prefix is a range in byte order.
pub(crate) fn account_search<B: Backend>(
    prefix: &str,
    tenant: TenantId,
    text: &str,
    limit: u32,
) -> Query<B> {
    let name = format!("lower(name){}", B::BYTE_ORDER);
    let lower = text.to_lowercase();
    let above = format!("{lower}\u{10FFFF}");
    let limit = i64::from(limit);
    let mut q = Query::<B>::new(format!(
        "{prefix}SELECT {} FROM accounts WHERE id IN (SELECT id FROM (SELECT id FROM accounts WHERE tenant_id = ",
        account_select::<B>()
    ));
    q.bind(tenant)
        .push(" AND deleted_at IS NULL AND ext_id = ")
        .bind(text.to_owned())
        .push(") e UNION SELECT id FROM (SELECT id FROM accounts WHERE tenant_id = ")
        .bind(tenant)
        .push(" AND deleted_at IS NULL AND lower(email) = ")
        .bind(lower.clone())
        .push(format!(" ORDER BY {name}, id LIMIT "))
        .bind(limit)
        .push(") m UNION SELECT id FROM (SELECT id FROM accounts WHERE tenant_id = ")
        .bind(tenant)
        .push(format!(" AND deleted_at IS NULL AND {name} >= "))
        .bind(lower)
        .push(format!(" AND {name} < "))
        .bind(above)
        .push(format!(" ORDER BY {name}, id LIMIT "))
        .bind(limit)
        .push(format!(") n) ORDER BY {name}, id LIMIT "))
        .bind(limit);
    q
}

/// The select list of an [`AccountRow`].
pub(crate) fn account_select<B: Backend>() -> &'static str {
    kept::<B>("accounts", || select_list::<B>(&account_columns()))
}

/// `SELECT <account columns> FROM accounts`.
pub(crate) fn select_accounts<B: Backend>() -> Query<B> {
    Query::new(format!("SELECT {} FROM accounts", account_select::<B>()))
}

fn one(rows: Vec<AccountRow>) -> StoreResult<Account> {
    rows.into_iter().next().ok_or(StoreError::Stale)?.try_into()
}

#[async_trait]
impl<B: Backend> AccountStore for SqlStore<B> {
    async fn insert_account(
        &self,
        tenant: TenantId,
        fields: &AccountFields,
        now: Timestamp,
    ) -> StoreResult<Account> {
        let mut q = Query::<B>::new("INSERT INTO accounts (tenant_id, created_at, updated_at");
        q.columns(&ACCOUNT_WRITABLE)
            .push(") VALUES (")
            .bind(tenant)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            .values(&ACCOUNT_WRITABLE, account_values(fields))
            .push(") RETURNING ")
            .push(account_select::<B>());
        let rows = self.backend().create(q).await.map_err(refused::<B>)?;
        let row: AccountRow = rows
            .first()
            .ok_or(StoreError::Stale)?
            .decode()
            .map_err(failed::<B>)?;
        row.try_into()
    }

    async fn update_account(
        &self,
        tenant: TenantId,
        id: AccountId,
        version: i64,
        fields: &AccountFields,
        now: Timestamp,
    ) -> StoreResult<Account> {
        let mut q = Query::<B>::new("UPDATE accounts SET version = version + 1, updated_at = ");
        q.bind(now)
            .assignments(&ACCOUNT_WRITABLE, account_values(fields))
            .push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id)
            .push(" AND version = ")
            .bind(version)
            .push(" RETURNING ")
            .push(account_select::<B>());
        let rows: Vec<AccountRow> = q
            .fetch_all(&mut *self.write_conn().await?)
            .await
            .map_err(conflicted::<B>)?;
        one(rows)
    }

    async fn find_account(
        &self,
        tenant: TenantId,
        key: &RecordKey<AccountId>,
    ) -> StoreResult<Option<Account>> {
        let mut q = select_accounts::<B>();
        q.push(" WHERE tenant_id = ").bind(tenant);
        match key {
            RecordKey::Id(id) => q.push(" AND id = ").bind(*id),
            RecordKey::ExtId(ext_id) => q.push(" AND ext_id = ").bind(ext_id),
        };
        let row: Option<AccountRow> = q
            .fetch_optional(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list_accounts(
        &self,
        tenant: TenantId,
        filter: &AccountFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Account>> {
        let listing = account_listing::<B>(tenant, filter);
        let (total, rows, tx) = listing.read::<AccountRow>(self, page).await?;
        let accounts: Vec<Account> = convert(rows)?;
        finish::<B, _>(tx, accounts, page, total, |a| a.id.0).await
    }

    async fn search_accounts(
        &self,
        tenant: TenantId,
        text: &str,
        limit: u32,
    ) -> StoreResult<Vec<Account>> {
        let q = account_search::<B>("", tenant, text, limit);
        let rows: Vec<AccountRow> = q
            .fetch_all(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        convert(rows)
    }

    async fn delete_account(
        &self,
        tenant: TenantId,
        id: AccountId,
        version: i64,
        cancel_date: Date,
        now: Timestamp,
    ) -> StoreResult<Account> {
        // Returning early drops (and so rolls back) the transaction.
        let mut tx = self.backend().begin_write().await?;
        // Locking the account row first also makes a concurrent `insert_plan` for it
        // wait, and then see the account deleted (it reads the row `FOR SHARE`).
        let mut q = Query::<B>::new("UPDATE accounts SET deleted_at = ");
        q.bind(now)
            .push(", updated_at = ")
            .bind(now)
            .push(", version = version + 1 WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id)
            .push(" AND version = ")
            .bind(version)
            .push(" RETURNING ")
            .push(account_select::<B>());
        let row: AccountRow = q
            .fetch_optional(&mut tx)
            .await
            .map_err(conflicted::<B>)?
            .ok_or(StoreError::Stale)?;
        // A plan that has not started yet is cancelled from its start.
        let mut q = Query::<B>::new(format!(
            "UPDATE plans SET cancel_date = {}(start_date, ",
            B::GREATEST
        ));
        q.bind_date(cancel_date)
            .push("), updated_at = ")
            .bind(now)
            .push(", version = version + 1 WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND account_id = ")
            .bind(id)
            .push(" AND cancel_date IS NULL");
        q.execute(&mut tx).await.map_err(conflicted::<B>)?;
        let cancellation = Cancellation {
            date: cancel_date,
            credit: true,
        };
        cancel_items_of::<B>(&mut tx, tenant, PlanScope::Account(id), cancellation, now).await?;
        tx.commit().await.map_err(failed::<B>)?;
        row.try_into()
    }
}
