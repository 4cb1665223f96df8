//! Recurring items and their history.

use async_trait::async_trait;
use dynabill_app::model::{
    Cancellation, ItemChange, ItemChangeKind, ItemFilter, ItemWrite, Page, PageRequest, PlanFields,
    RecordKey, RecurringItem, RecurringItemFields,
};
use dynabill_app::store::{RecurringItemStore, StoreError, StoreResult};
use dynabill_core::calendar::BillingPeriod;
use dynabill_core::domain::{AccountId, BillingTiming, PlanId, RecurringItemId, TenantId};
use jiff::Timestamp;
use rust_decimal::Decimal;

use crate::backend::{Backend, Conn, conflicted, failed};
use crate::paging::{Listing, finish, item_listing};
use crate::plans::{PLAN_WRITABLE, plan_values};
use crate::query::{Query, kept, row_columns, select_list};
use crate::store::SqlStore;
use crate::values::{
    Value, coded, date_text, from_micros, micros, parse_date, parse_decimal, parse_opt_date, small,
};

/// A row of `recurring_items`, with what it needs of its plan. Also read from the JSON an
/// event keeps of it (on SQLite an array in the order of these fields, see
/// `0009_record_events.sql`).
#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct RecurringItemRow {
    pub id: i64,
    pub plan_id: i64,
    pub plan_ext_id: String,
    pub account_id: i64,
    pub plan_billing_day: Option<i64>,
    pub plan_auto_renew: bool,
    pub ext_id: String,
    pub product_code: String,
    pub name: String,
    pub description: Option<String>,
    pub tax_code: Option<String>,
    pub billing_period: i64,
    pub period_count: i64,
    pub timing: i64,
    pub start_date: String,
    pub end_date: Option<String>,
    pub cancel_date: Option<String>,
    pub cancel_credit: Option<bool>,
    pub charged_through: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub version: i64,
}

/// The writable columns of `recurring_items`, in the order [`recurring_item_values`] gives them.
pub const RECURRING_ITEM_WRITABLE: [&str; 12] = [
    "ext_id",
    "product_code",
    "name",
    "description",
    "tax_code",
    "billing_period",
    "period_count",
    "timing",
    "start_date",
    "end_date",
    "cancel_date",
    "cancel_credit",
];

pub fn recurring_item_values(
    f: &RecurringItemFields,
    cancellation: Option<Cancellation>,
) -> Vec<Value> {
    use Value::*;
    vec![
        Text(f.ext_id.clone()),
        Text(f.product_code.clone()),
        Text(f.name.clone()),
        OptText(f.description.clone()),
        OptText(f.tax_code.clone()),
        Int(f.billing_period.code()),
        Int(i64::from(f.period_count)),
        Int(f.timing.code()),
        Text(date_text(f.start_date)),
        OptText(f.end_date.map(date_text)),
        OptText(cancellation.map(|c| date_text(c.date))),
        OptBool(cancellation.map(|c| c.credit)),
    ]
}

impl RecurringItemRow {
    /// The item, with its history (`changes`, oldest first) attached.
    pub fn into_item(self, changes: Vec<ItemChange>) -> Result<RecurringItem, StoreError> {
        let fields = RecurringItemFields {
            ext_id: self.ext_id,
            product_code: self.product_code,
            name: self.name,
            description: self.description,
            tax_code: self.tax_code,
            billing_period: coded(
                "billing period",
                self.billing_period,
                BillingPeriod::from_code,
            )?,
            period_count: small("billing period count", self.period_count)?,
            timing: coded("billing timing", self.timing, BillingTiming::from_code)?,
            start_date: parse_date(&self.start_date)?,
            end_date: parse_opt_date(self.end_date.as_deref())?,
        };
        let cancellation = match parse_opt_date(self.cancel_date.as_deref())? {
            Some(date) => Some(Cancellation {
                date,
                credit: self.cancel_credit.unwrap_or(true),
            }),
            None => None,
        };
        Ok(RecurringItem {
            id: RecurringItemId(self.id),
            plan_id: PlanId(self.plan_id),
            plan_ext_id: self.plan_ext_id,
            account_id: AccountId(self.account_id),
            plan_billing_day: self
                .plan_billing_day
                .map(|d| small("billing day", d))
                .transpose()?,
            plan_auto_renew: self.plan_auto_renew,
            fields,
            cancellation,
            charged_through: parse_opt_date(self.charged_through.as_deref())?,
            changes,
            created_at: from_micros(self.created_at)?,
            updated_at: from_micros(self.updated_at)?,
            deleted_at: self.deleted_at.map(from_micros).transpose()?,
            version: self.version,
        })
    }
}

