//! Secrets at rest: AvaTax license keys and webhook signing secrets are stored
//! sealed with the server's key ring, never in plain text.
//!
//! A sealed value reads `sealed:v1:<key id>:<base64url of nonce ‖ ciphertext>`:
//! XChaCha20-Poly1305 with a random 192-bit nonce, and what the secret is for
//! (`SecretUse`) as associated data, so a value moved to another column does not
//! open. The key ring's first key seals; every key in it opens what it sealed
//! (found by its ID), which is how a rotation proceeds without a moment where a
//! stored secret cannot be opened.

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::App;
use crate::error::AppError;
use crate::store::{SecretChange, SecretPlace, StoredSecret};

const PREFIX: &str = "sealed:v1:";
/// What the key check seals.
const KEY_CHECK: &str = "dynabill key check";
const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;

/// What a secret is for: bound to the sealed value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretUse {
    AvaTaxLicenseKey,
    WebhookSigning,
    KeyCheck,
    /// A console session cookie (sealed, so also tamper-proof).
    ConsoleSession,
}

impl SecretUse {
    fn label(self) -> &'static [u8] {
        match self {
            SecretUse::AvaTaxLicenseKey => b"dynabill avatax license key",
            SecretUse::WebhookSigning => b"dynabill webhook signing secret",
            SecretUse::KeyCheck => b"dynabill key check",
            SecretUse::ConsoleSession => b"dynabill console session",
        }
    }
}

/// Why a key ring or a sealed value was refused.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "a key must be {KEY_BYTES} bytes in standard base64 (44 characters); keys are separated by commas or lines"
    )]
    BadKey,
    #[error("the key ring is empty")]
    NoKey,
    #[error("a secret was sealed with key {0}, which this key ring does not hold (the wrong key?)")]
    UnknownKey(String),
    #[error("a secret sealed with key {0} does not open with it (a damaged value or key)")]
    Damaged(String),
    #[error("a stored secret is not in the sealed format")]
    Malformed,
    #[error("no random source: {0}")]
    Random(String),
}

/// One 256-bit key.
#[derive(Clone)]
struct SecretKey {
    id: String,
    bytes: [u8; KEY_BYTES],
}

impl SecretKey {
    fn new(bytes: [u8; KEY_BYTES]) -> SecretKey {
        let digest = Sha256::new()
            .chain_update(b"dynabill secret key id\0")
            .chain_update(bytes)
            .finalize();
        SecretKey {
            id: hex::encode(&digest[..8]),
            bytes,
        }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.bytes.into())
    }
}

/// The server's keys: the first seals, all of them open.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<SecretKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

impl Keyring {
    /// A key ring of one new random key.
    pub fn generate() -> Result<Keyring, SecretError> {
        let mut bytes = [0u8; KEY_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| SecretError::Random(e.to_string()))?;
        Ok(Keyring {
            keys: vec![SecretKey::new(bytes)],
        })
    }

    /// Reads keys in standard base64, separated by commas or line breaks; the
    /// first is the one that seals.
    pub fn parse(text: &str) -> Result<Keyring, SecretError> {
        let keys = text
            .split([',', '\n', '\r'])
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                let bytes = STANDARD.decode(part).map_err(|_| SecretError::BadKey)?;
                let bytes: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| SecretError::BadKey)?;
                Ok(SecretKey::new(bytes))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(SecretError::NoKey);
        }
        Ok(Keyring { keys })
    }

    /// The keys as [`Keyring::parse`] reads them, one per line.
    pub fn to_text(&self) -> String {
        self.keys
            .iter()
            .map(|key| STANDARD.encode(key.bytes) + "\n")
            .collect()
    }

    /// This ring with `newer` first: it seals from now on, and the keys of this
    /// ring still open what they sealed.
    pub fn led_by(&self, newer: &Keyring) -> Keyring {
        let mut keys = newer.keys.clone();
        keys.extend(
            self.keys
                .iter()
                .filter(|old| keys.iter().all(|k| k.id != old.id))
                .cloned()
                .collect::<Vec<_>>(),
        );
        Keyring { keys }
    }

    /// The ID of the key that seals.
    pub fn sealing_key_id(&self) -> &str {
        &self.keys[0].id
    }

    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// Seals `plain` for `purpose` with the first key.
    pub fn seal(&self, purpose: SecretUse, plain: &str) -> Result<String, SecretError> {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| SecretError::Random(e.to_string()))?;
        let sealed = key
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: purpose.label(),
                },
            )
            .map_err(|_| SecretError::Damaged(key.id.clone()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!(
            "{PREFIX}{}:{}",
            key.id,
            URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    /// Opens a value [`Keyring::seal`] made, with whichever key of the ring
    /// sealed it.
    pub fn open(&self, purpose: SecretUse, stored: &str) -> Result<String, SecretError> {
        let key_id = sealed_by(stored).ok_or(SecretError::Malformed)?;
        let body = &stored[PREFIX.len() + key_id.len() + 1..];
        let key = self
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| SecretError::UnknownKey(key_id.to_owned()))?;
        let damaged = || SecretError::Damaged(key_id.to_owned());
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| damaged())?;
        if bytes.len() < NONCE_BYTES {
            return Err(damaged());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let plain = key
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: purpose.label(),
                },
            )
            .map_err(|_| damaged())?;
        String::from_utf8(plain).map_err(|_| damaged())
    }
}

