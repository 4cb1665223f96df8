//! Account plans in SQLite.

use async_trait::async_trait;
use dynabill_app::model::{
    Cancellation, Page, PageRequest, Plan, PlanFields, PlanFilter, RecordKey,
};
use dynabill_app::store::{PlanStore, StoreError, StoreResult};
use dynabill_core::domain::{AccountId, PlanId, TenantId};
use dynabill_sql::{PLAN_WRITABLE, PlanRecord, date_text, micros, plan_values};
use jiff::Timestamp;
use jiff::civil::Date;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::items::{PlanScope, cancel_items_of};
use crate::{SqliteStore, db_error, is_unique_violation, push_value};

pub(crate) const PLAN_SELECT: &str = "SELECT p.id, p.account_id, a.ext_id AS account_ext_id, p.ext_id, p.name, \
    p.start_date, p.end_date, p.auto_renew, p.renewal_term_months, p.billing_day, p.currency, p.po_number, \
    p.notes, p.cancel_date, p.created_at, p.updated_at, p.deleted_at, p.version \
    FROM plans p JOIN accounts a ON a.id = p.account_id";

/// `PlanStatus` as SQL, from the same rule as `PlanStatus::on`.
const PLAN_STATUS_SQL: &str = "(CASE WHEN p.cancel_date IS NOT NULL THEN 2 \
    WHEN p.end_date IS NOT NULL AND p.auto_renew = 0 AND p.end_date <= ";

fn push_filter(qb: &mut QueryBuilder<Sqlite>, tenant: TenantId, filter: &PlanFilter, today: Date) {
    qb.push(" WHERE p.tenant_id = ").push_bind(tenant.0);
    if let Some(id) = filter.id {
        qb.push(" AND p.id = ").push_bind(id);
    }
    if let Some(ext_id) = &filter.ext_id {
        qb.push(" AND p.ext_id = ").push_bind(ext_id.clone());
    }
    if let Some(account_id) = filter.account_id {
        qb.push(" AND p.account_id = ").push_bind(account_id);
    }
    if let Some(account_ext_id) = &filter.account_ext_id {
        qb.push(" AND a.ext_id = ")
            .push_bind(account_ext_id.clone());
    }
    if let Some(status) = filter.status {
        qb.push(" AND ")
            .push(PLAN_STATUS_SQL)
            .push_bind(date_text(today));
        qb.push(" THEN 3 ELSE 1 END) = ").push_bind(status.code());
    }
    if !filter.include_deleted {
        qb.push(" AND p.deleted_at IS NULL");
    }
}

async fn plan_by_id(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    id: i64,
) -> StoreResult<Option<Plan>> {
    let sql = format!("{PLAN_SELECT} WHERE p.tenant_id = ? AND p.id = ?");
    let row: Option<PlanRecord> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(db_error)?;
    row.map(TryInto::try_into).transpose()
}

fn write_error(e: sqlx::Error) -> StoreError {
    if is_unique_violation(&e) {
        return StoreError::ExtIdTaken;
    }
    db_error(e)
}

impl SqliteStore {
    /// Runs a conditional `UPDATE plans SET <set> WHERE <this plan at version>` and
    /// reads the plan back, in one write transaction.
    async fn change_plan(
        &self,
        tenant: TenantId,
        id: PlanId,
        version: i64,
        now: Timestamp,
        cascade_from: Option<Cancellation>,
        set: impl FnOnce(&mut QueryBuilder<Sqlite>),
    ) -> StoreResult<Plan> {
        let mut tx = self.begin_write().await?;
        let mut qb =
            QueryBuilder::<Sqlite>::new("UPDATE plans SET version = version + 1, updated_at = ");
        qb.push_bind(micros(now));
        set(&mut qb);
        qb.push(" WHERE tenant_id = ").push_bind(tenant.0);
        qb.push(" AND id = ").push_bind(id.0);
        qb.push(" AND version = ").push_bind(version);
        let done = qb.build().execute(&mut *tx).await.map_err(write_error)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Stale);
        }
        if let Some(cancellation) = cascade_from {
            cancel_items_of(&mut tx, tenant, PlanScope::Plan(id.0), cancellation, now).await?;
        }
        let plan = plan_by_id(&mut tx, tenant, id.0)
            .await?
            .ok_or(StoreError::Stale)?;
        tx.commit().await.map_err(db_error)?;
        Ok(plan)
    }
}

