//! [`SqlStore`]: the storage traits implemented once over a [`Backend`].

use async_trait::async_trait;
use dynabill_app::model::*;
use dynabill_app::store::*;
use dynabill_core::domain::{AccountId, InvoiceId, TenantId};
use jiff::Timestamp;
use sqlx::pool::PoolConnection;

use crate::backend::{Backend, failed};
use crate::query::Query;

/// The store of a SQL database: every storage trait of the application,
/// implemented over backend `B`.
#[derive(Clone)]
pub struct SqlStore<B> {
    backend: B,
}

impl<B: Backend> SqlStore<B> {
    /// Connects to the database at `url` (the backend's scheme). The schema is not
    /// touched: call [`Store::migrate`].
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Ok(SqlStore {
            backend: B::connect(url).await?,
        })
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// A connection for one read.
    pub(crate) async fn read_conn(&self) -> StoreResult<PoolConnection<B::Db>> {
        self.backend.reader().acquire().await.map_err(failed::<B>)
    }

    /// A connection for one write, committed on its own.
    pub(crate) async fn write_conn(&self) -> StoreResult<PoolConnection<B::Db>> {
        self.backend.writer().acquire().await.map_err(failed::<B>)
    }
}

#[async_trait]
impl<B> Store for SqlStore<B>
where
    B: Backend + BillingStore,
{
    async fn migrate(&self) -> StoreResult<()> {
        self.backend.migrate().await
    }

    async fn ping(&self) -> StoreResult<()> {
        Query::<B>::new("SELECT 1")
            .execute(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(())
    }

    async fn close(&self) {
        self.backend.close().await;
    }
}

// While the entities move here one by one, the others are still the backend's.

#[async_trait]
impl<B: Backend + BillingStore> BillingStore for SqlStore<B> {
    async fn billable_accounts(
        &self,
        tenant: TenantId,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AccountId>> {
        self.backend.billable_accounts(tenant, after, limit).await
    }
    async fn billing_snapshot(
        &self,
        tenant: TenantId,
        accounts: &[AccountId],
    ) -> StoreResult<Vec<BillingAccount>> {
        self.backend.billing_snapshot(tenant, accounts).await
    }
    async fn commit_bills(
        &self,
        tenant: TenantId,
        bills: &[AccountBill],
        prefix: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<Vec<InvoiceId>>> {
        self.backend.commit_bills(tenant, bills, prefix, now).await
    }
}
