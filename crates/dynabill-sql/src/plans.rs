//! Account plans.

use async_trait::async_trait;
use dynabill_app::model::{
    Cancellation, Page, PageRequest, Plan, PlanFields, PlanFilter, RecordKey,
};
use dynabill_app::store::{PlanStore, StoreError, StoreResult};
use dynabill_core::domain::{AccountId, PlanId, TenantId};
use jiff::Timestamp;
use jiff::civil::Date;

use crate::backend::{Backend, conflicted, failed};
use crate::items::{PlanScope, cancel_items_of};
use crate::paging::{Listing, PageOrder, Tally, convert, finish};
use crate::query::{Query, kept, row_columns, select_list};
use crate::store::SqlStore;
use crate::values::{Value, date_text, from_micros, parse_date, parse_opt_date, small, stored};

/// A row of `plans`, with its account's `ExtID`. Also read from the JSON an
/// event keeps of it (on SQLite an array in the order of these fields, see
/// `0009_record_events.sql`).
#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct PlanRow {
    pub id: i64,
    pub account_id: i64,
    pub account_ext_id: String,
    pub ext_id: String,
    pub name: Option<String>,
    pub start_date: String,
    pub end_date: Option<String>,
    pub auto_renew: bool,
    pub renewal_term_months: i64,
    pub billing_day: Option<i64>,
    pub currency: String,
    pub po_number: Option<String>,
    pub notes: Option<String>,
    pub cancel_date: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub version: i64,
}

/// The writable columns of `plans`, in the order [`plan_values`] gives them.
pub const PLAN_WRITABLE: [&str; 10] = [
    "ext_id",
    "name",
    "start_date",
    "end_date",
    "auto_renew",
    "renewal_term_months",
    "billing_day",
    "currency",
    "po_number",
    "notes",
];

/// Dates are given as text; PostgreSQL casts them where its columns are `DATE`.
pub fn plan_values(f: &PlanFields) -> Vec<Value> {
    use Value::*;
    vec![
        Text(f.ext_id.clone()),
        OptText(f.name.clone()),
        Text(date_text(f.start_date)),
        OptText(f.end_date.map(date_text)),
        Bool(f.auto_renew),
        Int(i64::from(f.renewal_term_months)),
        OptInt(f.billing_day.map(i64::from)),
        Text(f.currency.code().to_owned()),
        OptText(f.po_number.clone()),
        OptText(f.notes.clone()),
    ]
}

impl TryFrom<PlanRow> for Plan {
    type Error = StoreError;

    fn try_from(r: PlanRow) -> Result<Self, StoreError> {
        let fields = PlanFields {
            ext_id: r.ext_id,
            name: r.name,
            start_date: parse_date(&r.start_date)?,
            end_date: parse_opt_date(r.end_date.as_deref())?,
            auto_renew: r.auto_renew,
            renewal_term_months: small("renewal term", r.renewal_term_months)?,
            billing_day: r.billing_day.map(|d| small("billing day", d)).transpose()?,
            currency: stored("currency", &r.currency)?,
            po_number: r.po_number,
            notes: r.notes,
        };
        Ok(Plan {
            id: PlanId(r.id),
            account_id: AccountId(r.account_id),
            account_ext_id: r.account_ext_id,
            fields,
            cancel_date: parse_opt_date(r.cancel_date.as_deref())?,
            created_at: from_micros(r.created_at)?,
            updated_at: from_micros(r.updated_at)?,
            deleted_at: r.deleted_at.map(from_micros).transpose()?,
            version: r.version,
        })
    }
}

/// The columns of `plans` a [`PlanRow`] reads (besides its account's `ExtID`).
pub(crate) fn plan_row_columns() -> Vec<&'static str> {
    row_columns(
        &["id", "account_id"],
        &PLAN_WRITABLE,
        &[
            "cancel_date",
            "created_at",
            "updated_at",
            "deleted_at",
            "version",
        ],
    )
}

/// Plans `p` joined with their accounts `a` (of the same tenant, which the schema
/// enforces).
pub const PLANS_JOINED: &str =
    "FROM plans p JOIN accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id";

/// The select list of a [`PlanRow`], from [`PLANS_JOINED`].
pub fn plan_columns<B: Backend>() -> &'static str {
    kept::<B>("plans", build_plan_columns::<B>)
}

