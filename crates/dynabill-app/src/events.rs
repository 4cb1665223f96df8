//! Use cases of the event log: reading what happened, in order. Events are written
//! by the store itself, in the transaction of each change (ARCHITECTURE.md, "Events").

use crate::App;
use crate::error::{AppError, Entity, Field};
use crate::model::{Event, EventFilter, Page, PageRequest, Tenant};

impl App {
    pub async fn list_events(
        &self,
        tenant: &Tenant,
        filter: &EventFilter,
        page: PageRequest,
    ) -> Result<Page<Event>, AppError> {
        Ok(self.store().list_events(tenant.id, filter, page).await?)
    }

    /// The newest `limit` events of these records (object type, ID), newest first:
    /// a timeline of an account, its plans, items and invoices.
    pub async fn recent_events(
        &self,
        tenant: &Tenant,
        records: &[(&str, i64)],
        limit: u32,
    ) -> Result<Vec<Event>, AppError> {
        Ok(self
            .store()
            .recent_events(tenant.id, records, limit)
            .await?)
    }

    pub async fn get_event(&self, tenant: &Tenant, id: &str) -> Result<Event, AppError> {
        self.store()
            .find_event(tenant.id, id)
            .await?
            .ok_or_else(|| AppError::not_found(Entity::Event, Field::Id, id))
    }
}
