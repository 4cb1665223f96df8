//! One-time items in PostgreSQL.

use async_trait::async_trait;
use dynabill_app::model::{
    ItemFilter, OneTimeItem, OneTimeItemFields, Page, PageRequest, RecordKey,
};
use dynabill_app::store::{OneTimeItemStore, StoreError, StoreResult};
use dynabill_core::domain::{OneTimeItemId, PlanId, TenantId};
use dynabill_sql::{ONE_TIME_WRITABLE, OneTimeItemRow, micros, one_time_values};
use jiff::Timestamp;
use sqlx::{Postgres, QueryBuilder};

use crate::{PgBackend, db_error, push_assignments, push_columns, push_values, violates};

/// The columns `OneTimeItemRow` reads, from an item `o` and its plan `p`.
macro_rules! one_time_columns {
    () => {
        "o.id, o.plan_id, p.ext_id AS plan_ext_id, p.account_id, o.ext_id, o.product_code, \
         o.name, o.description, o.quantity::text AS quantity, o.unit_price::text AS unit_price, \
         o.charge_date::text AS charge_date, o.tax_code, o.cancelled_at, o.invoiced, \
         o.created_at, o.updated_at, o.deleted_at, o.version"
    };
}

/// Items joined with their plans (of the same tenant, which the schema enforces).
const ONE_TIME_JOINED: &str =
    " FROM one_time_items o JOIN plans p ON p.tenant_id = o.tenant_id AND p.id = o.plan_id";

/// Items `o` joined with their plans `p`, in the shapes `OneTimeItemRow` reads.
pub(crate) const ONE_TIME_SELECT: &str = concat!(
    "SELECT ",
    one_time_columns!(),
    " FROM one_time_items o JOIN plans p ON p.tenant_id = o.tenant_id AND p.id = o.plan_id"
);

fn push_filter(qb: &mut QueryBuilder<Postgres>, tenant: TenantId, filter: &ItemFilter) {
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

fn write_error(e: sqlx::Error) -> StoreError {
    if violates(&e, "one_time_items_ext_id") {
        return StoreError::ExtIdTaken;
    }
    db_error(e)
}

#[async_trait]
impl OneTimeItemStore for PgBackend {
    async fn insert_one_time_item(
        &self,
        tenant: TenantId,
        plan: PlanId,
        fields: &OneTimeItemFields,
        now: Timestamp,
    ) -> StoreResult<OneTimeItem> {
        // The plan must be a live plan of this tenant; `FOR SHARE` settles a race with
        // `delete_plan` as for recurring items.
        let mut qb = QueryBuilder::<Postgres>::new(
            "WITH p AS (SELECT tenant_id, id, ext_id, account_id FROM plans WHERE tenant_id = ",
        );
        qb.push_bind(tenant.0).push(" AND id = ").push_bind(plan.0);
        qb.push(" AND deleted_at IS NULL FOR SHARE), ");
        qb.push("o AS (INSERT INTO one_time_items (tenant_id, plan_id, created_at, updated_at");
        push_columns(&mut qb, &ONE_TIME_WRITABLE);
        qb.push(") SELECT p.tenant_id, p.id, ")
            .push_bind(micros(now));
        qb.push(", ").push_bind(micros(now));
        push_values(&mut qb, &ONE_TIME_WRITABLE, one_time_values(fields));
        qb.push(concat!(
            " FROM p RETURNING *) SELECT ",
            one_time_columns!(),
            " FROM o JOIN p ON p.id = o.plan_id"
        ));
        let row: Option<OneTimeItemRow> = qb
            .build_query_as()
            .fetch_optional(&self.pool)
            .await
            .map_err(write_error)?;
        row.ok_or(StoreError::Stale)?.try_into()
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
        let mut qb = QueryBuilder::<Postgres>::new(
            "WITH o AS (UPDATE one_time_items SET version = version + 1, updated_at = ",
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
        qb.push(" WHERE tenant_id = ").push_bind(tenant.0);
        qb.push(" AND id = ").push_bind(id.0);
        qb.push(" AND version = ").push_bind(version);
        qb.push(concat!(
            " RETURNING *) SELECT ",
            one_time_columns!(),
            " FROM o JOIN plans p ON p.tenant_id = o.tenant_id AND p.id = o.plan_id"
        ));
        let row: Option<OneTimeItemRow> = qb
            .build_query_as()
            .fetch_optional(&self.pool)
            .await
            .map_err(write_error)?;
        row.ok_or(StoreError::Stale)?.try_into()
    }

    async fn find_one_time_item(
        &self,
        tenant: TenantId,
        key: &RecordKey,
    ) -> StoreResult<Option<OneTimeItem>> {
        let mut qb = QueryBuilder::<Postgres>::new(concat!("SELECT ", one_time_columns!()));
        qb.push(ONE_TIME_JOINED);
        qb.push(" WHERE o.tenant_id = ").push_bind(tenant.0);
        match key {
            RecordKey::Id(id) => qb.push(" AND o.id = ").push_bind(*id),
            RecordKey::ExtId(ext_id) => qb.push(" AND o.ext_id = ").push_bind(ext_id.clone()),
        };
        let row: Option<OneTimeItemRow> = qb
            .build_query_as()
            .fetch_optional(&self.pool)
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
        let mut tx = self.begin_snapshot().await?;
        let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM one_time_items o");
        push_filter(&mut count, tenant, filter);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        let mut qb = QueryBuilder::<Postgres>::new(concat!("SELECT ", one_time_columns!()));
        qb.push(ONE_TIME_JOINED);
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
