//! Idempotency keys: claimed atomically, completed with the response to replay.

use async_trait::async_trait;
use dynabill_app::store::{IdempotencyClaim, IdempotencyStore, StoreError, StoreResult};
use dynabill_core::domain::TenantId;
use jiff::Timestamp;

use crate::backend::{Backend, failed};
use crate::query::{Query, select_list};
use crate::store::SqlStore;

#[derive(Debug, sqlx::FromRow)]
pub struct KeyRow {
    request_hash: Vec<u8>,
    response_status: Option<i64>,
    response_body: Option<Vec<u8>>,
}

#[async_trait]
impl<B: Backend> IdempotencyStore for SqlStore<B> {
    async fn claim_idempotency_key(
        &self,
        tenant: TenantId,
        key: &str,
        request_hash: &[u8; 32],
        now: Timestamp,
        lease_until: Timestamp,
        expired_before: Timestamp,
    ) -> StoreResult<IdempotencyClaim> {
        let mut tx = self.backend().begin_write().await?;
        // One statement decides the race: it inserts the key, or replaces it if it
        // expired or is an abandoned claim of the same request (never completed,
        // lease run out), or leaves it alone; in every case the row ends up locked by this
        // transaction (PostgreSQL locks a conflicting row even when the DO UPDATE's
        // WHERE is false; SQLite's write transaction holds the whole database), so
        // the read below sees what the other claimant left.
        let mut q = Query::<B>::new(
            "INSERT INTO idempotency_keys (tenant_id, key, request_hash, created_at, claimed_until) \
             VALUES (",
        );
        q.bind(tenant)
            .push(", ")
            .bind(key)
            .push(", ")
            .bind(request_hash.as_slice())
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(lease_until)
            .push(
                ") ON CONFLICT (tenant_id, key) DO UPDATE \
                 SET request_hash = excluded.request_hash, created_at = excluded.created_at, \
                 claimed_until = excluded.claimed_until, \
                 response_status = NULL, response_body = NULL \
                 WHERE idempotency_keys.created_at < ",
            )
            .bind(expired_before)
            .push(
                " OR (idempotency_keys.response_status IS NULL \
                 AND idempotency_keys.request_hash = excluded.request_hash \
                 AND (idempotency_keys.claimed_until IS NULL OR idempotency_keys.claimed_until < ",
            )
            .bind(now)
            .push("))");
        let claimed = q.execute(&mut tx).await.map_err(failed::<B>)? == 1;
        if claimed {
            tx.commit().await.map_err(failed::<B>)?;
            return Ok(IdempotencyClaim::Claimed);
        }
        let mut q = Query::<B>::new(format!(
            "SELECT {} FROM idempotency_keys WHERE tenant_id = ",
            select_list::<B>(&["request_hash", "response_status", "response_body"])
        ));
        q.bind(tenant).push(" AND key = ").bind(key);
        let row: KeyRow = q
            .fetch_optional(&mut tx)
            .await
            .map_err(failed::<B>)?
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("locked idempotency key vanished")))?;
        tx.commit().await.map_err(failed::<B>)?;
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
        let mut q = Query::<B>::new("UPDATE idempotency_keys SET response_status = ");
        q.bind(i64::from(status))
            .push(", response_body = ")
            .bind(body)
            .push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND key = ")
            .bind(key);
        q.execute(&mut *self.write_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(())
    }

    async fn renew_idempotency_claim(
        &self,
        tenant: TenantId,
        key: &str,
        lease_until: Timestamp,
    ) -> StoreResult<bool> {
        let mut q = Query::<B>::new("UPDATE idempotency_keys SET claimed_until = ");
        q.bind(lease_until)
            .push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND key = ")
            .bind(key)
            .push(" AND response_status IS NULL");
        let renewed = q
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(renewed == 1)
    }

    async fn release_idempotency_key(&self, tenant: TenantId, key: &str) -> StoreResult<()> {
        let mut q = Query::<B>::new("DELETE FROM idempotency_keys WHERE tenant_id = ");
        q.bind(tenant)
            .push(" AND key = ")
            .bind(key)
            .push(" AND response_status IS NULL");
        q.execute(&mut *self.write_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(())
    }

    async fn purge_idempotency_keys(&self, before: Timestamp) -> StoreResult<u64> {
        let mut q = Query::<B>::new("DELETE FROM idempotency_keys WHERE created_at < ");
        q.bind(before);
        q.execute(&mut *self.write_conn().await?)
            .await
            .map_err(failed::<B>)
    }
}
