//! Tenants and API users in SQLite.

use async_trait::async_trait;
use dynabill_app::store::{NewApiUser, NewTenant, StoreError, StoreResult, TenantRow, TenantStore};
use dynabill_core::domain::TenantId;
use dynabill_sql::{CredentialRecord, TENANT_COLUMNS, TenantRecord, date_text, micros};
use jiff::Timestamp;
use jiff::civil::Date;

use crate::{SqliteStore, db_error, is_unique_violation};

#[async_trait]
impl TenantStore for SqliteStore {
    async fn create_tenant(
        &self,
        tenant: &NewTenant,
        user: &NewApiUser,
        now: Timestamp,
    ) -> StoreResult<TenantRow> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tenants (app_key, name, currency, time_zone, created_at) VALUES (?, ?, ?, ?, ?)
             RETURNING id",
        )
        .bind(&tenant.app_key)
        .bind(&tenant.name)
        .bind(&tenant.currency)
        .bind(&tenant.time_zone)
        .bind(micros(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        insert_user(&mut tx, id, user, now).await?;
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants t WHERE t.id = ?");
        let row: TenantRecord = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        row.try_into()
    }

    async fn add_api_user(
        &self,
        tenant: TenantId,
        user: &NewApiUser,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        insert_user(&mut tx, tenant.0, user, now).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn tenant_by_app_key(&self, app_key: &str) -> StoreResult<Option<TenantRow>> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants t WHERE t.app_key = ?");
        let row: Option<TenantRecord> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(app_key)
            .fetch_optional(&self.reader)
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
            "SELECT {TENANT_COLUMNS}, u.token_hash FROM tenants t JOIN api_users u ON u.tenant_id = t.id
             WHERE t.app_key = ? AND u.user_name = ?"
        );
        let row: Option<CredentialRecord> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(app_key)
            .bind(user_name)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_error)?;
        row.map(CredentialRecord::into_parts).transpose()
    }

    async fn tenant_count(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
            .fetch_one(&self.reader)
            .await
            .map_err(db_error)
    }

    async fn list_tenants(&self) -> StoreResult<Vec<TenantRow>> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants t ORDER BY t.id");
        let rows: Vec<TenantRecord> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.reader)
            .await
            .map_err(db_error)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn update_tenant_settings(&self, tenant: TenantId, row: &TenantRow) -> StoreResult<()> {
        sqlx::query(
            "UPDATE tenants SET time_zone = ?, auto_post = ?, invoice_prefix = ?, bill_run_hour = ?,
                 proration_policy = ?, rounding = ?, tax_mode = ?, avatax_url = ?, avatax_account_id = ?,
                 avatax_license_key = ?, avatax_company_code = ? WHERE id = ?",
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
        .execute(&self.writer)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn set_test_today(&self, tenant: TenantId, today: Option<Date>) -> StoreResult<()> {
        sqlx::query("UPDATE tenants SET test_today = ?, last_scheduled_run = NULL WHERE id = ?")
            .bind(today.map(date_text))
            .bind(tenant.0)
            .execute(&self.writer)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn claim_scheduled_run(&self, tenant: TenantId, date: Date) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE tenants SET last_scheduled_run = ?1 WHERE id = ?2
             AND (last_scheduled_run IS NULL OR last_scheduled_run < ?1)",
        )
        .bind(date_text(date))
        .bind(tenant.0)
        .execute(&self.writer)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }
}

async fn insert_user(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    tenant: i64,
    user: &NewApiUser,
    now: Timestamp,
) -> StoreResult<()> {
    let inserted = sqlx::query(
        "INSERT INTO api_users (tenant_id, user_name, token_hash, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(tenant)
    .bind(&user.user_name)
    .bind(user.token_hash.as_slice())
    .bind(micros(now))
    .execute(&mut **tx)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::UserNameTaken),
        Err(e) => Err(db_error(e)),
    }
}
