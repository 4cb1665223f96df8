//! [`SqlStore`]: the storage traits implemented once over a [`Backend`].

use async_trait::async_trait;
use dynabill_app::store::{PoolGauge, Store, StoreGauges, StoreResult};
use dynabill_core::domain::TenantId;
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
        self.backend
            .waits()
            .timed(self.backend.reader().acquire())
            .await
            .map_err(failed::<B>)
    }

    /// A connection for one write, committed on its own.
    pub(crate) async fn write_conn(&self) -> StoreResult<PoolConnection<B::Db>> {
        self.backend
            .waits()
            .timed(self.backend.writer().acquire())
            .await
            .map_err(failed::<B>)
    }

    /// Numbers the committed events not numbered yet, of `tenant` or (`None`) of
    /// every tenant, before the log is read (see
    /// [`Backend::NUMBERS_EVENTS_ON_READ`]).
    pub(crate) async fn number_events(&self, tenant: Option<TenantId>) -> StoreResult<()> {
        if !B::NUMBERS_EVENTS_ON_READ {
            return Ok(());
        }
        let q = match tenant {
            Some(tenant) => {
                let mut q = Query::<B>::new("SELECT number_events(");
                q.bind(tenant).push(")");
                q
            }
            None => Query::<B>::new("SELECT number_all_events()"),
        };
        q.fetch_rows(&mut *self.write_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(())
    }
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn migrate(&self) -> StoreResult<()> {
        self.backend.migrate().await
    }

    fn parallel_writes(&self) -> bool {
        B::PARALLEL_WRITES
    }

    async fn ping(&self) -> StoreResult<()> {
        Query::<B>::new("SELECT 1")
            .execute(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(())
    }

    async fn gauges(&self) -> StoreResult<StoreGauges> {
        let pools = self
            .backend
            .pools()
            .into_iter()
            .map(|(name, pool)| PoolGauge {
                name,
                size: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                max: pool.options().get_max_connections(),
            })
            .collect();
        let (webhook_backlog,): (i64,) =
            Query::<B>::new("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 1")
                .fetch_one(&mut *self.read_conn().await?)
                .await
                .map_err(failed::<B>)?;
        let (acquired, waited_us, failed_acquires) = self.backend.waits().totals();
        Ok(StoreGauges {
            pools,
            webhook_backlog,
            acquired,
            waited_us,
            failed_acquires,
        })
    }

    async fn close(&self) {
        self.backend.close().await;
    }
}
