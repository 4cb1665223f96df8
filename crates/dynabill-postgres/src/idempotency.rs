//! Idempotency keys in PostgreSQL.

use async_trait::async_trait;
use dynabill_app::store::{IdempotencyClaim, IdempotencyStore, StoreError, StoreResult};
use dynabill_core::domain::TenantId;
use dynabill_sql::micros;
use jiff::Timestamp;

use crate::{PgStore, db_error};

#[derive(sqlx::FromRow)]
struct KeyRow {
    request_hash: Vec<u8>,
    response_status: Option<i32>,
    response_body: Option<Vec<u8>>,
}

#[async_trait]
impl IdempotencyStore for PgStore {
    async fn claim_idempotency_key(
        &self,
        tenant: TenantId,
        key: &str,
        request_hash: &[u8; 32],
        now: Timestamp,
        expired_before: Timestamp,
    ) -> StoreResult<IdempotencyClaim> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // One statement decides the race: it inserts the key, or replaces it if it
        // expired, or leaves it alone; in every case the row ends up locked by this
        // transaction (PostgreSQL locks a conflicting row even when the DO UPDATE's
        // WHERE is false), so the read below sees what the other claimant left.
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, key, request_hash, created_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, key) DO UPDATE
                 SET request_hash = EXCLUDED.request_hash, created_at = EXCLUDED.created_at,
                     response_status = NULL, response_body = NULL
                 WHERE idempotency_keys.created_at < $5",
        )
        .bind(tenant.0)
        .bind(key)
        .bind(request_hash.as_slice())
        .bind(micros(now))
        .bind(micros(expired_before))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected()
            == 1;
        if claimed {
            tx.commit().await.map_err(db_error)?;
            return Ok(IdempotencyClaim::Claimed);
        }
        let row: KeyRow = sqlx::query_as(
            "SELECT request_hash, response_status, response_body
             FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
        )
        .bind(tenant.0)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .ok_or_else(|| StoreError::Other(anyhow::anyhow!("locked idempotency key vanished")))?;
        tx.commit().await.map_err(db_error)?;
        if row.request_hash != request_hash.as_slice() {
            return Ok(IdempotencyClaim::Mismatch);
        }
        Ok(match row.response_status {
            Some(status) => IdempotencyClaim::Replay {
                status: u16::try_from(status).unwrap_or(500),
                body: row.response_body.unwrap_or_default(),
            },
            None => IdempotencyClaim::InFlight,
        })
    }

    async fn complete_idempotency_key(
        &self,
        tenant: TenantId,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE idempotency_keys SET response_status = $1, response_body = $2
             WHERE tenant_id = $3 AND key = $4",
        )
        .bind(i32::from(status))
        .bind(body)
        .bind(tenant.0)
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn release_idempotency_key(&self, tenant: TenantId, key: &str) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys
             WHERE tenant_id = $1 AND key = $2 AND response_status IS NULL",
        )
        .bind(tenant.0)
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn purge_idempotency_keys(&self, before: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(micros(before))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected())
    }
}