/// The ID of the key that sealed `stored`; `None` when it is not sealed (a
/// value stored in plain text by a version before sealing).
pub fn sealed_by(stored: &str) -> Option<&str> {
    let rest = stored.strip_prefix(PREFIX)?;
    let (key_id, _) = rest.split_once(':')?;
    Some(key_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_ring_and_purpose_only() {
        let ring = Keyring::generate().unwrap();
        let sealed = ring
            .seal(SecretUse::AvaTaxLicenseKey, "license-123")
            .unwrap();
        assert!(!sealed.contains("license-123"));
        assert_eq!(sealed_by(&sealed), Some(ring.sealing_key_id()));
        assert_eq!(
            ring.open(SecretUse::AvaTaxLicenseKey, &sealed).unwrap(),
            "license-123"
        );
        assert_ne!(
            sealed,
            ring.seal(SecretUse::AvaTaxLicenseKey, "license-123")
                .unwrap(),
            "a fresh nonce each time"
        );
        assert!(matches!(
            ring.open(SecretUse::WebhookSigning, &sealed),
            Err(SecretError::Damaged(_))
        ));
        let other = Keyring::generate().unwrap();
        assert!(matches!(
            other.open(SecretUse::AvaTaxLicenseKey, &sealed),
            Err(SecretError::UnknownKey(_))
        ));
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(ring.open(SecretUse::AvaTaxLicenseKey, &tampered).is_err());
        assert!(matches!(
            ring.open(SecretUse::AvaTaxLicenseKey, "plain"),
            Err(SecretError::Malformed)
        ));
    }

    #[test]
    fn a_ring_led_by_a_new_key_seals_with_it_and_still_opens_the_old_ones() {
        let old = Keyring::generate().unwrap();
        let sealed_before = old.seal(SecretUse::WebhookSigning, "whsec_x").unwrap();
        let new = Keyring::generate().unwrap();
        let both = old.led_by(&new);
        assert_eq!(both.sealing_key_id(), new.sealing_key_id());
        assert_eq!(
            both.open(SecretUse::WebhookSigning, &sealed_before)
                .unwrap(),
            "whsec_x"
        );
        let reread = Keyring::parse(&both.to_text()).unwrap();
        assert_eq!(reread.key_ids(), both.key_ids());
        assert!(matches!(Keyring::parse(" \n"), Err(SecretError::NoKey)));
        assert!(matches!(
            Keyring::parse("c2hvcnQ="),
            Err(SecretError::BadKey)
        ));
    }
}

/// What a stored secret is for, by where it lives.
fn purpose_of(place: SecretPlace) -> SecretUse {
    match place {
        SecretPlace::AvaTaxLicenseKey(_) => SecretUse::AvaTaxLicenseKey,
        SecretPlace::WebhookSecret(_) | SecretPlace::WebhookPreviousSecret(_) => {
            SecretUse::WebhookSigning
        }
        SecretPlace::KeyCheck => SecretUse::KeyCheck,
    }
}

/// The book's stored secrets, as read once at a start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredSecrets {
    secrets: Vec<StoredSecret>,
}

impl StoredSecrets {
    /// The IDs of the keys that sealed them (none: nothing is sealed yet).
    pub fn sealed_with(&self) -> BTreeSet<&str> {
        self.secrets
            .iter()
            .filter_map(|s| sealed_by(&s.value))
            .collect()
    }
}

impl App {
    /// The stored secrets, read without a key.
    pub async fn stored_secrets(&self) -> Result<StoredSecrets, AppError> {
        Ok(StoredSecrets {
            secrets: self.store().stored_secrets().await?,
        })
    }

    /// Opens every secret of `stored` with this app's key ring (one that does
    /// not open is an error saying where it is), seals those stored in plain
    /// text by a version before sealing, and stores the key check if none is
    /// stored yet (from then on, a start with another key is refused). Returns
    /// how many it sealed.
    pub async fn check_and_seal_secrets(&self, stored: StoredSecrets) -> Result<u64, AppError> {
        let ring = self.keyring()?;
        let mut changes = Vec::new();
        let stored = stored.secrets;
        if !stored.iter().any(|s| s.place == SecretPlace::KeyCheck) {
            let check = ring
                .seal(SecretUse::KeyCheck, KEY_CHECK)
                .map_err(internal)?;
            self.store().add_key_check(&check).await?;
        }
        for secret in stored {
            let purpose = purpose_of(secret.place);
            if sealed_by(&secret.value).is_some() {
                ring.open(purpose, &secret.value).map_err(|e| {
                    AppError::Internal(anyhow::anyhow!("the secret of {:?}: {e}", secret.place))
                })?;
            } else {
                changes.push(SecretChange {
                    place: secret.place,
                    to: ring.seal(purpose, &secret.value).map_err(internal)?,
                    from: secret.value,
                });
            }
        }
        if changes.is_empty() {
            return Ok(0);
        }
        Ok(self.store().replace_secrets(&changes).await?)
    }

    /// Seals every stored secret again with the ring's first key (after a new
    /// key was put first); returns how many were sealed again.
    pub async fn reseal_secrets(&self) -> Result<u64, AppError> {
        let ring = self.keyring()?;
        let mut changes = Vec::new();
        for secret in self.store().stored_secrets().await? {
            let purpose = purpose_of(secret.place);
            let plain = if sealed_by(&secret.value).is_some() {
                ring.open(purpose, &secret.value).map_err(|e| {
                    AppError::Internal(anyhow::anyhow!("the secret of {:?}: {e}", secret.place))
                })?
            } else {
                secret.value.clone()
            };
            changes.push(SecretChange {
                place: secret.place,
                to: ring.seal(purpose, &plain).map_err(internal)?,
                from: secret.value,
            });
        }
        Ok(self.store().replace_secrets(&changes).await?)
    }
}

fn internal(e: SecretError) -> AppError {
    AppError::Internal(e.into())
}
