//! Recurring items and their history in SQLite, and the cascade that cancels the
//! items of cancelled plans.

use async_trait::async_trait;
use dynabill_app::model::{
    ItemChange, ItemFilter, ItemWrite, Page, PageRequest, PlanFields, RecordKey, RecurringItem,
    RecurringItemFields,
};
use dynabill_app::store::{RecurringItemStore, StoreError, StoreResult};
use dynabill_core::domain::{PlanId, TenantId};
use dynabill_sql::Backend;
use dynabill_sql::{
    ITEM_CHANGE_WRITABLE, ItemChangeRow, PLAN_WRITABLE, RECURRING_ITEM_WRITABLE, RecurringItemRow,
    attach_changes, item_change_values, micros, plan_values, recurring_item_values,
};
use jiff::Timestamp;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::{
    SqliteBackend, db_error, is_unique_violation, push_assignments, push_columns, push_values,
};

pub(crate) const ITEM_SELECT: &str = "SELECT r.id, r.plan_id, p.ext_id AS plan_ext_id, p.account_id, \
    p.billing_day AS plan_billing_day, p.auto_renew AS plan_auto_renew, r.ext_id, r.product_code, r.name, \
    r.description, r.tax_code, r.billing_period, r.period_count, r.timing, r.start_date, r.end_date, \
    r.cancel_date, r.cancel_credit, r.charged_through, r.created_at, r.updated_at, r.deleted_at, r.version \
    FROM recurring_items r JOIN plans p ON p.id = r.plan_id";
/// The FROM clause of [`ITEM_SELECT`].
pub(crate) const ITEM_FROM: &str = "FROM recurring_items r JOIN plans p ON p.id = r.plan_id";

async fn insert_change(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    item: i64,
    change: &ItemChange,
) -> StoreResult<()> {
    let mut qb =
        QueryBuilder::<Sqlite>::new("INSERT INTO recurring_item_changes (tenant_id, item_id");
    push_columns(&mut qb, &ITEM_CHANGE_WRITABLE);
    qb.push(") VALUES (")
        .push_bind(tenant.0)
        .push(", ")
        .push_bind(item);
    push_values(&mut qb, item_change_values(change));
    qb.push(")");
    qb.build().execute(conn).await.map_err(db_error)?;
    Ok(())
}

/// Items matching the query built so far, with their histories.
pub(crate) async fn fetch_items(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    qb: &mut QueryBuilder<Sqlite>,
) -> StoreResult<Vec<RecurringItem>> {
    let records: Vec<RecurringItemRow> = qb
        .build_query_as()
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let mut changes = QueryBuilder::<Sqlite>::new(
        "SELECT id, item_id, kind, effective_date, quantity, unit_price, discount_percent, start_date, end_date, \
         prorate, credit, recorded_at FROM recurring_item_changes WHERE tenant_id = ",
    );
    changes.push_bind(tenant.0).push(" AND item_id IN (");
    let mut ids = changes.separated(", ");
    for r in &records {
        ids.push_bind(r.id);
    }
    changes.push(") ORDER BY item_id, id");
    let rows: Vec<ItemChangeRow> = changes
        .build_query_as()
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
    attach_changes(records, rows)
}

async fn item_by_id(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    id: i64,
) -> StoreResult<Option<RecurringItem>> {
    let mut qb = QueryBuilder::<Sqlite>::new(ITEM_SELECT);
    qb.push(" WHERE r.tenant_id = ")
        .push_bind(tenant.0)
        .push(" AND r.id = ")
        .push_bind(id);
    Ok(fetch_items(conn, tenant, &mut qb).await?.pop())
}

fn push_filter(qb: &mut QueryBuilder<Sqlite>, tenant: TenantId, filter: &ItemFilter) {
    qb.push(" WHERE r.tenant_id = ").push_bind(tenant.0);
    if let Some(id) = filter.id {
        qb.push(" AND r.id = ").push_bind(id);
    }
    if let Some(ext_id) = &filter.ext_id {
        qb.push(" AND r.ext_id = ").push_bind(ext_id.clone());
    }
    if let Some(plan_id) = filter.plan_id {
        qb.push(" AND r.plan_id = ").push_bind(plan_id);
    }
    if !filter.include_deleted {
        qb.push(" AND r.deleted_at IS NULL");
    }
}

