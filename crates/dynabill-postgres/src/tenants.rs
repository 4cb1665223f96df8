//! Tenants and API users in PostgreSQL.

use async_trait::async_trait;
use dynabill_app::store::{NewApiUser, NewTenant, StoreError, StoreResult, TenantRow, TenantStore};
use dynabill_core::domain::TenantId;
use dynabill_sql::{CredentialRecord, TENANT_COLUMNS, TenantRecord, date_text, micros};
use jiff::Timestamp;
use jiff::civil::Date;
use sqlx::PgConnection;

use crate::{PgStore, db_error, violates};

/// The columns of `tenants` in the shapes `TenantRecord` reads (codes as BIGINT,
/// dates as text), for a source aliased `t` from which [`TENANT_COLUMNS`] selects.
macro_rules! tenant_shapes {
    () => {
        "id, app_key, name, currency, time_zone, auto_post, invoice_prefix, \
         bill_run_hour::int8 AS bill_run_hour, proration_policy::int8 AS proration_policy, \
         rounding::int8 AS rounding, tax_mode::int8 AS tax_mode, avatax_url, avatax_account_id, \
         avatax_license_key, avatax_company_code, test_today::text AS test_today, created_at"
    };
}

/// `tenants` as the table `t` that [`TENANT_COLUMNS`] reads. PostgreSQL flattens the
/// subquery, so lookups still use the table's indexes.
const TENANTS_AS_T: &str = concat!("(SELECT ", tenant_shapes!(), " FROM tenants) t");

#[async_trait]
impl TenantStore for PgStore {
    async fn create_tenant(
        &self,
        tenant: &NewTenant,
        user: &NewApiUser,
        now: Timestamp,
    ) -> StoreResult<TenantRow> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let sql = format!(
            "WITH n AS (INSERT INTO tenants (app_key, name, currency, time_zone, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING *)
             SELECT {TENANT_COLUMNS} FROM (SELECT {} FROM n) t",
            tenant_shapes!()
        );
        let row: TenantRecord = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&tenant.app_key)
            .bind(&tenant.name)
            .bind(&tenant.currency)
            .bind(&tenant.time_zone)
            .bind(micros(now))
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        insert_user(&mut tx, row.id, user, now).await?;
        tx.commit().await.map_err(db_error)?;
        row.try_into()
    }

    async fn add_api_user(
        &self,
        tenant: TenantId,
        user: &NewApiUser,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        insert_user(&mut conn, tenant.0, user, now).await
    }

    async fn tenant_by_app_key(&self, app_key: &str) -> StoreResult<Option<TenantRow>> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM {TENANTS_AS_T} WHERE t.app_key = $1");
        let row: Option<TenantRecord> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(app_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn credential(
        &self,
        app_key: &str,
        user_name: &str,
    ) -> StoreResult<Option<(TenantRow, [u8; 32])>> {
        let sql = format!(
            "SELECT {TENANT_COLUMNS}, u.token_hash
             FROM {TENANTS_AS_T} JOIN api_users u ON u.tenant_id = t.id
             WHERE t.app_key = $1 AND u.user_name = $2"
        );
        let row: Option<CredentialRecord> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(app_key)
            .bind(user_name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.map(CredentialRecord::into_parts).transpose()
    }

    async fn tenant_count(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn list_tenants(&self) -> StoreResult<Vec<TenantRow>> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM {TENANTS_AS_T} ORDER BY t.id");
        let rows: Vec<TenantRecord> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn update_tenant_settings(&self, tenant: TenantId, row: &TenantRow) -> StoreResult<()> {
        sqlx::query(
            "UPDATE tenants SET time_zone = $1, auto_post = $2, invoice_prefix = $3,
                 bill_run_hour = $4, proration_policy = $5, rounding = $6, tax_mode = $7,
                 avatax_url = $8, avatax_account_id = $9, avatax_license_key = $10,
                 avatax_company_code = $11
             WHERE id = $12",
        )
        .bind(&row.time_zone)
        .bind(row.auto_post)
        .bind(&row.invoice_prefix)
        .bind(row.bill_run_hour)
        .bind(row.proration_policy)
        .bind(row.rounding)
        .bind(row.tax_mode)
        .bind(&row.avatax_url)
        .bind(&row.avatax_account_id)
        .bind(&row.avatax_license_key)
        .bind(&row.avatax_company_code)
        .bind(tenant.0)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn set_test_today(&self, tenant: TenantId, today: Option<Date>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE tenants SET test_today = $1::date, last_scheduled_run = NULL WHERE id = $2",
        )
        .bind(today.map(date_text))
        .bind(tenant.0)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn claim_scheduled_run(&self, tenant: TenantId, date: Date) -> StoreResult<bool> {
        // Concurrent claimers queue for the row lock; each re-checks the condition
        // on the row as the one before it left it, so only the first one matches.
        let done = sqlx::query(
            "UPDATE tenants SET last_scheduled_run = $1::date
             WHERE id = $2 AND (last_scheduled_run IS NULL OR last_scheduled_run < $1::date)",
        )
        .bind(date_text(date))
        .bind(tenant.0)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }
}

async fn insert_user(
    conn: &mut PgConnection,
    tenant: i64,
    user: &NewApiUser,
    now: Timestamp,
) -> StoreResult<()> {
    let inserted = sqlx::query(
        "INSERT INTO api_users (tenant_id, user_name, token_hash, created_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(tenant)
    .bind(&user.user_name)
    .bind(user.token_hash.as_slice())
    .bind(micros(now))
    .execute(conn)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if violates(&e, "api_users_user_name") => Err(StoreError::UserNameTaken),
        Err(e) => Err(db_error(e)),
    }
}