/// A row of `recurring_item_changes`: one entry of an item's history. Also read from the JSON an
/// event keeps of it (on SQLite an array in the order of these fields, see
/// `0009_record_events.sql`).
#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct ItemChangeRow {
    pub id: i64,
    pub item_id: i64,
    pub kind: i64,
    pub effective_date: String,
    pub quantity: Option<String>,
    pub unit_price: Option<String>,
    pub discount_percent: Option<String>,
    pub start_date: String,
    pub end_date: Option<String>,
    pub prorate: Option<bool>,
    pub credit: Option<bool>,
    pub recorded_at: i64,
}

/// The columns of `recurring_item_changes` after `tenant_id, item_id`, in the order
/// [`item_change_values`] gives them.
pub const ITEM_CHANGE_WRITABLE: [&str; 10] = [
    "kind",
    "effective_date",
    "quantity",
    "unit_price",
    "discount_percent",
    "start_date",
    "end_date",
    "prorate",
    "credit",
    "recorded_at",
];

pub fn item_change_values(c: &ItemChange) -> Vec<Value> {
    use Value::*;
    let amount = |d: Option<Decimal>| OptText(d.map(|d| d.normalize().to_string()));
    vec![
        Int(c.kind.code()),
        Text(date_text(c.effective_date)),
        amount(c.quantity),
        amount(c.unit_price),
        amount(c.discount_percent),
        Text(date_text(c.start_date)),
        OptText(c.end_date.map(date_text)),
        OptBool(c.prorate),
        OptBool(c.credit),
        Int(micros(c.recorded_at)),
    ]
}

impl TryFrom<ItemChangeRow> for ItemChange {
    type Error = StoreError;

    fn try_from(r: ItemChangeRow) -> Result<Self, StoreError> {
        let amount = |t: Option<String>| t.as_deref().map(parse_decimal).transpose();
        Ok(ItemChange {
            seq: r.id,
            kind: coded("item change kind", r.kind, ItemChangeKind::from_code)?,
            effective_date: parse_date(&r.effective_date)?,
            quantity: amount(r.quantity)?,
            unit_price: amount(r.unit_price)?,
            discount_percent: amount(r.discount_percent)?,
            start_date: parse_date(&r.start_date)?,
            end_date: parse_opt_date(r.end_date.as_deref())?,
            prorate: r.prorate,
            credit: r.credit,
            recorded_at: from_micros(r.recorded_at)?,
        })
    }
}

/// Groups history rows (ordered by item, then entry) into each item's history and
/// attaches it, keeping the items' order.
pub fn attach_changes(
    records: Vec<RecurringItemRow>,
    change_rows: Vec<ItemChangeRow>,
) -> Result<Vec<RecurringItem>, StoreError> {
    let mut by_item: std::collections::HashMap<i64, Vec<ItemChange>> =
        std::collections::HashMap::new();
    for row in change_rows {
        let item_id = row.item_id;
        by_item.entry(item_id).or_default().push(row.try_into()?);
    }
    records
        .into_iter()
        .map(|r| {
            let changes = by_item.remove(&r.id).unwrap_or_default();
            r.into_item(changes)
        })
        .collect()
}

/// Which plans a cascade covers.
pub(crate) enum PlanScope {
    Plan(PlanId),
    Account(AccountId),
}

impl PlanScope {
    /// ` AND plan_id ...`, for a table with `tenant_id` and `plan_id`.
    fn push<B: Backend>(&self, q: &mut Query<B>, tenant: TenantId) {
        match self {
            PlanScope::Plan(id) => {
                q.push(" AND plan_id = ").bind(*id);
            }
            PlanScope::Account(id) => {
                q.push(" AND plan_id IN (SELECT id FROM plans WHERE tenant_id = ")
                    .bind(tenant)
                    .push(" AND account_id = ")
                    .bind(*id)
                    .push(")");
            }
        }
    }
}

/// An item the cascade cancelled: its start and its new end (the cancellation date).
#[derive(Debug, sqlx::FromRow)]
pub struct CancelledItemRow {
    id: i64,
    start_date: String,
    end_date: String,
}

