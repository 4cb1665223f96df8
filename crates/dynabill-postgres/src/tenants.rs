//! Tenants and API users in PostgreSQL.

use async_trait::async_trait;
use dynabill_app::store::{NewApiUser, NewTenant, StoreError, StoreResult, TenantRow, TenantStore};
use dynabill_core::domain::TenantId;
use dynabill_sql::{CredentialRecord, TenantRecord, micros};
use jiff::Timestamp;
use sqlx::PgConnection;

use crate::{PgStore, db_error, violates};

#[async_trait]
impl TenantStore for PgStore {
    async fn create_tenant(
        &self,
        tenant: &NewTenant,
        user: &NewApiUser,
        now: Timestamp,
    ) -> StoreResult<TenantRow> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let row: TenantRecord = sqlx::query_as(
            "INSERT INTO tenants (app_key, name, currency, time_zone, created_at)
             VALUES ($1, $2, $3, $4, $5)
             RETURNING id, app_key, name, currency, time_zone, created_at",
        )
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
        let row: Option<TenantRecord> = sqlx::query_as(
            "SELECT id, app_key, name, currency, time_zone, created_at
             FROM tenants WHERE app_key = $1",
        )
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
        let row: Option<CredentialRecord> = sqlx::query_as(
            "SELECT t.id, t.app_key, t.name, t.currency, t.time_zone, t.created_at, u.token_hash
             FROM tenants t JOIN api_users u ON u.tenant_id = t.id
             WHERE t.app_key = $1 AND u.user_name = $2",
        )
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
