//! Account plans in PostgreSQL.

use async_trait::async_trait;
use dynabill_app::model::{
    Cancellation, Page, PageRequest, Plan, PlanFields, PlanFilter, RecordKey,
};
use dynabill_app::store::{PlanStore, StoreError, StoreResult};
use dynabill_core::domain::{AccountId, PlanId, TenantId};
use dynabill_sql::{PLAN_WRITABLE, PlanRecord, date_text, micros, plan_values};
use jiff::Timestamp;
use jiff::civil::Date;
use sqlx::{Postgres, QueryBuilder};

use crate::items::{PlanScope, cancel_items_of};
use crate::{PgStore, db_error, push_value, violates};

/// The columns `PlanRecord` reads, from a plan `p` and its account `a`.
macro_rules! plan_columns {
    () => {
        "p.id, p.account_id, a.ext_id AS account_ext_id, p.ext_id, p.name, \
         p.start_date::text AS start_date, p.end_date::text AS end_date, p.auto_renew, \
         p.renewal_term_months::int8 AS renewal_term_months, p.billing_day::int8 AS billing_day, \
         p.currency, p.po_number, p.notes, p.cancel_date::text AS cancel_date, p.created_at, \
         p.updated_at, p.deleted_at, p.version"
    };
}

/// Plans joined with their accounts (of the same tenant, which the schema enforces).
const PLANS_JOINED: &str =
    " FROM plans p JOIN accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id";

/// Plans `p` joined with their accounts `a`, in the shapes `PlanRecord` reads.
pub(crate) const PLAN_SELECT: &str = concat!(
    "SELECT ",
    plan_columns!(),
    " FROM plans p JOIN accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id"
);

/// `PlanStatus` as SQL, from the same rule as `PlanStatus::on`.
const PLAN_STATUS_SQL: &str = "(CASE WHEN p.cancel_date IS NOT NULL THEN 2 \
    WHEN p.end_date IS NOT NULL AND NOT p.auto_renew AND p.end_date <= ";

fn push_filter(
    qb: &mut QueryBuilder<Postgres>,
    tenant: TenantId,
    filter: &PlanFilter,
    today: Date,
) {
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
            .push_bind(date_text(today))
            .push("::date THEN 3 ELSE 1 END) = ")
            .push_bind(status.code());
    }
    if !filter.include_deleted {
        qb.push(" AND p.deleted_at IS NULL");
    }
}

fn write_error(e: sqlx::Error) -> StoreError {
    if violates(&e, "plans_ext_id") {
        return StoreError::ExtIdTaken;
    }
    db_error(e)
}

impl PgStore {
    /// Runs a conditional `UPDATE plans SET <set> WHERE <this plan at version>` and
    /// reads the plan back with its account's `ExtID`, in one statement. With
    /// `cascade_from`, the plan's items are cancelled from that date (see
    /// [`cancel_items_of`]) in the same transaction, after the plan row is locked.
    async fn change_plan(
        &self,
        tenant: TenantId,
        id: PlanId,
        version: i64,
        now: Timestamp,
        cascade_from: Option<Cancellation>,
        set: impl FnOnce(&mut QueryBuilder<Postgres>),
    ) -> StoreResult<Plan> {
        let mut qb = QueryBuilder::<Postgres>::new(
            "WITH p AS (UPDATE plans SET version = version + 1, updated_at = ",
        );
        qb.push_bind(micros(now));
        set(&mut qb);
        qb.push(" WHERE tenant_id = ").push_bind(tenant.0);
        qb.push(" AND id = ").push_bind(id.0);
        qb.push(" AND version = ").push_bind(version);
        qb.push(concat!(
            " RETURNING *) SELECT ",
            plan_columns!(),
            " FROM p JOIN accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id"
        ));
        let Some(cancellation) = cascade_from else {
            let row: Option<PlanRecord> = qb
                .build_query_as()
                .fetch_optional(&self.pool)
                .await
                .map_err(write_error)?;
            return row.ok_or(StoreError::Stale)?.try_into();
        };
        // Returning early drops (and so rolls back) the transaction.
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let row: Option<PlanRecord> = qb
            .build_query_as()
            .fetch_optional(&mut *tx)
            .await
            .map_err(write_error)?;
        let Some(row) = row else {
            return Err(StoreError::Stale);
        };
        cancel_items_of(&mut tx, tenant, PlanScope::Plan(id.0), cancellation, now).await?;
        tx.commit().await.map_err(db_error)?;
        row.try_into()
    }
}

