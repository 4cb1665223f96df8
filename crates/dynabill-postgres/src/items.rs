//! Recurring items and their history in PostgreSQL, and the cascade that cancels the
//! items of cancelled plans.

use async_trait::async_trait;
use dynabill_app::model::{
    ItemChange, ItemFilter, ItemWrite, Page, PageRequest, PlanFields, RecordKey, RecurringItem,
    RecurringItemFields,
};
use dynabill_app::store::{RecurringItemStore, StoreError, StoreResult};
use dynabill_core::domain::{PlanId, TenantId};
use dynabill_sql::{
    ITEM_CHANGE_WRITABLE, ItemChangeRow, PLAN_WRITABLE, RECURRING_ITEM_WRITABLE, RecurringItemRow,
    attach_changes, item_change_values, micros, plan_values, recurring_item_values,
};
use jiff::Timestamp;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::{
    PgBackend, db_error, lost_conflict, push_any_of, push_assignments, push_columns, push_values,
    violates,
};

/// Items `r` joined with what they need of their plans `p`, in the shapes
/// `RecurringItemRow` reads.
pub(crate) const ITEM_SELECT: &str = "SELECT r.id, r.plan_id, p.ext_id AS plan_ext_id, p.account_id, \
    p.billing_day::int8 AS plan_billing_day, p.auto_renew AS plan_auto_renew, r.ext_id, \
    r.product_code, r.name, r.description, r.tax_code, r.billing_period::int8 AS billing_period, \
    r.period_count::int8 AS period_count, r.timing::int8 AS timing, \
    r.start_date::text AS start_date, r.end_date::text AS end_date, \
    r.cancel_date::text AS cancel_date, r.cancel_credit, r.charged_through::text AS charged_through, \
    r.created_at, r.updated_at, r.deleted_at, r.version \
    FROM recurring_items r JOIN plans p ON p.tenant_id = r.tenant_id AND p.id = r.plan_id";

/// Item histories; followed by the tenant and items filter, and `CHANGES_ORDER`.
const CHANGES_SELECT: &str = "SELECT id, item_id, kind::int8 AS kind, \
    effective_date::text AS effective_date, quantity::text AS quantity, \
    unit_price::text AS unit_price, discount_percent::text AS discount_percent, \
    start_date::text AS start_date, end_date::text AS end_date, prorate, credit, recorded_at \
    FROM recurring_item_changes WHERE tenant_id = ";

/// Item by item, oldest first.
const CHANGES_ORDER: &str = " ORDER BY item_id, id";

/// A lost lock conflict means a concurrent writer got there first: `Stale`.
fn conflict_error(e: sqlx::Error) -> StoreError {
    if lost_conflict(&e) {
        return StoreError::Stale;
    }
    db_error(e)
}

fn write_error(e: sqlx::Error) -> StoreError {
    if violates(&e, "recurring_items_ext_id") {
        return StoreError::ExtIdTaken;
    }
    conflict_error(e)
}

/// Items matching the query built so far, with their histories.
pub(crate) async fn fetch_items(
    conn: &mut PgConnection,
    tenant: TenantId,
    qb: &mut QueryBuilder<Postgres>,
) -> StoreResult<Vec<RecurringItem>> {
    let records: Vec<RecurringItemRow> = qb
        .build_query_as()
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
    let mut qb = QueryBuilder::<Postgres>::new(CHANGES_SELECT);
    qb.push_bind(tenant.0);
    push_any_of(&mut qb, "item_id", &ids);
    qb.push(CHANGES_ORDER);
    let rows: Vec<ItemChangeRow> = qb
        .build_query_as()
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
    attach_changes(records, rows)
}

async fn find_item(
    conn: &mut PgConnection,
    tenant: TenantId,
    key: &RecordKey,
) -> StoreResult<Option<RecurringItem>> {
    let mut qb = QueryBuilder::<Postgres>::new(ITEM_SELECT);
    qb.push(" WHERE r.tenant_id = ").push_bind(tenant.0);
    match key {
        RecordKey::Id(id) => qb.push(" AND r.id = ").push_bind(*id),
        RecordKey::ExtId(ext_id) => qb.push(" AND r.ext_id = ").push_bind(ext_id.clone()),
    };
    Ok(fetch_items(conn, tenant, &mut qb).await?.pop())
}

