//! Idempotency keys in SQLite.

use async_trait::async_trait;
use dynabill_app::store::{IdempotencyClaim, IdempotencyStore, StoreResult};
use dynabill_core::domain::TenantId;
use dynabill_sql::micros;
use jiff::Timestamp;

use crate::{SqliteStore, db_error};

#[derive(sqlx::FromRow)]
struct KeyRow {
    request_hash: Vec<u8>,
    created_at: i64,
    response_status: Option<i64>,
    response_body: Option<Vec<u8>>,
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn claim_idempotency_key(
        &self,
        tenant: TenantId,
        key: &str,
        request_hash: &[u8; 32],
        now: Timestamp,
        expired_before: Timestamp,
    ) -> StoreResult<IdempotencyClaim> {
        let mut tx = self.begin_write().await?;
        let existing: Option<KeyRow> = sqlx::query_as(
            "SELECT request_hash, created_at, response_status, response_body
             FROM idempotency_keys WHERE tenant_id = ? AND key = ?",
        )
        .bind(tenant.0)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let claim = match existing {
            Some(row) if row.created_at >= micros(expired_before) => {
                if row.request_hash != request_hash.as_slice() {
                    IdempotencyClaim::Mismatch
                } else {
                    match row.response_status {
                        Some(status) => IdempotencyClaim::Replay {
                            status: u16::try_from(status).unwrap_or(500),
                            body: row.response_body.unwrap_or_default(),
                        },
                        None => IdempotencyClaim::InFlight,
                    }
                }
            }
            _ => {
                sqlx::query(
                    "INSERT OR REPLACE INTO idempotency_keys (tenant_id, key, request_hash, created_at)
                     VALUES (?, ?, ?, ?)",
                )
                .bind(tenant.0)
                .bind(key)
                .bind(request_hash.as_slice())
                .bind(micros(now))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                IdempotencyClaim::Claimed
            }
        };
        tx.commit().await.map_err(db_error)?;
        Ok(claim)
    }

    async fn complete_idempotency_key(
        &self,
        tenant: TenantId,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> StoreResult<()> {
        sqlx::query("UPDATE idempotency_keys SET response_status = ?, response_body = ? WHERE tenant_id = ? AND key = ?")
            .bind(i64::from(status))
            .bind(body)
            .bind(tenant.0)
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn release_idempotency_key(&self, tenant: TenantId, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM idempotency_keys WHERE tenant_id = ? AND key = ? AND response_status IS NULL")
            .bind(tenant.0)
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn purge_idempotency_keys(&self, before: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < ?")
            .bind(micros(before))
            .execute(&self.writer)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected())
    }
}
