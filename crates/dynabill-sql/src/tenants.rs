//! Tenants and their API users.

use anyhow::anyhow;
use async_trait::async_trait;
use dynabill_app::store::{
    NewApiUser, NewTenant, StoreError, StoreResult, StoredTenant, TenantStore,
};
use dynabill_core::domain::TenantId;
use jiff::Timestamp;
use jiff::civil::Date;

use crate::backend::{Backend, Conn, failed, refused};
use crate::query::{Query, kept, select_list};
use crate::store::SqlStore;
use crate::values::{from_micros, parse_opt_date};

#[derive(Debug, sqlx::FromRow)]
pub struct TenantRow {
    pub id: i64,
    pub app_key: String,
    pub name: String,
    pub currency: String,
    pub time_zone: String,
    pub auto_post: bool,
    pub invoice_prefix: String,
    pub bill_run_hour: i64,
    pub proration_policy: i64,
    pub rounding: i64,
    pub tax_mode: i64,
    pub avatax_url: Option<String>,
    pub avatax_account_id: Option<String>,
    pub avatax_license_key: Option<String>,
    pub avatax_company_code: Option<String>,
    pub test_today: Option<String>,
    pub created_at: i64,
}

/// The columns of `tenants` a [`TenantRow`] reads.
pub const TENANT_COLUMNS: [&str; 17] = [
    "id",
    "app_key",
    "name",
    "currency",
    "time_zone",
    "auto_post",
    "invoice_prefix",
    "bill_run_hour",
    "proration_policy",
    "rounding",
    "tax_mode",
    "avatax_url",
    "avatax_account_id",
    "avatax_license_key",
    "avatax_company_code",
    "test_today",
    "created_at",
];

/// The tenant columns for `B`, of the table aliased `prefix` (`"t."`, or `""` in a
/// `RETURNING` list).
fn tenant_columns<B: Backend>(prefix: &str) -> String {
    let columns: Vec<String> = TENANT_COLUMNS
        .iter()
        .map(|c| format!("{prefix}{c}"))
        .collect();
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    select_list::<B>(&columns)
}

impl TryFrom<TenantRow> for StoredTenant {
    type Error = StoreError;

    fn try_from(r: TenantRow) -> Result<Self, StoreError> {
        Ok(StoredTenant {
            id: TenantId(r.id),
            app_key: r.app_key,
            name: r.name,
            currency: r.currency,
            time_zone: r.time_zone,
            auto_post: r.auto_post,
            invoice_prefix: r.invoice_prefix,
            bill_run_hour: r.bill_run_hour,
            proration_policy: r.proration_policy,
            rounding: r.rounding,
            tax_mode: r.tax_mode,
            avatax_url: r.avatax_url,
            avatax_account_id: r.avatax_account_id,
            avatax_license_key: r.avatax_license_key,
            avatax_company_code: r.avatax_company_code,
            test_today: parse_opt_date(r.test_today.as_deref())?,
            created_at: from_micros(r.created_at)?,
        })
    }
}

/// A tenant joined with one API user's token hash: the whole of an authentication.
#[derive(Debug, sqlx::FromRow)]
pub struct CredentialRow {
    #[sqlx(flatten)]
    pub tenant: TenantRow,
    pub token_hash: Vec<u8>,
}

impl CredentialRow {
    pub fn into_parts(self) -> Result<(StoredTenant, [u8; 32]), StoreError> {
        let hash: [u8; 32] = self
            .token_hash
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Other(anyhow!("stored token hash is not 32 bytes")))?;
        Ok((self.tenant.try_into()?, hash))
    }
}

async fn insert_user<B: Backend>(
    conn: &mut Conn<B>,
    tenant: i64,
    user: &NewApiUser,
    now: Timestamp,
) -> StoreResult<()> {
    let mut q = Query::<B>::new(
        "INSERT INTO api_users (tenant_id, user_name, token_hash, created_at) VALUES (",
    );
    q.bind(tenant)
        .push(", ")
        .bind(&user.user_name)
        .push(", ")
        .bind(user.token_hash.as_slice())
        .push(", ")
        .bind(now)
        .push(")");
    q.execute(conn).await.map_err(refused::<B>)?;
    Ok(())
}

fn select_tenants<B: Backend>() -> Query<B> {
    Query::new(format!(
        "SELECT {} FROM tenants t",
        kept::<B>("tenants", || tenant_columns::<B>("t."))
    ))
}

