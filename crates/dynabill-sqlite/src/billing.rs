//! Bill runs and invoices in SQLite: the billing snapshot, the atomic commit of a
//! batch of accounts' bills, and the invoice lifecycle.

use async_trait::async_trait;
use dynabill_app::model::{AccountBill, BillingAccount, OneTimeItem, Plan};
use dynabill_app::store::{BillingStore, StoreError, StoreResult};
use dynabill_core::domain::{AccountId, InvoiceId, InvoiceStatus, TenantId};
use dynabill_sql::Backend;
use dynabill_sql::billing_accounts;
use dynabill_sql::{
    AccountRow, BillRows, INVOICE_WRITABLE, LEDGER_WRITABLE, LINE_WRITABLE, LedgerRow,
    OneTimeItemRow, PlanRow, invoice_values, ledger_values, line_values, micros,
};
use jiff::Timestamp;
use rust_decimal::Decimal;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::{SqliteBackend, db_error, is_unique_violation, push_columns};
use dynabill_sql::{Query, fetch_items};

/// The stored form of a credit balance: normalised, so that text equality is
/// numeric equality in the conditional updates below.
fn balance_text(balance: Decimal) -> String {
    balance.normalize().to_string()
}

/// `select` (which reads `FROM <from>`) rewritten to start from the plans and join
/// `joined` to them.
fn from_plans(select: &str, from: &str, joined: &str) -> String {
    let (columns, rest) = select
        .split_once(from)
        .expect("the select reads its FROM clause");
    format!("{columns}FROM plans p CROSS JOIN {joined}{rest}")
}

/// Rows of `columns` bound values that fit one statement (SQLite binds at most
/// 32,766 values).
fn rows_per_insert(columns: usize) -> usize {
    30_000 / columns
}

fn invoice_number(prefix: &str, seq: i64) -> String {
    format!("{prefix}{seq:06}")
}

fn push_ids(qb: &mut QueryBuilder<Sqlite>, ids: impl IntoIterator<Item = i64>) {
    qb.push("(");
    let mut list = qb.separated(", ");
    for id in ids {
        list.push_bind(id);
    }
    list.push_unseparated(")");
}

/// Takes `count` invoice numbers from the tenant's sequence (in the caller's transaction).
async fn take_numbers(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    count: i64,
    prefix: &str,
) -> StoreResult<Vec<String>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let last: i64 = sqlx::query_scalar(
        "UPDATE tenants SET invoice_seq = invoice_seq + ? WHERE id = ? RETURNING invoice_seq",
    )
    .bind(count)
    .bind(tenant.0)
    .fetch_one(conn)
    .await
    .map_err(db_error)?;
    Ok((last - count + 1..=last)
        .map(|seq| invoice_number(prefix, seq))
        .collect())
}

/// Moves an account's credit balance from `before` to `after`, or `Stale` if it moved.
async fn move_credit(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    account: AccountId,
    before: Decimal,
    after: Decimal,
) -> StoreResult<()> {
    if before == after {
        return Ok(());
    }
    let done = sqlx::query("UPDATE accounts SET credit_balance = ? WHERE tenant_id = ? AND id = ? AND credit_balance = ?")
        .bind(balance_text(after))
        .bind(tenant.0)
        .bind(account.0)
        .bind(balance_text(before))
        .execute(conn)
        .await
        .map_err(db_error)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Stale);
    }
    Ok(())
}

/// Recomputes the charged-through date of items from their unreleased base and
/// remainder entries, bumping their version (so edits read before it retry).
async fn refresh_charged_through(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    items: &[i64],
) -> StoreResult<()> {
    if items.is_empty() {
        return Ok(());
    }
    let mut qb = QueryBuilder::<Sqlite>::new(
        "UPDATE recurring_items SET version = version + 1, charged_through = \
         (SELECT MAX(l.period_end) FROM billing_ledger l WHERE l.item_id = recurring_items.id \
          AND l.released = 0 AND l.entry <= 0) WHERE +tenant_id = ",
    );
    // `+tenant_id`: look the items up by ID, never by scanning the tenant's items.
    qb.push_bind(tenant.0).push(" AND id IN ");
    push_ids(&mut qb, items.iter().copied());
    qb.build().execute(conn).await.map_err(db_error)?;
    Ok(())
}