fn build_plan_columns<B: Backend>() -> String {
    let mut columns: Vec<String> = plan_row_columns()
        .iter()
        .map(|c| format!("p.{c}"))
        .collect();
    columns.push("a.ext_id AS account_ext_id".to_owned());
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    select_list::<B>(&columns)
}

/// The `RETURNING` list of a write to `plans` that reads back a [`PlanRow`].
fn returning_plan<B: Backend>() -> &'static str {
    kept::<B>("plans returning", build_returning_plan::<B>)
}

fn build_returning_plan<B: Backend>() -> String {
    let mut columns: Vec<&str> = plan_row_columns();
    columns.push(
        "(SELECT a.ext_id FROM accounts a WHERE a.tenant_id = plans.tenant_id \
         AND a.id = plans.account_id) AS account_ext_id",
    );
    format!(" RETURNING {}", select_list::<B>(&columns))
}

/// `SELECT <plan columns> FROM plans p JOIN accounts a ...`.
pub fn select_plans<B: Backend>() -> Query<B> {
    Query::new(format!("SELECT {} {PLANS_JOINED}", plan_columns::<B>()))
}

/// `PlanStatus` as SQL, from the same rule as `PlanStatus::on`.
fn push_status<B: Backend>(q: &mut Query<B>, today: Date) {
    q.push(
        "(CASE WHEN p.cancel_date IS NOT NULL THEN 2 \
         WHEN p.end_date IS NOT NULL AND NOT p.auto_renew AND p.end_date <= ",
    )
    .bind_date(today)
    .push(" THEN 3 ELSE 1 END)");
}

fn push_filter<B: Backend>(q: &mut Query<B>, tenant: TenantId, filter: &PlanFilter, today: Date) {
    q.push(" WHERE p.tenant_id = ").bind(tenant);
    if let Some(id) = filter.id {
        q.push(" AND p.id = ").bind(id);
    }
    if let Some(ext_id) = &filter.ext_id {
        q.push(" AND p.ext_id = ").bind(ext_id);
    }
    if let Some(account_id) = filter.account_id {
        q.push(" AND p.account_id = ").bind(account_id);
    }
    if let Some(account_ext_id) = &filter.account_ext_id {
        // The account first, by its key: a join filtered on `a.ext_id` may walk the
        // tenant's plans in ID order (for the page's order) looking for its account.
        q.push(" AND p.account_id = (SELECT id FROM accounts WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND ext_id = ")
            .bind(account_ext_id)
            .push(")");
    }
    if let Some(status) = filter.status {
        q.push(" AND ");
        push_status(q, today);
        q.push(" = ").bind(status.code());
    }
    if !filter.include_deleted {
        q.push(" AND p.deleted_at IS NULL");
    }
}

/// Whether `filter` names a status and nothing else that selects: the tenant's
/// (live) plans in ID order, each checked (a status is derived from dates and
/// today, not stored).
fn only_status(filter: &PlanFilter) -> bool {
    filter.status.is_some()
        && filter.id.is_none()
        && filter.ext_id.is_none()
        && filter.account_id.is_none()
        && filter.account_ext_id.is_none()
}

/// The list of the plans `filter` selects (3/71). Its total is a maintained count
/// unless the filter names a key, an account or a status (derived from dates).
pub(crate) fn plan_listing<'a, B: Backend>(
    tenant: TenantId,
    filter: &'a PlanFilter,
    today: Date,
) -> Listing<'a, B> {
    let counted = filter.id.is_none()
        && filter.ext_id.is_none()
        && filter.account_id.is_none()
        && filter.account_ext_id.is_none()
        && filter.status.is_none();
    Listing {
        columns: plan_columns::<B>(),
        from: PLANS_JOINED,
        count_from: None,
        key: "p.id",
        filter: Box::new(move |q: &mut Query<B>| push_filter(q, tenant, filter, today)),
        order: PageOrder::of(false, counted || only_status(filter)),
        tally: counted.then_some(Tally {
            tenant,
            list: "plans",
            live_only: !filter.include_deleted,
            statuses: Vec::new(),
        }),
    }
}