#[async_trait]
impl<B: Backend> TenantStore for SqlStore<B> {
    async fn create_tenant(
        &self,
        tenant: &NewTenant,
        user: &NewApiUser,
        now: Timestamp,
    ) -> StoreResult<StoredTenant> {
        // Returning early drops (and so rolls back) the transaction.
        let mut tx = self.backend().begin_write().await?;
        let mut q = Query::<B>::new(
            "INSERT INTO tenants (app_key, name, currency, time_zone, created_at) VALUES (",
        );
        q.bind(&tenant.app_key)
            .push(", ")
            .bind(&tenant.name)
            .push(", ")
            .bind(&tenant.currency)
            .push(", ")
            .bind(&tenant.time_zone)
            .push(", ")
            .bind(now)
            .push(") RETURNING ")
            .push(kept::<B>("tenants returning", || tenant_columns::<B>("")));
        let row: TenantRow = q.fetch_one(&mut tx).await.map_err(refused::<B>)?;
        insert_user::<B>(&mut tx, row.id, user, now).await?;
        tx.commit().await.map_err(failed::<B>)?;
        row.try_into()
    }

    async fn add_api_user(
        &self,
        tenant: TenantId,
        user: &NewApiUser,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut conn = self.write_conn().await?;
        insert_user::<B>(&mut conn, tenant.0, user, now).await
    }

    async fn tenant_by_app_key(&self, app_key: &str) -> StoreResult<Option<StoredTenant>> {
        let mut q = select_tenants::<B>();
        q.push(" WHERE t.app_key = ").bind(app_key);
        let row: Option<TenantRow> = q
            .fetch_optional(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn credential(
        &self,
        app_key: &str,
        user_name: &str,
    ) -> StoreResult<Option<(StoredTenant, [u8; 32])>> {
        let mut q = Query::<B>::new(format!(
            "SELECT {}, u.token_hash FROM tenants t JOIN api_users u ON u.tenant_id = t.id",
            kept::<B>("tenants", || tenant_columns::<B>("t."))
        ));
        q.push(" WHERE t.app_key = ")
            .bind(app_key)
            .push(" AND u.user_name = ")
            .bind(user_name);
        let row: Option<CredentialRow> = q
            .fetch_optional(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        row.map(CredentialRow::into_parts).transpose()
    }

    async fn tenant_count(&self) -> StoreResult<i64> {
        let (count,): (i64,) = Query::<B>::new("SELECT COUNT(*) FROM tenants")
            .fetch_one(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(count)
    }

    async fn list_tenants(&self) -> StoreResult<Vec<StoredTenant>> {
        let mut q = select_tenants::<B>();
        q.push(" ORDER BY t.id");
        let rows: Vec<TenantRow> = q
            .fetch_all(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn update_tenant_settings(
        &self,
        tenant: TenantId,
        row: &StoredTenant,
    ) -> StoreResult<()> {
        let mut q = Query::<B>::new("UPDATE tenants SET time_zone = ");
        q.bind(&row.time_zone)
            .push(", auto_post = ")
            .bind(row.auto_post)
            .push(", invoice_prefix = ")
            .bind(&row.invoice_prefix)
            .push(", bill_run_hour = ")
            .bind(row.bill_run_hour)
            .push(", proration_policy = ")
            .bind(row.proration_policy)
            .push(", rounding = ")
            .bind(row.rounding)
            .push(", tax_mode = ")
            .bind(row.tax_mode)
            .push(", avatax_url = ")
            .bind(&row.avatax_url)
            .push(", avatax_account_id = ")
            .bind(&row.avatax_account_id)
            .push(", avatax_license_key = ")
            .bind(&row.avatax_license_key)
            .push(", avatax_company_code = ")
            .bind(&row.avatax_company_code)
            .push(" WHERE id = ")
            .bind(tenant);
        q.execute(&mut *self.write_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(())
    }

    async fn set_test_today(&self, tenant: TenantId, today: Option<Date>) -> StoreResult<()> {
        let mut q = Query::<B>::new("UPDATE tenants SET test_today = ");
        q.bind_opt_date(today)
            .push(", last_scheduled_run = NULL WHERE id = ")
            .bind(tenant);
        q.execute(&mut *self.write_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(())
    }

    async fn claim_scheduled_run(&self, tenant: TenantId, date: Date) -> StoreResult<bool> {
        // Concurrent claimers queue for the row; each re-checks the condition on the
        // row as the one before it left it, so only the first one matches.
        let mut q = Query::<B>::new("UPDATE tenants SET last_scheduled_run = ");
        q.bind_date(date)
            .push(" WHERE id = ")
            .bind(tenant)
            .push(" AND (last_scheduled_run IS NULL OR last_scheduled_run < ")
            .bind_date(date)
            .push(")");
        let claimed = q
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(claimed == 1)
    }
}