#[async_trait]
impl PlanStore for SqliteStore {
    async fn insert_plan(
        &self,
        tenant: TenantId,
        account: AccountId,
        fields: &PlanFields,
        now: Timestamp,
    ) -> StoreResult<Plan> {
        let mut tx = self.begin_write().await?;
        // Checked inside the write transaction: a concurrent `delete_account` either
        // committed first (the plan is refused) or runs after (and cancels the plan).
        let live: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM accounts WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL",
        )
        .bind(tenant.0)
        .bind(account.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        if live.is_none() {
            return Err(StoreError::Stale);
        }
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO plans (tenant_id, account_id, created_at, updated_at",
        );
        for column in PLAN_WRITABLE {
            qb.push(", ").push(column);
        }
        qb.push(") VALUES (").push_bind(tenant.0);
        qb.push(", ").push_bind(account.0);
        qb.push(", ").push_bind(micros(now));
        qb.push(", ").push_bind(micros(now));
        for value in plan_values(fields) {
            qb.push(", ");
            push_value(&mut qb, value);
        }
        qb.push(") RETURNING id");
        let id: i64 = qb
            .build_query_scalar()
            .fetch_one(&mut *tx)
            .await
            .map_err(write_error)?;
        let plan = plan_by_id(&mut tx, tenant, id)
            .await?
            .ok_or(StoreError::Stale)?;
        tx.commit().await.map_err(db_error)?;
        Ok(plan)
    }

    async fn update_plan(
        &self,
        tenant: TenantId,
        id: PlanId,
        version: i64,
        fields: &PlanFields,
        now: Timestamp,
    ) -> StoreResult<Plan> {
        self.change_plan(tenant, id, version, now, None, |qb| {
            for (column, value) in PLAN_WRITABLE.into_iter().zip(plan_values(fields)) {
                qb.push(", ").push(column).push(" = ");
                push_value(qb, value);
            }
        })
        .await
    }

    async fn find_plan(&self, tenant: TenantId, key: &RecordKey) -> StoreResult<Option<Plan>> {
        let mut qb = QueryBuilder::<Sqlite>::new(PLAN_SELECT);
        qb.push(" WHERE p.tenant_id = ").push_bind(tenant.0);
        match key {
            RecordKey::Id(id) => qb.push(" AND p.id = ").push_bind(*id),
            RecordKey::ExtId(ext_id) => qb.push(" AND p.ext_id = ").push_bind(ext_id.clone()),
        };
        let row: Option<PlanRecord> = qb
            .build_query_as()
            .fetch_optional(&self.reader)
            .await
            .map_err(db_error)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list_plans(
        &self,
        tenant: TenantId,
        filter: &PlanFilter,
        today: Date,
        page: PageRequest,
    ) -> StoreResult<Page<Plan>> {
        let mut count = QueryBuilder::<Sqlite>::new(
            "SELECT COUNT(*) FROM plans p JOIN accounts a ON a.id = p.account_id",
        );
        push_filter(&mut count, tenant, filter, today);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.reader)
            .await
            .map_err(db_error)?;

        let mut qb = QueryBuilder::<Sqlite>::new(PLAN_SELECT);
        push_filter(&mut qb, tenant, filter, today);
        if let Some(after) = page.after {
            qb.push(" AND p.id > ").push_bind(after);
        }
        qb.push(" ORDER BY p.id LIMIT ")
            .push_bind(i64::from(page.size) + 1);
        let rows: Vec<PlanRecord> = qb
            .build_query_as()
            .fetch_all(&self.reader)
            .await
            .map_err(db_error)?;
        let plans = rows
            .into_iter()
            .map(Plan::try_from)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(plans, page.size, total, |p| p.id.0))
    }

    async fn cancel_plan(
        &self,
        tenant: TenantId,
        id: PlanId,
        version: i64,
        cancellation: Cancellation,
        now: Timestamp,
    ) -> StoreResult<Plan> {
        self.change_plan(tenant, id, version, now, Some(cancellation), |qb| {
            qb.push(", cancel_date = ")
                .push_bind(date_text(cancellation.date));
        })
        .await
    }

    async fn delete_plan(
        &self,
        tenant: TenantId,
        id: PlanId,
        version: i64,
        cancel_date: Date,
        now: Timestamp,
    ) -> StoreResult<Plan> {
        self.change_plan(
            tenant,
            id,
            version,
            now,
            Some(Cancellation {
                date: cancel_date,
                credit: true,
            }),
            |qb| {
                qb.push(", deleted_at = ").push_bind(micros(now));
                qb.push(", cancel_date = COALESCE(cancel_date, ")
                    .push_bind(date_text(cancel_date))
                    .push(")");
            },
        )
        .await
    }
}
