//! dynabill-app: the use cases (create an account, cancel a plan, ...) and the
//! storage traits they need. Knows nothing of HTTP, JSON or SQL.

pub mod accounts;
pub mod auth;
pub mod clock;
pub mod error;
pub mod idempotency;
pub mod model;
pub mod plans;
pub mod store;
pub mod tenants;

use std::sync::Arc;

pub use clock::{Clock, SystemClock};
pub use error::{AppError, Entity, Field};
pub use store::{Store, StoreError};

/// The application: every use case hangs off this, whichever door called it.
#[derive(Clone)]
pub struct App {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl App {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> App {
        App { store, clock }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
}

/// Create-or-update retries this many times when a concurrent writer wins a race
/// (an `ExtID` inserted meanwhile, or a record changed since it was read).
const WRITE_RACE_RETRIES: usize = 8;