#[async_trait]
impl BillingStore for SqliteBackend {
    async fn billable_accounts(
        &self,
        tenant: TenantId,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AccountId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM accounts WHERE tenant_id = ? AND id > ? AND status IN (1, 3) AND deleted_at IS NULL
             ORDER BY id LIMIT ?",
        )
        .bind(tenant.0)
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(db_error)?;
        Ok(ids.into_iter().map(AccountId).collect())
    }

    async fn billing_snapshot(
        &self,
        tenant: TenantId,
        accounts: &[AccountId],
    ) -> StoreResult<Vec<BillingAccount>> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let ids = || accounts.iter().map(|a| a.0);
        let mut tx = self.reader.begin().await.map_err(db_error)?;

        let mut qb = QueryBuilder::<Sqlite>::new("SELECT ");
        qb.push(dynabill_sql::select_list::<SqliteBackend>(
            &dynabill_sql::ACCOUNT_COLUMNS,
        ))
        .push(" FROM accounts WHERE tenant_id = ")
        .push_bind(tenant.0)
        .push(" AND id IN ");
        push_ids(&mut qb, ids());
        qb.push(" ORDER BY id");
        let account_rows: Vec<AccountRow> = qb
            .build_query_as()
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;

        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {} {}",
            dynabill_sql::plan_columns::<SqliteBackend>(),
            dynabill_sql::PLANS_JOINED
        ));
        qb.push(" WHERE p.tenant_id = ")
            .push_bind(tenant.0)
            .push(" AND p.account_id IN ");
        push_ids(&mut qb, ids());
        let plan_rows: Vec<PlanRow> = qb
            .build_query_as()
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;

        // Every query here is driven from the batch's plans (CROSS JOIN fixes the
        // join order in SQLite): its cost follows the batch, not the whole book.
        let mut q = Query::<SqliteBackend>::new(from_plans(
            &format!(
                "SELECT {} {}",
                dynabill_sql::item_columns::<SqliteBackend>(),
                dynabill_sql::ITEMS_JOINED
            ),
            dynabill_sql::ITEMS_JOINED,
            "recurring_items r ON r.plan_id = p.id",
        ));
        q.push(" WHERE p.tenant_id = ").bind(tenant);
        q.push(" AND r.tenant_id = ").bind(tenant);
        q.push(" AND r.deleted_at IS NULL").and_in(
            "p.account_id",
            &accounts.iter().map(|a| a.0).collect::<Vec<_>>(),
        );
        q.push(" ORDER BY r.id");
        let items = fetch_items::<SqliteBackend>(&mut tx, tenant, q).await?;

        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT l.item_id, l.period_start, l.period_end, l.entry, l.base_seq FROM plans p \
             CROSS JOIN recurring_items r ON r.plan_id = p.id CROSS JOIN billing_ledger l ON l.item_id = r.id \
             WHERE p.tenant_id = ",
        );
        qb.push_bind(tenant.0)
            .push(" AND r.tenant_id = ")
            .push_bind(tenant.0);
        qb.push(" AND l.tenant_id = ").push_bind(tenant.0);
        qb.push(" AND l.released = 0 AND p.account_id IN ");
        push_ids(&mut qb, ids());
        let ledger_rows: Vec<LedgerRow> = qb
            .build_query_as()
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;

        let mut qb = QueryBuilder::<Sqlite>::new(from_plans(
            &format!(
                "SELECT {} {}",
                dynabill_sql::one_time_columns::<SqliteBackend>(),
                dynabill_sql::ONE_TIME_JOINED
            ),
            dynabill_sql::ONE_TIME_JOINED,
            "one_time_items o ON o.plan_id = p.id",
        ));
        qb.push(" WHERE p.tenant_id = ").push_bind(tenant.0);
        qb.push(" AND o.tenant_id = ").push_bind(tenant.0);
        qb.push(" AND o.invoiced = 0 AND o.cancelled_at IS NULL AND o.deleted_at IS NULL AND p.account_id IN ");
        push_ids(&mut qb, ids());
        qb.push(" ORDER BY o.id");
        let one_time_rows: Vec<OneTimeItemRow> = qb
            .build_query_as()
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;

        let plans = plan_rows
            .into_iter()
            .map(Plan::try_from)
            .collect::<StoreResult<Vec<_>>>()?;
        let ledger = ledger_rows
            .into_iter()
            .map(TryInto::try_into)
            .collect::<StoreResult<Vec<_>>>()?;
        let one_time = one_time_rows
            .into_iter()
            .map(OneTimeItem::try_from)
            .collect::<StoreResult<Vec<_>>>()?;
        billing_accounts(account_rows, plans, items, ledger, one_time)
    }

    async fn commit_bills(
        &self,
        tenant: TenantId,
        bills: &[AccountBill],
        prefix: &str,
        now: Timestamp,
    ) -> StoreResult<Vec<Vec<InvoiceId>>> {
        // Returning early drops (and so rolls back) the transaction: all or nothing.
        let mut tx = self.begin_write().await?;
        for bill in bills {
            move_credit(
                &mut tx,
                tenant,
                bill.account,
                bill.credit_balance_before,
                bill.credit_balance_after,
            )
            .await?;
        }
        // IDs are given here, under the write lock, so that lines, ledger entries and
        // one-time items can name their invoice without reading IDs back.
        let first: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM invoices")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        let rows = BillRows::new(bills, first..);
        let posted = rows
            .invoices
            .iter()
            .filter(|(_, _, i)| i.status == InvoiceStatus::Posted)
            .count() as i64;
        let mut numbers = take_numbers(&mut tx, tenant, posted, prefix)
            .await?
            .into_iter();
        let numbered: Vec<_> = rows
            .invoices
            .iter()
            .map(|(account, id, invoice)| {
                let number = if invoice.status == InvoiceStatus::Posted {
                    numbers.next()
                } else {
                    None
                };
                (account, id, number, invoice)
            })
            .collect();
        for chunk in numbered.chunks(rows_per_insert(4 + INVOICE_WRITABLE.len())) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO invoices (id, tenant_id, account_id, invoice_number",
            );
            push_columns(&mut qb, &INVOICE_WRITABLE);
            qb.push(") ");
            qb.push_values(chunk, |mut row, (account, id, number, invoice)| {
                row.push_bind(*id)
                    .push_bind(tenant.0)
                    .push_bind(account.0)
                    .push_bind(number.clone());
                for value in invoice_values(invoice, now) {
                    crate::push_separated_value(&mut row, value);
                }
            });
            qb.build().execute(&mut *tx).await.map_err(db_error)?;
        }

        for chunk in rows.lines.chunks(rows_per_insert(2 + LINE_WRITABLE.len())) {
            let mut qb =
                QueryBuilder::<Sqlite>::new("INSERT INTO invoice_lines (tenant_id, invoice_id");
            push_columns(&mut qb, &LINE_WRITABLE);
            qb.push(") ");
            qb.push_values(chunk, |mut row, (invoice, line)| {
                row.push_bind(tenant.0).push_bind(*invoice);
                for value in line_values(line) {
                    crate::push_separated_value(&mut row, value);
                }
            });
            qb.build().execute(&mut *tx).await.map_err(db_error)?;
        }

        for chunk in rows
            .ledger
            .chunks(rows_per_insert(1 + LEDGER_WRITABLE.len()))
        {
            let mut qb = QueryBuilder::<Sqlite>::new("INSERT INTO billing_ledger (tenant_id");
            push_columns(&mut qb, &LEDGER_WRITABLE);
            qb.push(") ");
            qb.push_values(chunk, |mut row, (invoice, entry)| {
                row.push_bind(tenant.0);
                for value in ledger_values(entry, *invoice) {
                    crate::push_separated_value(&mut row, value);
                }
            });
            match qb.build().execute(&mut *tx).await {
                Ok(_) => {}
                // Another bill run billed this already: the database refuses, we retry from a fresh read.
                Err(e) if is_unique_violation(&e) => return Err(StoreError::Stale),
                Err(e) => return Err(db_error(e)),
            }
        }

        for chunk in rows.one_time.chunks(rows_per_insert(2)) {
            let mut qb = QueryBuilder::<Sqlite>::new("WITH v (id, invoice_id) AS (");
            qb.push_values(chunk, |mut row, (item, invoice)| {
                row.push_bind(*item).push_bind(*invoice);
            });
            qb.push(
                ") UPDATE one_time_items SET invoiced = 1, invoice_id = v.invoice_id, \
                 version = version + 1, updated_at = ",
            )
            .push_bind(micros(now))
            .push(" FROM v WHERE one_time_items.id = v.id AND one_time_items.tenant_id = ")
            .push_bind(tenant.0)
            .push(" AND one_time_items.invoiced = 0 AND one_time_items.cancelled_at IS NULL");
            let done = qb.build().execute(&mut *tx).await.map_err(db_error)?;
            // Fewer rows than items: one was invoiced or cancelled meanwhile.
            if done.rows_affected() != chunk.len() as u64 {
                return Err(StoreError::Stale);
            }
        }

        for chunk in rows.items.chunks(rows_per_insert(1)) {
            refresh_charged_through(&mut tx, tenant, chunk).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(rows.invoice_ids())
    }
}