/// The cascade of `PlanStore::cancel_plan`, inside the caller's transaction: items
/// still running at the cancellation's date are cancelled from the later of their
/// start and that date (with its credit mode, recorded in their history); pending
/// one-time items charged on or after the date are cancelled.
///
/// Call it after the statement that locked the plan (or account) rows: under
/// PostgreSQL's READ COMMITTED each statement here then takes a fresh snapshot, and
/// so also sees an item whose insert held the plan row `FOR SHARE` and committed
/// while we waited for it. The history entries are written for exactly the items
/// the update changed (and locked), whatever writers race it.
pub(crate) async fn cancel_items_of<B: Backend>(
    conn: &mut Conn<B>,
    tenant: TenantId,
    scope: PlanScope,
    cancellation: Cancellation,
    now: Timestamp,
) -> StoreResult<()> {
    let date = cancellation.date;
    let greatest = B::GREATEST;
    let mut q = Query::<B>::new(format!(
        "UPDATE recurring_items SET cancel_date = {greatest}(start_date, "
    ));
    q.bind_date(date)
        .push(format_args!("), end_date = {greatest}(start_date, "))
        .bind_date(date)
        .push("), cancel_credit = ")
        .bind(cancellation.credit)
        .push(", version = version + 1, updated_at = ")
        .bind(now)
        .push(" WHERE tenant_id = ")
        .bind(tenant);
    scope.push(&mut q, tenant);
    q.push(" AND cancel_date IS NULL AND deleted_at IS NULL AND (end_date IS NULL OR end_date > ")
        .bind_date(date)
        .push(") RETURNING ")
        .push(select_list::<B>(&["id", "start_date", "end_date"]));
    let mut cancelled: Vec<CancelledItemRow> = q.fetch_all(conn).await.map_err(conflicted::<B>)?;
    cancelled.sort_unstable_by_key(|item| item.id);
    let history: Vec<Vec<Value>> = cancelled
        .into_iter()
        .map(|item| {
            vec![
                Value::Int(tenant.0),
                Value::Int(item.id),
                Value::Int(ItemChangeKind::Cancellation.code()),
                Value::Text(item.end_date.clone()),
                Value::Text(item.start_date),
                Value::Text(item.end_date),
                Value::Bool(cancellation.credit),
                Value::Int(micros(now)),
            ]
        })
        .collect();
    if !history.is_empty() {
        B::insert_rows(
            conn,
            "recurring_item_changes",
            &CANCELLATION_COLUMNS,
            history,
            false,
        )
        .await
        .map_err(conflicted::<B>)?;
    }

    let mut q = Query::<B>::new("UPDATE one_time_items SET cancelled_at = ");
    q.bind(now)
        .push(", updated_at = ")
        .bind(now)
        .push(", version = version + 1 WHERE tenant_id = ")
        .bind(tenant);
    scope.push(&mut q, tenant);
    q.push(" AND cancelled_at IS NULL AND NOT invoiced AND deleted_at IS NULL AND charge_date >= ")
        .bind_date(date);
    q.execute(conn).await.map_err(conflicted::<B>)?;
    Ok(())
}

/// The columns of a cancellation's history entry.
const CANCELLATION_COLUMNS: [&str; 8] = [
    "tenant_id",
    "item_id",
    "kind",
    "effective_date",
    "start_date",
    "end_date",
    "credit",
    "recorded_at",
];

/// The columns of `recurring_items` a [`RecurringItemRow`] reads (besides its plan's).
pub(crate) fn item_row_columns() -> Vec<&'static str> {
    row_columns(
        &["id", "plan_id"],
        &RECURRING_ITEM_WRITABLE,
        &[
            "charged_through",
            "created_at",
            "updated_at",
            "deleted_at",
            "version",
        ],
    )
}

/// The columns an [`ItemChangeRow`] reads.
pub(crate) fn change_columns() -> Vec<&'static str> {
    row_columns(&["id", "item_id"], &ITEM_CHANGE_WRITABLE, &[])
}

/// Items `r` joined with their plans `p` (of the same tenant, which the schema
/// enforces).
pub const ITEMS_JOINED: &str =
    "FROM recurring_items r JOIN plans p ON p.tenant_id = r.tenant_id AND p.id = r.plan_id";

/// The select list of a [`RecurringItemRow`], from items `r` and their plans `p`.
pub fn item_columns<B: Backend>() -> &'static str {
    kept::<B>("recurring items", build_item_columns::<B>)
}

fn build_item_columns<B: Backend>() -> String {
    let mut columns: Vec<String> = item_row_columns()
        .iter()
        .map(|c| format!("r.{c}"))
        .collect();
    columns.extend(
        [
            "p.ext_id AS plan_ext_id",
            "p.account_id",
            "p.billing_day AS plan_billing_day",
            "p.auto_renew AS plan_auto_renew",
        ]
        .map(str::to_owned),
    );
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    select_list::<B>(&columns)
}

