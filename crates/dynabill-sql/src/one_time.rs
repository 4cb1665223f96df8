//! One-time items.

use async_trait::async_trait;
use dynabill_app::model::{
    ItemFilter, OneTimeItem, OneTimeItemFields, OneTimeMark, Page, PageRequest, RecordKey,
};
use dynabill_app::store::{OneTimeItemStore, StoreError, StoreResult};
use dynabill_core::domain::{AccountId, OneTimeItemId, PlanId, TenantId};
use jiff::Timestamp;

use crate::backend::{Backend, conflicted, failed};
use crate::paging::{Listing, convert, finish, item_listing};
use crate::query::{Query, kept, row_columns, select_list};
use crate::store::SqlStore;
use crate::values::{Value, date_text, from_micros, parse_date, parse_decimal};

/// A row of `one_time_items`, with what it needs of its plan. Also read from the JSON
/// an event keeps of it (on SQLite an array in the order of these fields, see
/// `0009_record_events.sql`).
#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct OneTimeItemRow {
    pub id: i64,
    pub plan_id: i64,
    pub plan_ext_id: String,
    pub account_id: i64,
    pub ext_id: String,
    pub product_code: String,
    pub name: String,
    pub description: Option<String>,
    pub quantity: String,
    pub unit_price: String,
    pub charge_date: String,
    pub tax_code: Option<String>,
    pub cancelled_at: Option<i64>,
    pub invoiced: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub version: i64,
}

/// The writable columns of `one_time_items`, in the order [`one_time_values`] gives them.
pub const ONE_TIME_WRITABLE: [&str; 8] = [
    "ext_id",
    "product_code",
    "name",
    "description",
    "quantity",
    "unit_price",
    "charge_date",
    "tax_code",
];

pub fn one_time_values(f: &OneTimeItemFields) -> Vec<Value> {
    use Value::*;
    vec![
        Text(f.ext_id.clone()),
        Text(f.product_code.clone()),
        Text(f.name.clone()),
        OptText(f.description.clone()),
        Text(f.quantity.normalize().to_string()),
        Text(f.unit_price.normalize().to_string()),
        Text(date_text(f.charge_date)),
        OptText(f.tax_code.clone()),
    ]
}

impl TryFrom<OneTimeItemRow> for OneTimeItem {
    type Error = StoreError;

    fn try_from(r: OneTimeItemRow) -> Result<Self, StoreError> {
        Ok(OneTimeItem {
            id: OneTimeItemId(r.id),
            plan_id: PlanId(r.plan_id),
            plan_ext_id: r.plan_ext_id,
            account_id: AccountId(r.account_id),
            fields: OneTimeItemFields {
                ext_id: r.ext_id,
                product_code: r.product_code,
                name: r.name,
                description: r.description,
                quantity: parse_decimal(&r.quantity)?,
                unit_price: parse_decimal(&r.unit_price)?,
                charge_date: parse_date(&r.charge_date)?,
                tax_code: r.tax_code,
            },
            cancelled_at: r.cancelled_at.map(from_micros).transpose()?,
            invoiced: r.invoiced,
            created_at: from_micros(r.created_at)?,
            updated_at: from_micros(r.updated_at)?,
            deleted_at: r.deleted_at.map(from_micros).transpose()?,
            version: r.version,
        })
    }
}
/// The columns of `one_time_items` a [`OneTimeItemRow`] reads (besides its plan's).
pub(crate) fn one_time_row_columns() -> Vec<&'static str> {
    row_columns(
        &["id", "plan_id"],
        &ONE_TIME_WRITABLE,
        &[
            "cancelled_at",
            "invoiced",
            "created_at",
            "updated_at",
            "deleted_at",
            "version",
        ],
    )
}

/// One-time items `o` joined with their plans `p` (of the same tenant, which the
/// schema enforces).
pub const ONE_TIME_JOINED: &str =
    "FROM one_time_items o JOIN plans p ON p.tenant_id = o.tenant_id AND p.id = o.plan_id";

/// The select list of a [`OneTimeItemRow`], from [`ONE_TIME_JOINED`].
pub fn one_time_columns<B: Backend>() -> &'static str {
    kept::<B>("one-time items", build_one_time_columns::<B>)
}

fn build_one_time_columns<B: Backend>() -> String {
    let mut columns: Vec<String> = one_time_row_columns()
        .iter()
        .map(|c| format!("o.{c}"))
        .collect();
    columns.push("p.ext_id AS plan_ext_id".to_owned());
    columns.push("p.account_id".to_owned());
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    select_list::<B>(&columns)
}

/// The `RETURNING` list of a write to `one_time_items` that reads back a
/// [`OneTimeItemRow`].
fn returning_one_time<B: Backend>() -> &'static str {
    kept::<B>("one-time items returning", build_returning_one_time::<B>)
}

