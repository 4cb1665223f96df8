//! Accounts in PostgreSQL.

use async_trait::async_trait;
use dynabill_app::model::{
    Account, AccountFields, AccountFilter, Cancellation, Page, PageRequest, RecordKey,
};
use dynabill_app::store::{AccountStore, StoreError, StoreResult};
use dynabill_core::domain::{AccountId, TenantId};
use dynabill_sql::{ACCOUNT_WRITABLE, AccountRecord, account_values, date_text, micros};
use jiff::Timestamp;
use jiff::civil::Date;
use sqlx::{Postgres, QueryBuilder};

use crate::items::{PlanScope, cancel_items_of};
use crate::{PgStore, db_error, push_value, violates};

/// The columns of `accounts` in the shapes `AccountRecord` reads.
pub(crate) const ACCOUNT_COLUMNS: &str = "id, ext_id, name, account_type::int8 AS account_type, \
    status::int8 AS status, email, ext_id2, invoice_name, phone, address, city, state, zip, country, \
    account_manager, contact_person, due_date_method::int8 AS due_date_method, \
    due_date_days::int8 AS due_date_days, invoice_grouping::int8 AS invoice_grouping, currency, \
    tax_exempt, tax_exemption_number, credit_balance::text AS credit_balance, created_at, updated_at, \
    deleted_at, version";

fn push_filter(qb: &mut QueryBuilder<Postgres>, tenant: TenantId, filter: &AccountFilter) {
    qb.push(" WHERE tenant_id = ").push_bind(tenant.0);
    if let Some(id) = filter.id {
        qb.push(" AND id = ").push_bind(id);
    }
    if let Some(ext_id) = &filter.ext_id {
        qb.push(" AND ext_id = ").push_bind(ext_id.clone());
    }
    if let Some(ext_id2) = &filter.ext_id2 {
        qb.push(" AND ext_id2 = ").push_bind(ext_id2.clone());
    }
    if let Some(status) = filter.status {
        qb.push(" AND status = ").push_bind(status.code());
    }
    if let Some(since) = filter.updated_since {
        qb.push(" AND updated_at >= ").push_bind(micros(since));
    }
    if !filter.include_deleted {
        qb.push(" AND deleted_at IS NULL");
    }
}

fn write_error(e: sqlx::Error) -> StoreError {
    if violates(&e, "accounts_ext_id") {
        return StoreError::ExtIdTaken;
    }
    db_error(e)
}

#[async_trait]
impl AccountStore for PgStore {
    async fn insert_account(
        &self,
        tenant: TenantId,
        fields: &AccountFields,
        now: Timestamp,
    ) -> StoreResult<Account> {
        let mut qb = QueryBuilder::<Postgres>::new(
            "INSERT INTO accounts (tenant_id, created_at, updated_at",
        );
        for column in ACCOUNT_WRITABLE {
            qb.push(", ").push(column);
        }
        qb.push(") VALUES (").push_bind(tenant.0);
        qb.push(", ").push_bind(micros(now));
        qb.push(", ").push_bind(micros(now));
        for (column, value) in ACCOUNT_WRITABLE.into_iter().zip(account_values(fields)) {
            qb.push(", ");
            push_value(&mut qb, column, value);
        }
        qb.push(") RETURNING ").push(ACCOUNT_COLUMNS);
        let row: AccountRecord = qb
            .build_query_as()
            .fetch_one(&self.pool)
            .await
            .map_err(write_error)?;
        row.try_into()
    }

    async fn update_account(
        &self,
        tenant: TenantId,
        id: AccountId,
        version: i64,
        fields: &AccountFields,
        now: Timestamp,
    ) -> StoreResult<Account> {
        let mut qb = QueryBuilder::<Postgres>::new(
            "UPDATE accounts SET version = version + 1, updated_at = ",
        );
        qb.push_bind(micros(now));
        for (column, value) in ACCOUNT_WRITABLE.into_iter().zip(account_values(fields)) {
            qb.push(", ").push(column).push(" = ");
            push_value(&mut qb, column, value);
        }
        qb.push(" WHERE tenant_id = ").push_bind(tenant.0);
        qb.push(" AND id = ").push_bind(id.0);
        qb.push(" AND version = ").push_bind(version);
        qb.push(" RETURNING ").push(ACCOUNT_COLUMNS);
        let row: Option<AccountRecord> = qb
            .build_query_as()
            .fetch_optional(&self.pool)
            .await
            .map_err(write_error)?;
        row.ok_or(StoreError::Stale)?.try_into()
    }

    async fn find_account(
        &self,
        tenant: TenantId,
        key: &RecordKey,
    ) -> StoreResult<Option<Account>> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT ");
        qb.push(ACCOUNT_COLUMNS)
            .push(" FROM accounts WHERE tenant_id = ")
            .push_bind(tenant.0);
        match key {
            RecordKey::Id(id) => qb.push(" AND id = ").push_bind(*id),
            RecordKey::ExtId(ext_id) => qb.push(" AND ext_id = ").push_bind(ext_id.clone()),
        };
        let row: Option<AccountRecord> = qb
            .build_query_as()
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list_accounts(
        &self,
        tenant: TenantId,
        filter: &AccountFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Account>> {
        let mut tx = self.begin_snapshot().await?;
        let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM accounts");
        push_filter(&mut count, tenant, filter);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;

        let mut qb = QueryBuilder::<Postgres>::new("SELECT ");
        qb.push(ACCOUNT_COLUMNS).push(" FROM accounts");
        push_filter(&mut qb, tenant, filter);
        if let Some(after) = page.after {
            qb.push(" AND id > ").push_bind(after);
        }
        qb.push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(page.size) + 1);
        let rows: Vec<AccountRecord> = qb
            .build_query_as()
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        let accounts = rows
            .into_iter()
            .map(Account::try_from)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(accounts, page.size, total, |a| a.id.0))
    }

    async fn delete_account(
        &self,
        tenant: TenantId,
        id: AccountId,
        version: i64,
        cancel_date: Date,
        now: Timestamp,
    ) -> StoreResult<Account> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // Locking the account row first also makes a concurrent `insert_plan` for it
        // wait, and then see the account deleted (it takes `FOR SHARE` on the row).
        let sql = format!(
            "UPDATE accounts SET deleted_at = $1, updated_at = $1, version = version + 1
             WHERE tenant_id = $2 AND id = $3 AND version = $4 RETURNING {ACCOUNT_COLUMNS}"
        );
        let row: Option<AccountRecord> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(micros(now))
            .bind(tenant.0)
            .bind(id.0)
            .bind(version)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        let Some(row) = row else {
            return Err(StoreError::Stale);
        };
        // A plan that has not started yet is cancelled from its start.
        sqlx::query(
            "UPDATE plans SET cancel_date = GREATEST(start_date, $1::date),
                 updated_at = $2, version = version + 1
             WHERE tenant_id = $3 AND account_id = $4 AND cancel_date IS NULL",
        )
        .bind(date_text(cancel_date))
        .bind(micros(now))
        .bind(tenant.0)
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let cancellation = Cancellation {
            date: cancel_date,
            credit: true,
        };
        cancel_items_of(&mut tx, tenant, PlanScope::Account(id.0), cancellation, now).await?;
        tx.commit().await.map_err(db_error)?;
        row.try_into()
    }
}
