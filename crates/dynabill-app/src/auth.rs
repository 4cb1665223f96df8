//! API credentials: random tokens, stored only as SHA-256, compared in constant time.
//!
//! Tokens carry 256 bits from the operating system's secure random source, so a
//! fast hash is enough: there is nothing to brute-force that a slow hash would slow.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::App;
use crate::error::AppError;
use crate::model::Tenant;

/// A freshly issued credential, shown to its owner once and never stored in clear.
#[derive(Clone, Debug)]
pub struct IssuedCredential {
    pub app_key: String,
    pub user_name: String,
    pub access_token: String,
}

/// Why authentication failed. Deliberately without detail: the caller learns only
/// that it failed, never which header was wrong.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication failed")]
    Rejected,
    #[error(transparent)]
    App(#[from] AppError),
}

pub(crate) fn random_hex(bytes: usize) -> Result<String, AppError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("random source: {e}")))?;
    Ok(hex::encode(buf))
}

pub(crate) fn new_access_token() -> Result<String, AppError> {
    Ok(format!("dbt_{}", random_hex(32)?))
}

pub(crate) fn new_app_key() -> Result<String, AppError> {
    Ok(format!("dbk_{}", random_hex(12)?))
}

pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The hash compared against when the user does not exist, so that an unknown
/// user takes the same path as a wrong token.
const DECOY_HASH: [u8; 32] = [0x5a; 32];

impl App {
    /// Resolves the three authentication headers to a tenant.
    pub async fn authenticate(
        &self,
        app_key: &str,
        user_name: &str,
        access_token: &str,
    ) -> Result<Tenant, AuthError> {
        if access_token.is_empty() {
            return Err(AuthError::Rejected);
        }
        self.authenticate_hash(app_key, user_name, &token_hash(access_token))
            .await
    }

    /// Resolves a credential known by its token's hash (a console session keeps
    /// the hash, never the token): the tenant while the credential still stands,
    /// so a token rotated or removed ends the sessions opened with it.
    pub async fn authenticate_hash(
        &self,
        app_key: &str,
        user_name: &str,
        presented: &[u8; 32],
    ) -> Result<Tenant, AuthError> {
        if app_key.is_empty() || user_name.is_empty() {
            return Err(AuthError::Rejected);
        }
        let presented = *presented;
        if let Some(tenant) = self.credentials().get(app_key, user_name, &presented) {
            return Ok(tenant);
        }
        let found = self
            .store()
            .credential(app_key, user_name)
            .await
            .map_err(AppError::from)?;
        let (row, stored) = match &found {
            Some((row, hash)) => (Some(row), *hash),
            None => (None, DECOY_HASH),
        };
        let matches: bool = presented.ct_eq(&stored).into();
        match row {
            Some(row) if matches => {
                let tenant = self.tenant_from_row(row.clone())?;
                self.credentials()
                    .put(app_key, user_name, stored, tenant.clone());
                Ok(tenant)
            }
            _ => Err(AuthError::Rejected),
        }
    }
}

/// How long a verified credential (and the tenant it opens) is trusted without
/// asking storage again. Short: settings changed by another process (`dynabill
/// tenant set`) are seen within it; changes made through this process are seen at once.
const CREDENTIAL_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Recently verified credentials: the hot path of every request skips a lookup.
/// Only successes are kept, keyed by AppKey and user, with the stored hash that
/// the presented token must still match.
/// AppKey and user name.
type CredentialKey = (String, String);
/// When it was verified, the stored hash, and the tenant it opens.
type CachedCredential = (std::time::Instant, [u8; 32], Tenant);

#[derive(Default)]
pub(crate) struct CredentialCache {
    entries: std::sync::Mutex<std::collections::HashMap<CredentialKey, CachedCredential>>,
}

impl CredentialCache {
    fn get(&self, app_key: &str, user_name: &str, presented: &[u8; 32]) -> Option<Tenant> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (at, stored, tenant) = entries.get(&(app_key.to_owned(), user_name.to_owned()))?;
        let fresh = at.elapsed() < CREDENTIAL_TTL;
        let matches: bool = presented.ct_eq(stored).into();
        (fresh && matches).then(|| tenant.clone())
    }

    fn put(&self, app_key: &str, user_name: &str, stored: [u8; 32], tenant: Tenant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a flood of distinct credentials cannot grow it without end.
        if entries.len() > 10_000 {
            entries.clear();
        }
        entries.insert(
            (app_key.to_owned(), user_name.to_owned()),
            (std::time::Instant::now(), stored, tenant),
        );
    }

    /// Forgets a tenant's entries after its settings or test date changed.
    pub(crate) fn forget_tenant(&self, tenant: dynabill_core::domain::TenantId) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (_, _, t)| t.id != tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_distinct() {
        let a = new_access_token().unwrap();
        let b = new_access_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
    }

    #[test]
    fn the_hash_is_sha256() {
        assert_eq!(
            hex::encode(token_hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