/// The items of `rows` with their histories (read on the same connection).
pub(crate) async fn with_history<B: Backend>(
    conn: &mut Conn<B>,
    tenant: TenantId,
    records: Vec<RecurringItemRow>,
) -> StoreResult<Vec<RecurringItem>> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
    let changes: Vec<ItemChangeRow> = history_read::<B>(tenant, &ids, "")
        .fetch_all(conn)
        .await
        .map_err(failed::<B>)?;
    attach_changes(records, changes)
}

/// The read of the histories of the items `ids`, led by `lead` (see
/// [`snapshot_reads`](crate::billing::snapshot_reads)).
pub fn history_read<B: Backend>(tenant: TenantId, ids: &[i64], lead: &str) -> Query<B> {
    let mut q = Query::<B>::new(format!(
        "{lead}SELECT {} FROM recurring_item_changes WHERE tenant_id = ",
        kept::<B>("item changes", || select_list::<B>(&change_columns()))
    ));
    q.bind(tenant)
        .and_batch("item_id", ids)
        .push(" ORDER BY item_id, id");
    q
}

/// The items `q` selects (with [`item_columns`]), with their histories.
pub async fn fetch_items<B: Backend>(
    conn: &mut Conn<B>,
    tenant: TenantId,
    q: Query<B>,
) -> StoreResult<Vec<RecurringItem>> {
    let rows: Vec<RecurringItemRow> = q.fetch_all(conn).await.map_err(failed::<B>)?;
    with_history::<B>(conn, tenant, rows).await
}

async fn find_item<B: Backend>(
    conn: &mut Conn<B>,
    tenant: TenantId,
    key: &RecordKey<RecurringItemId>,
) -> StoreResult<Option<RecurringItem>> {
    let mut q = Query::<B>::new(format!(
        "SELECT {} {ITEMS_JOINED} WHERE r.tenant_id = ",
        item_columns::<B>()
    ));
    q.bind(tenant);
    match key {
        RecordKey::Id(id) => q.push(" AND r.id = ").bind(*id),
        RecordKey::ExtId(ext_id) => q.push(" AND r.ext_id = ").bind(ext_id),
    };
    Ok(fetch_items(conn, tenant, q).await?.pop())
}

async fn insert_change<B: Backend>(
    conn: &mut Conn<B>,
    tenant: TenantId,
    item: i64,
    change: &ItemChange,
) -> StoreResult<()> {
    let mut q = Query::<B>::new("INSERT INTO recurring_item_changes (tenant_id, item_id");
    q.columns(&ITEM_CHANGE_WRITABLE)
        .push(") VALUES (")
        .bind(tenant)
        .push(", ")
        .bind(item)
        .values(&ITEM_CHANGE_WRITABLE, item_change_values(change))
        .push(")");
    q.execute(conn).await.map_err(conflicted::<B>)?;
    Ok(())
}

fn push_filter<B: Backend>(
    q: &mut Query<B>,
    tenant: TenantId,
    filter: &ItemFilter<RecurringItemId>,
) {
    q.push(" WHERE r.tenant_id = ").bind(tenant);
    if let Some(id) = filter.id {
        q.push(" AND r.id = ").bind(id);
    }
    if let Some(ext_id) = &filter.ext_id {
        q.push(" AND r.ext_id = ").bind(ext_id);
    }
    if let Some(plan_id) = filter.plan_id {
        q.push(" AND r.plan_id = ").bind(plan_id);
    }
    if !filter.include_deleted {
        q.push(" AND r.deleted_at IS NULL");
    }
}

/// The list of the recurring items `filter` selects (see [`item_listing`]).
pub(crate) fn recurring_item_listing<'a, B: Backend>(
    tenant: TenantId,
    filter: &'a ItemFilter<RecurringItemId>,
) -> Listing<'a, B> {
    let shape = (item_columns::<B>(), ITEMS_JOINED, "r.id");
    item_listing(tenant, filter, "recurring_items", shape, push_filter::<B>)
}

