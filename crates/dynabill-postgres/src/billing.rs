//! Bill runs and invoices in PostgreSQL: the billing snapshot, the atomic commit of
//! a batch of accounts' bills, and the invoice lifecycle.
//!
//! Races between servers are settled by the database: the partial unique index
//! `billing_ledger_once` refuses a second bill of the same piece (the later
//! transaction waits for the earlier one and fails once it committed), conditional
//! updates refuse a moved credit balance or a one-time item no longer pending, and
//! invoice numbers come from an `UPDATE` of the tenant's sequence, whose row lock
//! queues concurrent posters until the transaction that took a number ends (so a
//! rolled-back transaction gives its numbers back: no gaps).
//!
//! The statements a bill run sends once per batch (the snapshot's reads, the
//! multi-row writes) are not kept prepared (`persistent(false)`): a kept statement
//! gets a generic plan, chosen while the invoice and ledger tables were small and
//! kept as they grow, whereas planning each one afresh costs a millisecond per
//! batch of hundreds of accounts.

use async_trait::async_trait;
use dynabill_app::model::{AccountBill, BillingAccount, InvoiceLineRecord, OneTimeItem, Plan};
use dynabill_app::store::{BillingStore, StoreError, StoreResult};
use dynabill_core::billing::LedgerEntry;
use dynabill_core::domain::{AccountId, InvoiceId, InvoiceStatus, TenantId};
use dynabill_sql::billing_accounts;
use dynabill_sql::{
    AccountRow, BillRows, INVOICE_WRITABLE, LEDGER_WRITABLE, LINE_WRITABLE, LedgerRow,
    OneTimeItemRow, PlanRow, Value, invoice_values, ledger_values, line_values, micros,
};
use jiff::Timestamp;
use rust_decimal::Decimal;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::bulk::insert_rows;
use crate::{PgBackend, db_error, lost_conflict, push_any_of, violates};
use dynabill_sql::{Query, fetch_items};

/// Unreleased ledger entries with their item's plan; followed by the tenant and
/// accounts filter.
const LEDGER_SELECT: &str = "SELECT l.item_id, l.period_start::text AS period_start, \
    l.period_end::text AS period_end, l.entry, l.base_seq \
    FROM billing_ledger l \
    JOIN recurring_items r ON r.tenant_id = l.tenant_id AND r.id = l.item_id \
    JOIN plans p ON p.tenant_id = r.tenant_id AND p.id = r.plan_id \
    WHERE NOT l.released AND l.tenant_id = ";

fn invoice_number(prefix: &str, seq: i64) -> String {
    format!("{prefix}{seq:06}")
}

/// An error of a conditional write: a bill already committed by another bill run
/// (the ledger's unique index) or a lost lock conflict means the records changed
/// since they were read, so `Stale` (the caller re-reads and retries).
fn write_error(e: sqlx::Error) -> StoreError {
    if lost_conflict(&e) || violates(&e, "billing_ledger_once") {
        return StoreError::Stale;
    }
    db_error(e)
}

/// Takes `count` invoice numbers from the tenant's sequence, in the caller's
/// transaction. The row lock this takes makes other posters of the tenant wait
/// until the transaction ends; it gives the numbers back if it rolls back.
async fn take_numbers(
    conn: &mut PgConnection,
    tenant: TenantId,
    count: i64,
    prefix: &str,
) -> StoreResult<Vec<String>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let last: i64 = sqlx::query_scalar(
        "UPDATE tenants SET invoice_seq = invoice_seq + $1 WHERE id = $2 RETURNING invoice_seq",
    )
    .bind(count)
    .bind(tenant.0)
    .fetch_one(conn)
    .await
    .map_err(write_error)?;
    Ok((last - count + 1..=last)
        .map(|seq| invoice_number(prefix, seq))
        .collect())
}

/// Moves an account's credit balance from `before` to `after`, or `Stale` if it moved.
async fn move_credit(
    conn: &mut PgConnection,
    tenant: TenantId,
    account: AccountId,
    before: Decimal,
    after: Decimal,
) -> StoreResult<()> {
    if before == after {
        return Ok(());
    }
    // Under READ COMMITTED a concurrent mover makes this wait, then re-check the
    // condition against the balance it left. The balance is written normalised, as
    // SQLite stores it, so both read back the same digits.
    let done = sqlx::query(
        "UPDATE accounts SET credit_balance = $1::numeric
         WHERE tenant_id = $2 AND id = $3 AND credit_balance = $4::numeric",
    )
    .bind(after.normalize().to_string())
    .bind(tenant.0)
    .bind(account.0)
    .bind(before.to_string())
    .execute(conn)
    .await
    .map_err(write_error)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Stale);
    }
    Ok(())
}