fn build_returning_one_time<B: Backend>() -> String {
    let mut columns: Vec<&str> = one_time_row_columns();
    columns.push(
        "(SELECT p.ext_id FROM plans p WHERE p.tenant_id = one_time_items.tenant_id \
         AND p.id = one_time_items.plan_id) AS plan_ext_id",
    );
    columns.push(
        "(SELECT p.account_id FROM plans p WHERE p.tenant_id = one_time_items.tenant_id \
         AND p.id = one_time_items.plan_id) AS account_id",
    );
    format!(" RETURNING {}", select_list::<B>(&columns))
}

fn push_filter<B: Backend>(q: &mut Query<B>, tenant: TenantId, filter: &ItemFilter<OneTimeItemId>) {
    q.push(" WHERE o.tenant_id = ").bind(tenant);
    if let Some(id) = filter.id {
        q.push(" AND o.id = ").bind(id);
    }
    if let Some(ext_id) = &filter.ext_id {
        q.push(" AND o.ext_id = ").bind(ext_id);
    }
    if let Some(plan_id) = filter.plan_id {
        q.push(" AND o.plan_id = ").bind(plan_id);
    }
    if !filter.include_deleted {
        q.push(" AND o.deleted_at IS NULL");
    }
}

/// The list of the one-time items `filter` selects (see [`item_listing`]).
pub(crate) fn one_time_listing<'a, B: Backend>(
    tenant: TenantId,
    filter: &'a ItemFilter<OneTimeItemId>,
) -> Listing<'a, B> {
    let shape = (one_time_columns::<B>(), ONE_TIME_JOINED, "o.id");
    item_listing(tenant, filter, "one_time_items", shape, push_filter::<B>)
}

#[async_trait]
impl<B: Backend> OneTimeItemStore for SqlStore<B> {
    async fn insert_one_time_item(
        &self,
        tenant: TenantId,
        plan: PlanId,
        fields: &OneTimeItemFields,
        now: Timestamp,
    ) -> StoreResult<OneTimeItem> {
        // The plan must be a live plan of this tenant, read `FOR SHARE` (see
        // `Backend::FOR_SHARE`), as for recurring items.
        let mut q = Query::<B>::new(
            "INSERT INTO one_time_items (tenant_id, plan_id, created_at, updated_at",
        );
        q.columns(&ONE_TIME_WRITABLE)
            .push(") SELECT tenant_id, id, ")
            .bind(now)
            .push(", ")
            .bind(now)
            .values(&ONE_TIME_WRITABLE, one_time_values(fields))
            .push(" FROM plans WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(plan)
            .push(" AND deleted_at IS NULL")
            .push(B::FOR_SHARE)
            .push(returning_one_time::<B>());
        let row: Option<OneTimeItemRow> = q
            .fetch_optional(&mut *self.write_conn().await?)
            .await
            .map_err(conflicted::<B>)?;
        row.ok_or(StoreError::Stale)?.try_into()
    }

    async fn update_one_time_item(
        &self,
        tenant: TenantId,
        id: OneTimeItemId,
        version: i64,
        fields: &OneTimeItemFields,
        mark: OneTimeMark,
        now: Timestamp,
    ) -> StoreResult<OneTimeItem> {
        let mut q =
            Query::<B>::new("UPDATE one_time_items SET version = version + 1, updated_at = ");
        q.bind(now)
            .assignments(&ONE_TIME_WRITABLE, one_time_values(fields));
        if mark.cancels() {
            q.push(", cancelled_at = COALESCE(cancelled_at, ")
                .bind(now)
                .push(")");
        }
        if mark.deletes() {
            q.push(", deleted_at = COALESCE(deleted_at, ")
                .bind(now)
                .push(")");
        }
        q.push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id)
            .push(" AND version = ")
            .bind(version)
            .push(returning_one_time::<B>());
        let row: Option<OneTimeItemRow> = q
            .fetch_optional(&mut *self.write_conn().await?)
            .await
            .map_err(conflicted::<B>)?;
        row.ok_or(StoreError::Stale)?.try_into()
    }

    async fn find_one_time_item(
        &self,
        tenant: TenantId,
        key: &RecordKey<OneTimeItemId>,
    ) -> StoreResult<Option<OneTimeItem>> {
        let mut q = Query::<B>::new(format!(
            "SELECT {} {ONE_TIME_JOINED} WHERE o.tenant_id = ",
            one_time_columns::<B>()
        ));
        q.bind(tenant);
        match key {
            RecordKey::Id(id) => q.push(" AND o.id = ").bind(*id),
            RecordKey::ExtId(ext_id) => q.push(" AND o.ext_id = ").bind(ext_id),
        };
        let row: Option<OneTimeItemRow> = q
            .fetch_optional(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list_one_time_items(
        &self,
        tenant: TenantId,
        filter: &ItemFilter<OneTimeItemId>,
        page: PageRequest,
    ) -> StoreResult<Page<OneTimeItem>> {
        let listing = one_time_listing::<B>(tenant, filter);
        let (total, rows, tx) = listing.read::<OneTimeItemRow>(self, page).await?;
        let items: Vec<OneTimeItem> = convert(rows)?;
        finish::<B, _>(tx, items, page, total, |i| i.id.0).await
    }
}
