//! dynabill-app: the use cases (create an account, cancel a plan, ...) and the
//! storage traits they need. Knows nothing of HTTP, JSON or SQL.

pub mod accounts;
pub mod auth;
pub mod billing;
pub mod clock;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod insights;
pub mod invoices;
pub mod model;
pub mod one_time;
pub mod plans;
mod races;
pub mod recurring;
pub mod secrets;
pub mod store;
pub mod tax_engine;
pub mod taxes;
pub mod telemetry;
pub mod tenants;
pub mod webhooks;

use std::sync::Arc;

pub use clock::{Clock, SystemClock};
pub use error::{AppError, Entity, Field};
pub use store::{Store, StoreError};

/// The application: every use case hangs off this, whichever door called it.
#[derive(Clone)]
pub struct App {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    test_clock: bool,
    private_webhooks: bool,
    tax_engine: Option<Arc<dyn tax_engine::TaxEngine>>,
    credentials: Arc<auth::CredentialCache>,
    /// Seals and opens the secrets stored (`secrets`); `None` until given.
    keyring: Option<Arc<secrets::Keyring>>,
    telemetry: Arc<telemetry::Telemetry>,
}

impl App {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> App {
        App {
            store,
            clock,
            test_clock: false,
            private_webhooks: false,
            tax_engine: None,
            credentials: Arc::default(),
            keyring: None,
            telemetry: Arc::default(),
        }
    }

    /// Turns the test clock on: each tenant's "today" may then be set (`serve --test-clock`).
    pub fn with_test_clock(mut self) -> App {
        self.test_clock = true;
        self
    }

    /// Lets webhook endpoints be loopback or private addresses
    /// (`serve --allow-private-webhooks`; tests, and receivers on one's own network).
    pub fn with_private_webhooks(mut self) -> App {
        self.private_webhooks = true;
        self
    }

    /// Whether webhook endpoints may be loopback or private addresses.
    pub fn private_webhooks(&self) -> bool {
        self.private_webhooks
    }

    /// Connects the external tax engine (AvaTax) used by tenants in `TaxMode` 3.
    pub fn with_tax_engine(mut self, engine: Arc<dyn tax_engine::TaxEngine>) -> App {
        self.tax_engine = Some(engine);
        self
    }

    /// The key ring that seals the secrets this app stores (AvaTax license
    /// keys, webhook signing secrets) and opens them. Without one, storing or
    /// reading a secret is an internal error: never plain text.
    pub fn with_keyring(mut self, keyring: secrets::Keyring) -> App {
        self.keyring = Some(Arc::new(keyring));
        self
    }

    pub(crate) fn keyring(&self) -> Result<&secrets::Keyring, AppError> {
        self.keyring.as_deref().ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "no secret key is configured: secrets cannot be stored or read"
            ))
        })
    }

    pub fn seal_secret(
        &self,
        purpose: secrets::SecretUse,
        plain: &str,
    ) -> Result<String, AppError> {
        self.keyring()?
            .seal(purpose, plain)
            .map_err(|e| AppError::Internal(e.into()))
    }

    /// Opens a stored secret (for the one place that sends it).
    pub fn open_secret(
        &self,
        purpose: secrets::SecretUse,
        sealed: &str,
    ) -> Result<String, AppError> {
        self.keyring()?
            .open(purpose, sealed)
            .map_err(|e| AppError::Internal(e.into()))
    }

    pub fn tax_engine(&self) -> Option<&Arc<dyn tax_engine::TaxEngine>> {
        self.tax_engine.as_ref()
    }

    pub(crate) fn credentials(&self) -> &auth::CredentialCache {
        &self.credentials
    }

    pub fn test_clock(&self) -> bool {
        self.test_clock
    }

    /// What this app counts for `/metrics`.
    pub fn telemetry(&self) -> &telemetry::Telemetry {
        &self.telemetry
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
}