#[async_trait]
impl<B: Backend> RecurringItemStore for SqlStore<B> {
    async fn insert_recurring_item(
        &self,
        tenant: TenantId,
        plan: PlanId,
        fields: &RecurringItemFields,
        created: &ItemChange,
        now: Timestamp,
    ) -> StoreResult<RecurringItem> {
        // Returning early drops (and so rolls back) the transaction.
        let mut tx = self.backend().begin_write().await?;
        // The plan must be a live, uncancelled plan of this tenant, read `FOR SHARE`
        // (see `Backend::FOR_SHARE`): a concurrent `delete_plan` either committed
        // first (and the item is refused) or waits for it (and then cancels it).
        let mut q = Query::<B>::new(
            "INSERT INTO recurring_items (tenant_id, plan_id, created_at, updated_at",
        );
        q.columns(&RECURRING_ITEM_WRITABLE)
            .push(") SELECT tenant_id, id, ")
            .bind(now)
            .push(", ")
            .bind(now)
            .values(
                &RECURRING_ITEM_WRITABLE,
                recurring_item_values(fields, None),
            )
            .push(" FROM plans WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(plan)
            .push(" AND deleted_at IS NULL AND cancel_date IS NULL")
            .push(B::FOR_SHARE)
            .push(" RETURNING id");
        let (id,): (i64,) = q
            .fetch_optional(&mut tx)
            .await
            .map_err(conflicted::<B>)?
            .ok_or(StoreError::Stale)?;
        insert_change::<B>(&mut tx, tenant, id, created).await?;
        let item = find_item::<B>(&mut tx, tenant, &RecordKey::Id(RecurringItemId(id)))
            .await?
            .ok_or(StoreError::Stale)?;
        tx.commit().await.map_err(failed::<B>)?;
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
        let mut tx = self.backend().begin_write().await?;
        if let Some((id, version, fields)) = plan {
            // Only a renewal writes the plan with its items: `renewals` counts it.
            let mut q = Query::<B>::new(
                "UPDATE plans SET version = version + 1, renewals = renewals + 1, updated_at = ",
            );
            q.bind(now)
                .assignments(&PLAN_WRITABLE, plan_values(fields))
                .push(" WHERE tenant_id = ")
                .bind(tenant)
                .push(" AND id = ")
                .bind(id)
                .push(" AND version = ")
                .bind(version);
            if q.execute(&mut tx).await.map_err(conflicted::<B>)? == 0 {
                return Err(StoreError::Stale);
            }
        }
        if writes.len() > 1 {
            // Batches naming the same items in different orders queue instead of
            // deadlocking.
            let ids: Vec<i64> = writes.iter().map(|w| w.id.0).collect();
            B::lock_in_order(&mut tx, "recurring_items", tenant.0, &ids)
                .await
                .map_err(conflicted::<B>)?;
        }
        for write in writes {
            let mut q =
                Query::<B>::new("UPDATE recurring_items SET version = version + 1, updated_at = ");
            q.bind(now).assignments(
                &RECURRING_ITEM_WRITABLE,
                recurring_item_values(&write.fields, write.cancellation),
            );
            q.push(", deleted_at = ");
            if write.deleted {
                q.push("COALESCE(deleted_at, ").bind(now).push(")");
            } else {
                q.push("NULL");
            }
            q.push(" WHERE tenant_id = ")
                .bind(tenant)
                .push(" AND id = ")
                .bind(write.id)
                .push(" AND version = ")
                .bind(write.version);
            // The history entry is appended only if the conditional update matched.
            if q.execute(&mut tx).await.map_err(conflicted::<B>)? == 0 {
                return Err(StoreError::Stale);
            }
            insert_change::<B>(&mut tx, tenant, write.id.0, &write.change).await?;
        }
        tx.commit().await.map_err(failed::<B>)
    }

    async fn find_recurring_item(
        &self,
        tenant: TenantId,
        key: &RecordKey<RecurringItemId>,
    ) -> StoreResult<Option<RecurringItem>> {
        // One snapshot, so that the item and its history agree.
        let mut tx = self.backend().begin_read().await?;
        let item = find_item::<B>(&mut tx, tenant, key).await?;
        tx.commit().await.map_err(failed::<B>)?;
        Ok(item)
    }

    async fn list_recurring_items(
        &self,
        tenant: TenantId,
        filter: &ItemFilter<RecurringItemId>,
        page: PageRequest,
    ) -> StoreResult<Page<RecurringItem>> {
        let listing = recurring_item_listing::<B>(tenant, filter);
        let (total, rows, mut tx) = listing.read::<RecurringItemRow>(self, page).await?;
        let items = with_history::<B>(&mut tx, tenant, rows).await?;
        finish::<B, _>(tx, items, page, total, |i| i.id.0).await
    }
}