#[async_trait]
impl PlanStore for PgStore {
    async fn insert_plan(
        &self,
        tenant: TenantId,
        account: AccountId,
        fields: &PlanFields,
        now: Timestamp,
    ) -> StoreResult<Plan> {
        // The account must be a live account of this tenant. `FOR SHARE` makes a
        // concurrent `delete_account` (which locks the row to update it) either wait
        // for this plan, and then cancel it, or win, and then this insert finds no account.
        let mut qb = QueryBuilder::<Postgres>::new(
            "WITH a AS (SELECT tenant_id, id, ext_id FROM accounts WHERE tenant_id = ",
        );
        qb.push_bind(tenant.0);
        qb.push(" AND id = ").push_bind(account.0);
        qb.push(" AND deleted_at IS NULL FOR SHARE), p AS (INSERT INTO plans (tenant_id, account_id, created_at, updated_at");
        for column in PLAN_WRITABLE {
            qb.push(", ").push(column);
        }
        qb.push(") SELECT a.tenant_id, a.id, ")
            .push_bind(micros(now));
        qb.push(", ").push_bind(micros(now));
        for (column, value) in PLAN_WRITABLE.into_iter().zip(plan_values(fields)) {
            qb.push(", ");
            push_value(&mut qb, column, value);
        }
        qb.push(concat!(
            " FROM a RETURNING *) SELECT ",
            plan_columns!(),
            " FROM p JOIN a ON a.id = p.account_id"
        ));
        let row: Option<PlanRecord> = qb
            .build_query_as()
            .fetch_optional(&self.pool)
            .await
            .map_err(write_error)?;
        row.ok_or(StoreError::Stale)?.try_into()
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
                push_value(qb, column, value);
            }
        })
        .await
    }

    async fn find_plan(&self, tenant: TenantId, key: &RecordKey) -> StoreResult<Option<Plan>> {
        let mut qb = QueryBuilder::<Postgres>::new(concat!("SELECT ", plan_columns!()));
        qb.push(PLANS_JOINED);
        qb.push(" WHERE p.tenant_id = ").push_bind(tenant.0);
        match key {
            RecordKey::Id(id) => qb.push(" AND p.id = ").push_bind(*id),
            RecordKey::ExtId(ext_id) => qb.push(" AND p.ext_id = ").push_bind(ext_id.clone()),
        };
        let row: Option<PlanRecord> = qb
            .build_query_as()
            .fetch_optional(&self.pool)
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
        let mut tx = self.begin_snapshot().await?;
        let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*)");
        count.push(PLANS_JOINED);
        push_filter(&mut count, tenant, filter, today);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;

        let mut qb = QueryBuilder::<Postgres>::new(concat!("SELECT ", plan_columns!()));
        qb.push(PLANS_JOINED);
        push_filter(&mut qb, tenant, filter, today);
        if let Some(after) = page.after {
            qb.push(" AND p.id > ").push_bind(after);
        }
        qb.push(" ORDER BY p.id LIMIT ")
            .push_bind(i64::from(page.size) + 1);
        let rows: Vec<PlanRecord> = qb
            .build_query_as()
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
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
                .push_bind(date_text(cancellation.date))
                .push("::date");
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
                    .push("::date)");
            },
        )
        .await
    }
}
