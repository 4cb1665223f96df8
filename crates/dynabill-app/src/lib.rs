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
pub mod store;
pub mod tax_engine;
pub mod taxes;
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

    pub fn tax_engine(&self) -> Option<&Arc<dyn tax_engine::TaxEngine>> {
        self.tax_engine.as_ref()
    }

    pub(crate) fn credentials(&self) -> &auth::CredentialCache {
        &self.credentials
    }

    pub fn test_clock(&self) -> bool {
        self.test_clock
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
}
