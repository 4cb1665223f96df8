//! Bill runs shared by processes: the run of a tenant and date, and the batches of
//! its accounts that its participants claim with a lease.
//!
//! A batch is the range of account IDs `after < id <= last`; batches follow each
//! other without a gap, so the next one starts after the highest `last` claimed.
//! Two claimers that read the same `last` insert the same key and the second one's
//! insert does nothing (`ON CONFLICT DO NOTHING`): it reads again and claims the
//! batch after. A lease is a time in microseconds, written by the claimer's clock:
//! the machines of one book must agree on the time to well within a lease (NTP).

use async_trait::async_trait;
use dynabill_app::store::{BatchOutcome, BillRunId, BillRunStore, Claim, Lease, StoreResult};
use dynabill_core::domain::{AccountId, TenantId};
use jiff::Timestamp;
use jiff::civil::Date;

use crate::backend::{Backend, Conn, failed};
use crate::query::Query;
use crate::store::SqlStore;
use crate::values::{from_micros, micros};

/// What makes an account billable (Active or Billing issues, not deleted).
pub(crate) const BILLABLE: &str = "status IN (1, 3) AND deleted_at IS NULL";

/// How many times a claim reads again after losing a race to another claimer
/// before it gives up (each loss means another claimer made progress).
const CLAIM_ATTEMPTS: u32 = 1000;

/// A batch that can be taken over: its key and the claims it had.
#[derive(Debug, sqlx::FromRow)]
pub struct ExpiredBatchRow {
    pub after_account: i64,
    pub last_account: i64,
    pub claims: i64,
}

/// An unfinished run: its ID and whether it is live.
#[derive(Debug, sqlx::FromRow)]
pub struct OpenRunRow {
    pub id: i64,
    pub heartbeat_at: i64,
    pub lease: i64,
}

fn lease_end(lease: Lease) -> i64 {
    let length = i64::try_from(lease.length.as_micros()).unwrap_or(i64::MAX);
    micros(lease.now).saturating_add(length)
}

fn lease_micros(lease: Lease) -> i64 {
    i64::try_from(lease.length.as_micros()).unwrap_or(i64::MAX)
}

impl<B: Backend> SqlStore<B> {
    async fn open_run(
        conn: &mut Conn<B>,
        tenant: TenantId,
        date: Date,
    ) -> StoreResult<Option<OpenRunRow>> {
        let mut q =
            Query::<B>::new("SELECT id, heartbeat_at, lease FROM bill_runs WHERE tenant_id = ");
        q.bind(tenant)
            .push(" AND run_date = ")
            .bind_date(date)
            .push(" AND finished_at IS NULL");
        q.fetch_optional(conn).await.map_err(failed::<B>)
    }

    async fn beat(conn: &mut Conn<B>, run: i64, lease: Lease) -> StoreResult<()> {
        let mut q = Query::<B>::new("UPDATE bill_runs SET heartbeat_at = ");
        q.bind(micros(lease.now))
            .push(", lease = ")
            .bind(lease_micros(lease))
            .push(" WHERE id = ")
            .bind(run);
        q.execute(conn).await.map_err(failed::<B>)?;
        Ok(())
    }