impl<B: Backend> SqlStore<B> {
    /// Runs a conditional `UPDATE plans SET <set> WHERE <this plan at version>` and
    /// reads the plan back, in one statement. With `cascade_from`, the plan's items
    /// are cancelled from its date, with its credit mode (see [`cancel_items_of`]),
    /// in the same transaction, after the plan row is locked.
    async fn change_plan(
        &self,
        tenant: TenantId,
        id: PlanId,
        version: i64,
        now: Timestamp,
        cascade_from: Option<Cancellation>,
        set: impl FnOnce(&mut Query<B>),
    ) -> StoreResult<Plan> {
        let mut q = Query::<B>::new("UPDATE plans SET version = version + 1, updated_at = ");
        q.bind(now);
        set(&mut q);
        q.push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id)
            .push(" AND version = ")
            .bind(version)
            .push(returning_plan::<B>());
        let Some(cancellation) = cascade_from else {
            let row: Option<PlanRow> = q
                .fetch_optional(&mut *self.write_conn().await?)
                .await
                .map_err(conflicted::<B>)?;
            return row.ok_or(StoreError::Stale)?.try_into();
        };
        // Returning early drops (and so rolls back) the transaction.
        let mut tx = self.backend().begin_write().await?;
        let row: PlanRow = q
            .fetch_optional(&mut tx)
            .await
            .map_err(conflicted::<B>)?
            .ok_or(StoreError::Stale)?;
        cancel_items_of::<B>(&mut tx, tenant, PlanScope::Plan(id), cancellation, now).await?;
        tx.commit().await.map_err(failed::<B>)?;
        row.try_into()
    }
}

#[async_trait]
impl<B: Backend> PlanStore for SqlStore<B> {
    async fn insert_plan(
        &self,
        tenant: TenantId,
        account: AccountId,
        fields: &PlanFields,
        now: Timestamp,
    ) -> StoreResult<Plan> {
        // The account must be a live account of this tenant, read `FOR SHARE` (see
        // `Backend::FOR_SHARE`): a concurrent `delete_account` either committed first
        // (and the plan is refused) or waits for it (and then cancels it).
        let mut q =
            Query::<B>::new("INSERT INTO plans (tenant_id, account_id, created_at, updated_at");
        q.columns(&PLAN_WRITABLE)
            .push(") SELECT tenant_id, id, ")
            .bind(now)
            .push(", ")
            .bind(now)
            .values(&PLAN_WRITABLE, plan_values(fields))
            .push(" FROM accounts WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(account)
            .push(" AND deleted_at IS NULL")
            .push(B::FOR_SHARE)
            .push(returning_plan::<B>());
        let row: Option<PlanRow> = q
            .fetch_optional(&mut *self.write_conn().await?)
            .await
            .map_err(conflicted::<B>)?;
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
        self.change_plan(tenant, id, version, now, None, |q| {
            q.assignments(&PLAN_WRITABLE, plan_values(fields));
        })
        .await
    }

    async fn find_plan(
        &self,
        tenant: TenantId,
        key: &RecordKey<PlanId>,
    ) -> StoreResult<Option<Plan>> {
        let mut q = select_plans::<B>();
        q.push(" WHERE p.tenant_id = ").bind(tenant);
        match key {
            RecordKey::Id(id) => q.push(" AND p.id = ").bind(*id),
            RecordKey::ExtId(ext_id) => q.push(" AND p.ext_id = ").bind(ext_id),
        };
        let row: Option<PlanRow> = q
            .fetch_optional(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list_plans(
        &self,
        tenant: TenantId,
        filter: &PlanFilter,
        today: Date,
        page: PageRequest,
    ) -> StoreResult<Page<Plan>> {
        let listing = plan_listing::<B>(tenant, filter, today);
        let (total, rows, tx) = listing.read::<PlanRow>(self, page).await?;
        let plans: Vec<Plan> = convert(rows)?;
        finish::<B, _>(tx, plans, page, total, |p| p.id.0).await
    }

    async fn cancel_plan(
        &self,
        tenant: TenantId,
        id: PlanId,
        version: i64,
        cancellation: Cancellation,
        now: Timestamp,
    ) -> StoreResult<Plan> {
        self.change_plan(tenant, id, version, now, Some(cancellation), |q| {
            q.push(", cancel_date = ").bind_date(cancellation.date);
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
        let cancellation = Cancellation {
            date: cancel_date,
            credit: true,
        };
        self.change_plan(tenant, id, version, now, Some(cancellation), |q| {
            q.push(", deleted_at = ")
                .bind(now)
                .push(", cancel_date = COALESCE(cancel_date, ")
                .bind_date(cancel_date)
                .push(")");
        })
        .await
    }
}