/// Recomputes the charged-through date of `items` from their unreleased base and
/// remainder entries, bumping their version (so edits read before it retry).
async fn refresh_charged_through(
    conn: &mut PgConnection,
    tenant: TenantId,
    items: &[i64],
) -> StoreResult<()> {
    if items.is_empty() {
        return Ok(());
    }
    // Lock in ID order first, so that transactions refreshing the same items queue
    // instead of deadlocking.
    sqlx::query(
        "SELECT id FROM recurring_items WHERE tenant_id = $1 AND id = ANY($2)
         ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(tenant.0)
    .bind(items)
    .persistent(false)
    .execute(&mut *conn)
    .await
    .map_err(write_error)?;
    sqlx::query(
        "UPDATE recurring_items r SET version = r.version + 1, charged_through =
             (SELECT MAX(l.period_end) FROM billing_ledger l
              WHERE l.tenant_id = r.tenant_id AND l.item_id = r.id AND NOT l.released
                AND l.entry <= 0)
         WHERE r.tenant_id = $1 AND r.id = ANY($2)",
    )
    .bind(tenant.0)
    .bind(items)
    .persistent(false)
    .execute(conn)
    .await
    .map_err(write_error)?;
    Ok(())
}

async fn insert_invoice_lines(
    conn: &mut PgConnection,
    tenant: TenantId,
    lines: &[(i64, &InvoiceLineRecord)],
) -> StoreResult<()> {
    let columns: Vec<&str> = ["tenant_id", "invoice_id"]
        .into_iter()
        .chain(LINE_WRITABLE)
        .collect();
    let rows = lines
        .iter()
        .map(|(invoice, line)| {
            let mut row = vec![Value::Int(tenant.0), Value::Int(*invoice)];
            row.extend(line_values(line));
            row
        })
        .collect();
    insert_rows(conn, "invoice_lines", &columns, rows, false)
        .await
        .map_err(write_error)?;
    Ok(())
}

async fn insert_ledger(
    conn: &mut PgConnection,
    tenant: TenantId,
    entries: &[(Option<i64>, &LedgerEntry)],
) -> StoreResult<()> {
    let columns: Vec<&str> = ["tenant_id"].into_iter().chain(LEDGER_WRITABLE).collect();
    let rows = entries
        .iter()
        .map(|(invoice, entry)| {
            let mut row = vec![Value::Int(tenant.0)];
            row.extend(ledger_values(entry, *invoice));
            row
        })
        .collect();
    // An entry billed already (by another bill run, perhaps still committing: the
    // insert waits for it) is refused by `billing_ledger_once`: `Stale`.
    insert_rows(conn, "billing_ledger", &columns, rows, false)
        .await
        .map_err(write_error)?;
    Ok(())
}

#[async_trait]
impl BillingStore for PgBackend {
    async fn billable_accounts(
        &self,
        tenant: TenantId,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AccountId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM accounts
             WHERE tenant_id = $1 AND id > $2 AND status IN (1, 3) AND deleted_at IS NULL
             ORDER BY id LIMIT $3",
        )
        .bind(tenant.0)
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
        let ids: Vec<i64> = accounts.iter().map(|a| a.0).collect();
        // One snapshot for all the reads below.
        let mut tx = self.begin_snapshot().await?;
        let mut qb = QueryBuilder::<Postgres>::new(format!(
            "SELECT {} FROM accounts WHERE tenant_id = ",
            dynabill_sql::select_list::<PgBackend>(&dynabill_sql::ACCOUNT_COLUMNS)
        ));
        qb.push_bind(tenant.0);
        push_any_of(&mut qb, "id", &ids);
        qb.push(" ORDER BY id");
        let account_rows: Vec<AccountRow> = qb
            .build_query_as()
            .persistent(false)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;

        let mut qb = QueryBuilder::<Postgres>::new(format!(
            "SELECT {} {}",
            dynabill_sql::plan_columns::<PgBackend>(),
            dynabill_sql::PLANS_JOINED
        ));
        qb.push(" WHERE p.tenant_id = ").push_bind(tenant.0);
        push_any_of(&mut qb, "p.account_id", &ids);
        qb.push(" ORDER BY p.id");
        let plan_rows: Vec<PlanRow> = qb
            .build_query_as()
            .persistent(false)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;

        let mut q = Query::<PgBackend>::new(format!(
            "SELECT {} {}",
            dynabill_sql::item_columns::<PgBackend>(),
            dynabill_sql::ITEMS_JOINED
        ));
        q.push(" WHERE r.tenant_id = ").bind(tenant);
        q.push(" AND r.deleted_at IS NULL")
            .and_batch("p.account_id", &ids);
        q.push(" ORDER BY r.id");
        let items = fetch_items::<PgBackend>(&mut tx, tenant, q).await?;

        let mut qb = QueryBuilder::<Postgres>::new(LEDGER_SELECT);
        qb.push_bind(tenant.0);
        push_any_of(&mut qb, "p.account_id", &ids);
        qb.push(" ORDER BY l.id");
        let ledger_rows: Vec<LedgerRow> = qb
            .build_query_as()
            .persistent(false)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;

        let mut qb = QueryBuilder::<Postgres>::new(format!(
            "SELECT {} {}",
            dynabill_sql::one_time_columns::<PgBackend>(),
            dynabill_sql::ONE_TIME_JOINED
        ));
        qb.push(" WHERE o.tenant_id = ").push_bind(tenant.0);
        qb.push(" AND NOT o.invoiced AND o.cancelled_at IS NULL AND o.deleted_at IS NULL");
        push_any_of(&mut qb, "p.account_id", &ids);
        qb.push(" ORDER BY o.id");
        let one_time_rows: Vec<OneTimeItemRow> = qb
            .build_query_as()
            .persistent(false)
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
            .map(LedgerEntry::try_from)
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
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // Bills come in account order, so concurrent committers lock balances in one order.
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

        // IDs are drawn from the invoices' identity sequence first, so that lines,
        // ledger entries and one-time items can name their invoice without relying
        // on the order in which a multi-row insert returns its rows.
        let mut drawn: Vec<i64> = sqlx::query_scalar(
            "SELECT nextval(pg_get_serial_sequence('invoices', 'id')) FROM generate_series(1, $1)",
        )
        .bind(BillRows::invoice_count(bills) as i64)
        .persistent(false)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        drawn.sort_unstable();
        let rows = BillRows::new(bills, drawn);
        insert_invoice_lines(&mut tx, tenant, &rows.lines).await?;

        insert_ledger(&mut tx, tenant, &rows.ledger).await?;

        let (items, invoices_of_items): (Vec<i64>, Vec<i64>) =
            rows.one_time.iter().copied().unzip();
        if !items.is_empty() {
            let done = sqlx::query(
                "UPDATE one_time_items o SET invoiced = TRUE, invoice_id = v.invoice_id,
                     updated_at = $1, version = o.version + 1
                 FROM UNNEST($2::int8[], $3::int8[]) AS v (id, invoice_id)
                 WHERE o.tenant_id = $4 AND o.id = v.id AND NOT o.invoiced
                   AND o.cancelled_at IS NULL",
            )
            .bind(micros(now))
            .bind(&items)
            .bind(&invoices_of_items)
            .bind(tenant.0)
            .persistent(false)
            .execute(&mut *tx)
            .await
            .map_err(write_error)?;
            // Fewer rows than items: one was invoiced or cancelled meanwhile.
            if done.rows_affected() != items.len() as u64 {
                return Err(StoreError::Stale);
            }
        }

        refresh_charged_through(&mut tx, tenant, &rows.items).await?;

        // The invoices are written last, with their numbers, so that the tenant's
        // sequence stays locked only for the end of the transaction (their lines,
        // entries and one-time items, written before, are checked against them at
        // commit: those foreign keys are deferred).
        let posted = rows
            .invoices
            .iter()
            .filter(|(_, _, invoice)| invoice.status == InvoiceStatus::Posted)
            .count();
        let mut numbers = take_numbers(&mut tx, tenant, posted as i64, prefix)
            .await?
            .into_iter();
        let columns: Vec<&str> = ["id", "tenant_id", "account_id", "invoice_number"]
            .into_iter()
            .chain(INVOICE_WRITABLE)
            .collect();
        let invoices = rows
            .invoices
            .iter()
            .map(|(account, id, invoice)| {
                let number = if invoice.status == InvoiceStatus::Posted {
                    numbers.next()
                } else {
                    None
                };
                let mut row = vec![
                    Value::Int(*id),
                    Value::Int(tenant.0),
                    Value::Int(account.0),
                    Value::OptText(number),
                ];
                row.extend(invoice_values(invoice, now));
                row
            })
            .collect();
        insert_rows(&mut tx, "invoices", &columns, invoices, true)
            .await
            .map_err(write_error)?;
        tx.commit().await.map_err(write_error)?;
        self.ledger_growth
            .add(&self.pool, rows.ledger.len() as u64)
            .await;
        Ok(rows.invoice_ids())
    }
}