#[async_trait]
impl RecurringItemStore for SqliteBackend {
    async fn insert_recurring_item(
        &self,
        tenant: TenantId,
        plan: PlanId,
        fields: &RecurringItemFields,
        created: &ItemChange,
        now: Timestamp,
    ) -> StoreResult<RecurringItem> {
        let mut tx = self.begin_write().await?;
        let live: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM plans WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL AND cancel_date IS NULL",
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
            "INSERT INTO recurring_items (tenant_id, plan_id, created_at, updated_at",
        );
        push_columns(&mut qb, &RECURRING_ITEM_WRITABLE);
        qb.push(") VALUES (")
            .push_bind(tenant.0)
            .push(", ")
            .push_bind(plan.0);
        qb.push(", ")
            .push_bind(micros(now))
            .push(", ")
            .push_bind(micros(now));
        push_values(&mut qb, recurring_item_values(fields, None));
        qb.push(") RETURNING id");
        let id: i64 = qb
            .build_query_scalar()
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::ExtIdTaken
                } else {
                    db_error(e)
                }
            })?;
        insert_change(&mut tx, tenant, id, created).await?;
        let item = item_by_id(&mut tx, tenant, id)
            .await?
            .ok_or(StoreError::Stale)?;
        tx.commit().await.map_err(db_error)?;
        Ok(item)
    }

    async fn write_recurring_items(
        &self,
        tenant: TenantId,
        plan: Option<(PlanId, i64, &PlanFields)>,
        writes: &[ItemWrite],
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        if let Some((id, version, fields)) = plan {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "UPDATE plans SET version = version + 1, updated_at = ",
            );
            qb.push_bind(micros(now));
            push_assignments(&mut qb, &PLAN_WRITABLE, plan_values(fields));
            qb.push(" WHERE tenant_id = ")
                .push_bind(tenant.0)
                .push(" AND id = ")
                .push_bind(id.0);
            qb.push(" AND version = ").push_bind(version);
            let done = qb.build().execute(&mut *tx).await.map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::ExtIdTaken
                } else {
                    db_error(e)
                }
            })?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Stale);
            }
        }
        for write in writes {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "UPDATE recurring_items SET version = version + 1, updated_at = ",
            );
            qb.push_bind(micros(now));
            push_assignments(
                &mut qb,
                &RECURRING_ITEM_WRITABLE,
                recurring_item_values(&write.fields, write.cancellation),
            );
            qb.push(", deleted_at = ");
            if write.deleted {
                qb.push("COALESCE(deleted_at, ")
                    .push_bind(micros(now))
                    .push(")");
            } else {
                qb.push("NULL");
            }
            qb.push(" WHERE tenant_id = ")
                .push_bind(tenant.0)
                .push(" AND id = ")
                .push_bind(write.id.0);
            qb.push(" AND version = ").push_bind(write.version);
            let done = qb.build().execute(&mut *tx).await.map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::ExtIdTaken
                } else {
                    db_error(e)
                }
            })?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Stale);
            }
            insert_change(&mut tx, tenant, write.id.0, &write.change).await?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn find_recurring_item(
        &self,
        tenant: TenantId,
        key: &RecordKey,
    ) -> StoreResult<Option<RecurringItem>> {
        // One read transaction: the item and its history come from the same snapshot.
        let mut tx = self.reader.begin().await.map_err(db_error)?;
        let mut qb = QueryBuilder::<Sqlite>::new(ITEM_SELECT);
        qb.push(" WHERE r.tenant_id = ").push_bind(tenant.0);
        match key {
            RecordKey::Id(id) => qb.push(" AND r.id = ").push_bind(*id),
            RecordKey::ExtId(ext_id) => qb.push(" AND r.ext_id = ").push_bind(ext_id.clone()),
        };
        let item = fetch_items(&mut tx, tenant, &mut qb).await?.pop();
        tx.commit().await.map_err(db_error)?;
        Ok(item)
    }

    async fn list_recurring_items(
        &self,
        tenant: TenantId,
        filter: &ItemFilter,
        page: PageRequest,
    ) -> StoreResult<Page<RecurringItem>> {
        let mut tx = self.reader.begin().await.map_err(db_error)?;
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM recurring_items r");
        push_filter(&mut count, tenant, filter);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        let mut qb = QueryBuilder::<Sqlite>::new(ITEM_SELECT);
        push_filter(&mut qb, tenant, filter);
        if let Some(after) = page.after {
            qb.push(" AND r.id > ").push_bind(after);
        }
        qb.push(" ORDER BY r.id LIMIT ")
            .push_bind(i64::from(page.size) + 1);
        let items = fetch_items(&mut tx, tenant, &mut qb).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(Page::from_rows(items, page.size, total, |i| i.id.0))
    }
}
