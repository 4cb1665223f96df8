//! `Idempotency-Key`: a retried write returns the stored response and changes nothing.

use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use crate::App;
use crate::error::{AppError, Field};
use crate::model::Tenant;
use crate::store::IdempotencyClaim;

/// Keys are honoured for at least this long (the API promises 24 hours).
pub const KEY_RETENTION: SignedDuration = SignedDuration::from_hours(24);
/// How long a claimed key is held without news from its request: the request
/// renews it every third of this while it runs; a claim whose server died is
/// taken over by a retry once it has run out.
pub const CLAIM_LEASE: SignedDuration = SignedDuration::from_secs(60);
/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;

/// The fingerprint of a request: a retry must match it byte for byte after
/// canonicalisation by the door (same operation, same fields, same values).
pub fn request_fingerprint(canonical_request: &[u8]) -> [u8; 32] {
    Sha256::digest(canonical_request).into()
}

impl App {
    pub async fn claim_idempotency_key(
        &self,
        tenant: &Tenant,
        key: &str,
        fingerprint: &[u8; 32],
    ) -> Result<IdempotencyClaim, AppError> {
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(AppError::invalid(
                Field::IdempotencyKey,
                format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
            ));
        }
        let now = self.clock().now();
        let expired_before = now - KEY_RETENTION;
        Ok(self
            .store()
            .claim_idempotency_key(
                tenant.id,
                key,
                fingerprint,
                now,
                now + CLAIM_LEASE,
                expired_before,
            )
            .await?)
    }

    /// Runs `work`, the request a claimed key belongs to, renewing the claim's
    /// lease while it runs.
    pub async fn holding_idempotency_key<T>(
        &self,
        tenant: &Tenant,
        key: &str,
        work: impl Future<Output = T>,
    ) -> T {
        let renew = async {
            let every = std::time::Duration::try_from(CLAIM_LEASE / 3).expect("a positive lease");
            loop {
                tokio::time::sleep(every).await;
                let until = self.clock().now() + CLAIM_LEASE;
                if let Err(e) = self
                    .store()
                    .renew_idempotency_claim(tenant.id, key, until)
                    .await
                {
                    tracing::warn!(error = %e, "could not renew an Idempotency-Key's claim");
                }
            }
        };
        tokio::select! {
            biased;
            out = work => out,
            () = renew => unreachable!("the renewal never ends"),
        }
    }

    pub async fn complete_idempotency_key(
        &self,
        tenant: &Tenant,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> Result<(), AppError> {
        Ok(self
            .store()
            .complete_idempotency_key(tenant.id, key, status, body)
            .await?)
    }

    pub async fn release_idempotency_key(
        &self,
        tenant: &Tenant,
        key: &str,
    ) -> Result<(), AppError> {
        Ok(self.store().release_idempotency_key(tenant.id, key).await?)
    }

    /// Forgets keys older than twice the promised retention.
    pub async fn purge_idempotency_keys(&self) -> Result<u64, AppError> {
        let before: Timestamp = self.clock().now() - KEY_RETENTION - KEY_RETENTION;
        Ok(self.store().purge_idempotency_keys(before).await?)
    }
}
