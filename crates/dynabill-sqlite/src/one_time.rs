//! One-time items in SQLite.

use async_trait::async_trait;
use dynabill_app::model::{
    ItemFilter, OneTimeItem, OneTimeItemFields, Page, PageRequest, RecordKey,
};
use dynabill_app::store::{OneTimeItemStore, StoreError, StoreResult};
use dynabill_core::domain::{OneTimeItemId, PlanId, TenantId};
use dynabill_sql::Backend;
use dynabill_sql::{ONE_TIME_WRITABLE, OneTimeItemRow, micros, one_time_values};
use jiff::Timestamp;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::{
    SqliteBackend, db_error, is_unique_violation, push_assignments, push_columns, push_values,
};

pub(crate) const ONE_TIME_SELECT: &str = "SELECT o.id, o.plan_id, p.ext_id AS plan_ext_id, p.account_id, o.ext_id, \
    o.product_code, o.name, o.description, o.quantity, o.unit_price, o.charge_date, o.tax_code, o.cancelled_at, \
    o.invoiced, o.created_at, o.updated_at, o.deleted_at, o.version \
    FROM one_time_items o JOIN plans p ON p.id = o.plan_id";
/// The FROM clause of [`ONE_TIME_SELECT`].
pub(crate) const ONE_TIME_FROM: &str = "FROM one_time_items o JOIN plans p ON p.id = o.plan_id";

fn push_filter(qb: &mut QueryBuilder<Sqlite>, tenant: TenantId, filter: &ItemFilter) {
    qb.push(" WHERE o.tenant_id = ").push_bind(tenant.0);
    if let Some(id) = filter.id {
        qb.push(" AND o.id = ").push_bind(id);
    }
    if let Some(ext_id) = &filter.ext_id {
        qb.push(" AND o.ext_id = ").push_bind(ext_id.clone());
    }
    if let Some(plan_id) = filter.plan_id {
        qb.push(" AND o.plan_id = ").push_bind(plan_id);
    }
    if !filter.include_deleted {
        qb.push(" AND o.deleted_at IS NULL");
    }
}

async fn one_time_by_id(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    id: i64,
) -> StoreResult<Option<OneTimeItem>> {
    let mut qb = QueryBuilder::<Sqlite>::new(ONE_TIME_SELECT);
    qb.push(" WHERE o.tenant_id = ")
        .push_bind(tenant.0)
        .push(" AND o.id = ")
        .push_bind(id);
    let row: Option<OneTimeItemRow> = qb
        .build_query_as()
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

#[async_trait]
impl OneTimeItemStore for SqliteBackend {
    async fn insert_one_time_item(
        &self,
        tenant: TenantId,
        plan: PlanId,
        fields: &OneTimeItemFields,
        now: Timestamp,
    ) -> StoreResult<OneTimeItem> {
        let mut tx = self.begin_write().await?;
        let live: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM plans WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL",
        )
        .bind(tenant.0)
        .bind(plan.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        if live.is_none() {
            return Err(StoreError::Stale);
        }
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO one_time_items (tenant_id, plan_id, created_at, updated_at",
        );
        push_columns(&mut qb, &ONE_TIME_WRITABLE);
        qb.push(") VALUES (")
            .push_bind(tenant.0)
            .push(", ")
            .push_bind(plan.0);
        qb.push(", ")
            .push_bind(micros(now))
            .push(", ")
            .push_bind(micros(now));
        push_values(&mut qb, one_time_values(fields));
        qb.push(") RETURNING id");
        let id: i64 = qb
            .build_query_scalar()
            .fetch_one(&mut *tx)
            .await
            .map_err(write_error)?;
        let item = one_time_by_id(&mut tx, tenant, id)
            .await?
            .ok_or(StoreError::Stale)?;
        tx.commit().await.map_err(db_error)?;
        Ok(item)
    }

    async fn update_one_time_item(
        &self,
        tenant: TenantId,
        id: OneTimeItemId,
        version: i64,
        fields: &OneTimeItemFields,
        cancel: bool,
        delete: bool,
        now: Timestamp,
    ) -> StoreResult<OneTimeItem> {
        let mut tx = self.begin_write().await?;
        let mut qb = QueryBuilder::<Sqlite>::new(
            "UPDATE one_time_items SET version = version + 1, updated_at = ",
        );
        qb.push_bind(micros(now));
        push_assignments(&mut qb, &ONE_TIME_WRITABLE, one_time_values(fields));
        if cancel {
            qb.push(", cancelled_at = COALESCE(cancelled_at, ")
                .push_bind(micros(now))
                .push(")");
        }
        if delete {
            qb.push(", deleted_at = COALESCE(deleted_at, ")
                .push_bind(micros(now))
                .push(")");
        }
        qb.push(" WHERE tenant_id = ")
            .push_bind(tenant.0)
            .push(" AND id = ")
            .push_bind(id.0);
        qb.push(" AND version = ").push_bind(version);
        if qb
            .build()
            .execute(&mut *tx)
            .await
            .map_err(write_error)?
            .rows_affected()
            == 0
        {
            return Err(StoreError::Stale);
        }
        let item = one_time_by_id(&mut tx, tenant, id.0)
            .await?
            .ok_or(StoreError::Stale)?;
        tx.commit().await.map_err(db_error)?;
        Ok(item)
    }

    async fn find_one_time_item(
        &self,
        tenant: TenantId,
        key: &RecordKey,
    ) -> StoreResult<Option<OneTimeItem>> {
        let mut qb = QueryBuilder::<Sqlite>::new(ONE_TIME_SELECT);
        qb.push(" WHERE o.tenant_id = ").push_bind(tenant.0);
        match key {
            RecordKey::Id(id) => qb.push(" AND o.id = ").push_bind(*id),
            RecordKey::ExtId(ext_id) => qb.push(" AND o.ext_id = ").push_bind(ext_id.clone()),
        };
        let row: Option<OneTimeItemRow> = qb
            .build_query_as()
            .fetch_optional(&self.reader)
            .await
            .map_err(db_error)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list_one_time_items(
        &self,
        tenant: TenantId,
        filter: &ItemFilter,
        page: PageRequest,
    ) -> StoreResult<Page<OneTimeItem>> {
        let mut tx = self.reader.begin().await.map_err(db_error)?;
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM one_time_items o");
        push_filter(&mut count, tenant, filter);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        let mut qb = QueryBuilder::<Sqlite>::new(ONE_TIME_SELECT);
        push_filter(&mut qb, tenant, filter);
        if let Some(after) = page.after {
            qb.push(" AND o.id > ").push_bind(after);
        }
        qb.push(" ORDER BY o.id LIMIT ")
            .push_bind(i64::from(page.size) + 1);
        let rows: Vec<OneTimeItemRow> = qb
            .build_query_as()
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        let items = rows
            .into_iter()
            .map(OneTimeItem::try_from)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.size, total, |i| i.id.0))
    }
}
