//! Recurring items and their history in SQLite, and the cascade that cancels the
//! items of cancelled plans.

use async_trait::async_trait;
use dynabill_app::model::{
    Cancellation, ItemChange, ItemFilter, ItemWrite, Page, PageRequest, PlanFields, RecordKey,
    RecurringItem, RecurringItemFields,
};
use dynabill_app::store::{RecurringItemStore, StoreError, StoreResult};
use dynabill_core::domain::{PlanId, TenantId};
use dynabill_sql::{
    ITEM_CHANGE_WRITABLE, ItemChangeRecord, PLAN_WRITABLE, RECURRING_ITEM_WRITABLE,
    RecurringItemRecord, attach_changes, date_text, item_change_values, micros, plan_values,
    recurring_item_values,
};
use jiff::Timestamp;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::{
    SqliteStore, db_error, is_unique_violation, push_assignments, push_columns, push_values,
};

pub(crate) const ITEM_SELECT: &str = "SELECT r.id, r.plan_id, p.ext_id AS plan_ext_id, p.account_id, \
    p.billing_day AS plan_billing_day, p.auto_renew AS plan_auto_renew, r.ext_id, r.product_code, r.name, \
    r.description, r.tax_code, r.billing_period, r.period_count, r.timing, r.start_date, r.end_date, \
    r.cancel_date, r.cancel_credit, r.charged_through, r.created_at, r.updated_at, r.deleted_at, r.version \
    FROM recurring_items r JOIN plans p ON p.id = r.plan_id";
/// The FROM clause of [`ITEM_SELECT`].
pub(crate) const ITEM_FROM: &str = "FROM recurring_items r JOIN plans p ON p.id = r.plan_id";

/// Which plans a cascade covers.
pub(crate) enum PlanScope {
    Plan(i64),
    Account(i64),
}

impl PlanScope {
    fn push(&self, qb: &mut QueryBuilder<Sqlite>, tenant: TenantId) {
        match self {
            PlanScope::Plan(id) => {
                qb.push(" plan_id = ").push_bind(*id);
            }
            PlanScope::Account(id) => {
                qb.push(" plan_id IN (SELECT id FROM plans WHERE tenant_id = ")
                    .push_bind(tenant.0);
                qb.push(" AND account_id = ").push_bind(*id).push(")");
            }
        }
    }
}

/// The cascade of `PlanStore::cancel_plan`, inside the caller's transaction: items
/// still running at its date are cancelled from the later of their start and that
/// date (with its credit mode, recorded in their history); pending one-time items
/// charged on or after the date are cancelled.
pub(crate) async fn cancel_items_of(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    scope: PlanScope,
    cancellation: Cancellation,
    now: Timestamp,
) -> StoreResult<()> {
    let day = date_text(cancellation.date);
    let credit = i64::from(cancellation.credit);
    let running = |qb: &mut QueryBuilder<Sqlite>| {
        qb.push(" WHERE tenant_id = ")
            .push_bind(tenant.0)
            .push(" AND");
        scope.push(qb, tenant);
        qb.push(
            " AND cancel_date IS NULL AND deleted_at IS NULL AND (end_date IS NULL OR end_date > ",
        );
        qb.push_bind(day.clone()).push(")");
    };
    let mut history = QueryBuilder::<Sqlite>::new(
        "INSERT INTO recurring_item_changes (tenant_id, item_id, kind, effective_date, start_date, end_date, credit, recorded_at) \
         SELECT tenant_id, id, ",
    );
    history.push_bind(dynabill_app::model::ItemChangeKind::Cancellation.code());
    history
        .push(", MAX(start_date, ")
        .push_bind(day.clone())
        .push("), start_date, MAX(start_date, ");
    history
        .push_bind(day.clone())
        .push("), ")
        .push_bind(credit)
        .push(", ")
        .push_bind(micros(now))
        .push(" FROM recurring_items");
    running(&mut history);
    history
        .build()
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;

    let mut cancel =
        QueryBuilder::<Sqlite>::new("UPDATE recurring_items SET cancel_date = MAX(start_date, ");
    cancel
        .push_bind(day.clone())
        .push("), end_date = MAX(start_date, ")
        .push_bind(day.clone());
    cancel
        .push("), cancel_credit = ")
        .push_bind(credit)
        .push(", version = version + 1, updated_at = ")
        .push_bind(micros(now));
    running(&mut cancel);
    cancel.build().execute(&mut *conn).await.map_err(db_error)?;

    let mut one_time = QueryBuilder::<Sqlite>::new("UPDATE one_time_items SET cancelled_at = ");
    one_time
        .push_bind(micros(now))
        .push(", updated_at = ")
        .push_bind(micros(now));
    one_time
        .push(", version = version + 1 WHERE tenant_id = ")
        .push_bind(tenant.0)
        .push(" AND");
    scope.push(&mut one_time, tenant);
    one_time.push(
        " AND cancelled_at IS NULL AND invoiced = 0 AND deleted_at IS NULL AND charge_date >= ",
    );
    one_time.push_bind(day);
    one_time
        .build()
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

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
    let records: Vec<RecurringItemRecord> = qb
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
    let rows: Vec<ItemChangeRecord> = changes
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
impl RecurringItemStore for SqliteStore {
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