    /// The billable accounts of `tenant` in `after < id <= last` (no upper bound
    /// without `last`), at most `limit`, in ID order.
    pub(crate) async fn accounts_in(
        &self,
        tenant: TenantId,
        after: i64,
        last: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AccountId>> {
        let mut q = Query::<B>::new("SELECT id FROM accounts WHERE tenant_id = ");
        q.bind(tenant).push(" AND id > ").bind(after);
        if let Some(last) = last {
            q.push(" AND id <= ").bind(last);
        }
        q.push(format_args!(" AND {BILLABLE} ORDER BY id LIMIT "))
            .bind(i64::from(limit));
        let ids: Vec<(i64,)> = q
            .fetch_all(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(ids.into_iter().map(|(id,)| AccountId(id)).collect())
    }

    /// Takes over the first batch of `run` whose owner's lease expired, if any.
    async fn take_over(
        &self,
        tenant: TenantId,
        run: BillRunId,
        owner: &str,
        lease: Lease,
    ) -> StoreResult<Option<Claim>> {
        let conn = &mut *self.write_conn().await?;
        loop {
            let mut q = Query::<B>::new(
                "SELECT after_account, last_account, claims FROM bill_run_batches WHERE run_id = ",
            );
            q.bind(run.0)
                .push(" AND done_at IS NULL AND lease_until < ")
                .bind(micros(lease.now))
                .push(" ORDER BY after_account LIMIT 1");
            let Some(expired): Option<ExpiredBatchRow> =
                q.fetch_optional(conn).await.map_err(failed::<B>)?
            else {
                return Ok(None);
            };
            // Only if nobody took it over since it was read.
            let mut q = Query::<B>::new("UPDATE bill_run_batches SET owner = ");
            q.bind(owner)
                .push(", lease_until = ")
                .bind(lease_end(lease))
                .push(", claims = claims + 1 WHERE run_id = ")
                .bind(run.0)
                .push(" AND after_account = ")
                .bind(expired.after_account)
                .push(" AND claims = ")
                .bind(expired.claims)
                .push(" AND done_at IS NULL");
            if q.execute(conn).await.map_err(failed::<B>)? == 1 {
                let accounts = self
                    .accounts_in(
                        tenant,
                        expired.after_account,
                        Some(expired.last_account),
                        u32::MAX,
                    )
                    .await?;
                return Ok(Some(Claim::Batch {
                    after: AccountId(expired.after_account),
                    last: AccountId(expired.last_account),
                    accounts,
                    taken_over: true,
                }));
            }
        }
    }

    /// Claims the next `size` billable accounts after the last batch of `run`.
    async fn claim_next(
        &self,
        tenant: TenantId,
        run: BillRunId,
        owner: &str,
        size: u32,
        lease: Lease,
    ) -> StoreResult<Claim> {
        for _ in 0..CLAIM_ATTEMPTS {
            let mut q = Query::<B>::new(
                "SELECT COALESCE(MAX(last_account), 0) FROM bill_run_batches WHERE run_id = ",
            );
            q.bind(run.0);
            let (after,): (i64,) = q
                .fetch_one(&mut *self.read_conn().await?)
                .await
                .map_err(failed::<B>)?;
            let accounts = self.accounts_in(tenant, after, None, size).await?;
            let Some(last) = accounts.last().copied() else {
                return self.nothing_to_claim(run, owner).await;
            };
            let mut q = Query::<B>::new(
                "INSERT INTO bill_run_batches \
                 (run_id, after_account, last_account, owner, lease_until, claims) VALUES (",
            );
            q.bind(run.0)
                .push(", ")
                .bind(after)
                .push(", ")
                .bind(last.0)
                .push(", ")
                .bind(owner)
                .push(", ")
                .bind(lease_end(lease))
                .push(", 1) ON CONFLICT DO NOTHING");
            if q.execute(&mut *self.write_conn().await?)
                .await
                .map_err(failed::<B>)?
                == 1
            {
                return Ok(Claim::Batch {
                    after: AccountId(after),
                    last,
                    accounts,
                    taken_over: false,
                });
            }
        }
        Err(anyhow::anyhow!(
            "could not claim a batch of bill run {} after {CLAIM_ATTEMPTS} tries",
            run.0
        )
        .into())
    }

    /// `Wait` while other owners hold batches not done, else `Done`.
    async fn nothing_to_claim(&self, run: BillRunId, owner: &str) -> StoreResult<Claim> {
        let mut q =
            Query::<B>::new("SELECT MIN(lease_until) FROM bill_run_batches WHERE run_id = ");
        q.bind(run.0)
            .push(" AND done_at IS NULL AND owner <> ")
            .bind(owner);
        let (until,): (Option<i64>,) = q
            .fetch_one(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        match until {
            Some(until) => Ok(Claim::Wait {
                until: from_micros(until)?,
            }),
            None => Ok(Claim::Done),
        }
    }
}

#[async_trait]
impl<B: Backend> BillRunStore for SqlStore<B> {
    async fn open_bill_run(
        &self,
        tenant: TenantId,
        date: Date,
        lease: Lease,
    ) -> StoreResult<(BillRunId, bool)> {
        let conn = &mut *self.write_conn().await?;
        loop {
            if let Some(open) = Self::open_run(conn, tenant, date).await? {
                if open.heartbeat_at.saturating_add(open.lease) >= micros(lease.now) {
                    Self::beat(conn, open.id, lease).await?;
                    return Ok((BillRunId(open.id), false));
                }
                // Nobody renewed it within its lease: its participants are gone.
                let mut q =
                    Query::<B>::new("UPDATE bill_runs SET abandoned = TRUE, finished_at = ");
                q.bind(micros(lease.now))
                    .push(" WHERE id = ")
                    .bind(open.id)
                    .push(" AND finished_at IS NULL");
                q.execute(conn).await.map_err(failed::<B>)?;
            }
            let mut q = Query::<B>::new(
                "INSERT INTO bill_runs (tenant_id, run_date, started_at, heartbeat_at, lease) VALUES (",
            );
            q.bind(tenant)
                .push(", ")
                .bind_date(date)
                .push(", ")
                .bind(micros(lease.now))
                .push(", ")
                .bind(micros(lease.now))
                .push(", ")
                .bind(lease_micros(lease))
                .push(") ON CONFLICT DO NOTHING");
            if q.execute(conn).await.map_err(failed::<B>)? == 1 {
                self.backend().bill_run_starting().await;
                let open = Self::open_run(conn, tenant, date).await?;
                if let Some(open) = open {
                    return Ok((BillRunId(open.id), true));
                }
            }
            // Another process started it first (or it finished at once): read again.
        }
    }

    async fn join_bill_run(
        &self,
        tenant: TenantId,
        date: Date,
        lease: Lease,
    ) -> StoreResult<Option<BillRunId>> {
        let conn = &mut *self.write_conn().await?;
        let Some(open) = Self::open_run(conn, tenant, date).await? else {
            return Ok(None);
        };
        Self::beat(conn, open.id, lease).await?;
        Ok(Some(BillRunId(open.id)))
    }

    async fn claim_batch(
        &self,
        tenant: TenantId,
        run: BillRunId,
        owner: &str,
        size: u32,
        lease: Lease,
    ) -> StoreResult<Claim> {
        if let Some(claim) = self.take_over(tenant, run, owner, lease).await? {
            return Ok(claim);
        }
        self.claim_next(tenant, run, owner, size, lease).await
    }

    async fn renew_bill_run_leases(
        &self,
        run: BillRunId,
        owner: &str,
        lease: Lease,
    ) -> StoreResult<()> {
        let conn = &mut *self.write_conn().await?;
        Self::beat(conn, run.0, lease).await?;
        let mut q = Query::<B>::new("UPDATE bill_run_batches SET lease_until = ");
        q.bind(lease_end(lease))
            .push(" WHERE run_id = ")
            .bind(run.0)
            .push(" AND owner = ")
            .bind(owner)
            .push(" AND done_at IS NULL");
        q.execute(conn).await.map_err(failed::<B>)?;
        Ok(())
    }

    async fn finish_batch(
        &self,
        run: BillRunId,
        after: AccountId,
        owner: &str,
        outcome: BatchOutcome,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let mut q = Query::<B>::new("UPDATE bill_run_batches SET done_at = ");
        q.bind(micros(now))
            .push(", accounts = ")
            .bind(count(outcome.accounts))
            .push(", invoices = ")
            .bind(count(outcome.invoices))
            .push(" WHERE run_id = ")
            .bind(run.0)
            .push(" AND after_account = ")
            .bind(after.0)
            .push(" AND owner = ")
            .bind(owner)
            .push(" AND done_at IS NULL");
        let done = q
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(done == 1)
    }

    async fn finish_bill_run(&self, run: BillRunId, now: Timestamp) -> StoreResult<bool> {
        let mut q = Query::<B>::new("UPDATE bill_runs SET finished_at = ");
        q.bind(micros(now))
            .push(" WHERE id = ")
            .bind(run.0)
            .push(
                " AND finished_at IS NULL AND NOT EXISTS \
                 (SELECT 1 FROM bill_run_batches b WHERE b.run_id = bill_runs.id AND b.done_at IS NULL)",
            );
        let done = q
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(done == 1)
    }
}