fn push_filter(qb: &mut QueryBuilder<Postgres>, tenant: TenantId, filter: &ItemFilter) {
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
impl RecurringItemStore for PgBackend {
    async fn insert_recurring_item(
        &self,
        tenant: TenantId,
        plan: PlanId,
        fields: &RecurringItemFields,
        created: &ItemChange,
        now: Timestamp,
    ) -> StoreResult<RecurringItem> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // The plan must be a live plan of this tenant. `FOR SHARE` makes a concurrent
        // `delete_plan` (which locks the row to update it) either wait for this item,
        // and then cancel it, or win, and then this insert finds no plan.
        let mut qb = QueryBuilder::<Postgres>::new(
            "WITH p AS (SELECT tenant_id, id FROM plans WHERE tenant_id = ",
        );
        qb.push_bind(tenant.0).push(" AND id = ").push_bind(plan.0);
        qb.push(" AND deleted_at IS NULL AND cancel_date IS NULL FOR SHARE), ");
        qb.push("r AS (INSERT INTO recurring_items (tenant_id, plan_id, created_at, updated_at");
        push_columns(&mut qb, &RECURRING_ITEM_WRITABLE);
        qb.push(") SELECT p.tenant_id, p.id, ")
            .push_bind(micros(now));
        qb.push(", ").push_bind(micros(now));
        push_values(
            &mut qb,
            &RECURRING_ITEM_WRITABLE,
            recurring_item_values(fields, None),
        );
        qb.push(" FROM p RETURNING tenant_id, id) ");
        qb.push("INSERT INTO recurring_item_changes (tenant_id, item_id");
        push_columns(&mut qb, &ITEM_CHANGE_WRITABLE);
        qb.push(") SELECT r.tenant_id, r.id");
        push_values(&mut qb, &ITEM_CHANGE_WRITABLE, item_change_values(created));
        qb.push(" FROM r RETURNING item_id");
        let id: Option<i64> = qb
            .build_query_scalar()
            .fetch_optional(&mut *tx)
            .await
            .map_err(write_error)?;
        let Some(id) = id else {
            return Err(StoreError::Stale);
        };
        let item = find_item(&mut tx, tenant, &RecordKey::Id(id))
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
        // Returning early drops (and so rolls back) the transaction: all or nothing.
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        if let Some((id, version, fields)) = plan {
            let mut qb = QueryBuilder::<Postgres>::new(
                "UPDATE plans SET version = version + 1, updated_at = ",
            );
            qb.push_bind(micros(now));
            push_assignments(&mut qb, &PLAN_WRITABLE, plan_values(fields));
            qb.push(" WHERE tenant_id = ").push_bind(tenant.0);
            qb.push(" AND id = ").push_bind(id.0);
            qb.push(" AND version = ").push_bind(version);
            let done = qb.build().execute(&mut *tx).await.map_err(|e| {
                if violates(&e, "plans_ext_id") {
                    StoreError::ExtIdTaken
                } else {
                    conflict_error(e)
                }
            })?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Stale);
            }
        }
        if writes.len() > 1 {
            // Lock the items in ID order first, so that batches naming the same items
            // in different orders queue instead of deadlocking.
            let ids: Vec<i64> = writes.iter().map(|w| w.id.0).collect();
            sqlx::query(
                "SELECT id FROM recurring_items WHERE tenant_id = $1 AND id = ANY($2) \
                 ORDER BY id FOR NO KEY UPDATE",
            )
            .bind(tenant.0)
            .bind(ids)
            .execute(&mut *tx)
            .await
            .map_err(conflict_error)?;
        }
        for write in writes {
            // The history entry is appended only if the conditional update matched.
            let mut qb = QueryBuilder::<Postgres>::new(
                "WITH u AS (UPDATE recurring_items SET version = version + 1, updated_at = ",
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
            qb.push(" WHERE tenant_id = ").push_bind(tenant.0);
            qb.push(" AND id = ").push_bind(write.id.0);
            qb.push(" AND version = ").push_bind(write.version);
            qb.push(
                " RETURNING tenant_id, id) INSERT INTO recurring_item_changes (tenant_id, item_id",
            );
            push_columns(&mut qb, &ITEM_CHANGE_WRITABLE);
            qb.push(") SELECT u.tenant_id, u.id");
            push_values(
                &mut qb,
                &ITEM_CHANGE_WRITABLE,
                item_change_values(&write.change),
            );
            qb.push(" FROM u");
            let done = qb.build().execute(&mut *tx).await.map_err(write_error)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Stale);
            }
        }
        tx.commit().await.map_err(db_error)
    }

    async fn find_recurring_item(
        &self,
        tenant: TenantId,
        key: &RecordKey,
    ) -> StoreResult<Option<RecurringItem>> {
        // One snapshot, so that the item and its history agree.
        let mut tx = self.begin_snapshot().await?;
        let item = find_item(&mut tx, tenant, key).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(item)
    }

    async fn list_recurring_items(
        &self,
        tenant: TenantId,
        filter: &ItemFilter,
        page: PageRequest,
    ) -> StoreResult<Page<RecurringItem>> {
        let mut tx = self.begin_snapshot().await?;
        let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM recurring_items r");
        push_filter(&mut count, tenant, filter);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        let mut qb = QueryBuilder::<Postgres>::new(ITEM_SELECT);
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
