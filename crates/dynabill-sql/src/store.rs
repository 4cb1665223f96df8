//! [`SqlStore`]: the storage traits implemented once over a [`Backend`].

use async_trait::async_trait;
use dynabill_app::model::*;
use dynabill_app::store::*;
use dynabill_core::domain::{AccountId, InvoiceId, TenantId};
use dynabill_core::tax::TaxRule;
use jiff::Timestamp;
use rust_decimal::Decimal;
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
    B: Backend + BillingStore + InvoiceStore + TaxRateStore,
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

#[async_trait]
impl<B: Backend + InvoiceStore> InvoiceStore for SqlStore<B> {
    async fn find_invoice(
        &self,
        tenant: TenantId,
        id: InvoiceId,
        with_lines: bool,
    ) -> StoreResult<Option<Invoice>> {
        self.backend.find_invoice(tenant, id, with_lines).await
    }
    async fn list_invoices(
        &self,
        tenant: TenantId,
        filter: &InvoiceFilter,
        page: PageRequest,
        with_lines: bool,
    ) -> StoreResult<Page<Invoice>> {
        self.backend
            .list_invoices(tenant, filter, page, with_lines)
            .await
    }
    async fn update_invoice(
        &self,
        tenant: TenantId,
        id: InvoiceId,
        version: i64,
        update: &InvoiceUpdate,
        prefix: &str,
        now: Timestamp,
    ) -> StoreResult<Invoice> {
        self.backend
            .update_invoice(tenant, id, version, update, prefix, now)
            .await
    }
    async fn cancel_invoice(
        &self,
        tenant: TenantId,
        id: InvoiceId,
        version: i64,
        reason: Option<&str>,
        rebill: bool,
        balance: (Decimal, Decimal),
        now: Timestamp,
    ) -> StoreResult<Invoice> {
        self.backend
            .cancel_invoice(tenant, id, version, reason, rebill, balance, now)
            .await
    }
    async fn post_invoice(
        &self,
        tenant: TenantId,
        id: InvoiceId,
        version: i64,
        post: &PostInvoice,
        prefix: &str,
        now: Timestamp,
    ) -> StoreResult<Invoice> {
        self.backend
            .post_invoice(tenant, id, version, post, prefix, now)
            .await
    }
    async fn record_tax_error(
        &self,
        tenant: TenantId,
        id: InvoiceId,
        error: &str,
        next_attempt: Timestamp,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.backend
            .record_tax_error(tenant, id, error, next_attempt, now)
            .await
    }
    async fn account_has_invoices(
        &self,
        tenant: TenantId,
        account: AccountId,
    ) -> StoreResult<bool> {
        self.backend.account_has_invoices(tenant, account).await
    }
    async fn account_has_unpaid_invoices(
        &self,
        tenant: TenantId,
        account: AccountId,
    ) -> StoreResult<bool> {
        self.backend
            .account_has_unpaid_invoices(tenant, account)
            .await
    }
}

#[async_trait]
impl<B: Backend + TaxRateStore> TaxRateStore for SqlStore<B> {
    async fn add_tax_rate(&self, tenant: TenantId, rule: &TaxRule) -> StoreResult<TaxRateRecord> {
        self.backend.add_tax_rate(tenant, rule).await
    }
    async fn list_tax_rates(&self, tenant: TenantId) -> StoreResult<Vec<TaxRateRecord>> {
        self.backend.list_tax_rates(tenant).await
    }
    async fn remove_tax_rate(&self, tenant: TenantId, id: i64) -> StoreResult<bool> {
        self.backend.remove_tax_rate(tenant, id).await
    }
}
