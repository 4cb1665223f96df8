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
use dynabill_app::model::{
    AccountBill, BillingAccount, Invoice, InvoiceFilter, InvoiceLineRecord, InvoiceUpdate,
    OneTimeItem, Page, PageRequest, Plan, PostInvoice, TaxRateRecord,
};
use dynabill_app::store::{BillingStore, InvoiceStore, StoreError, StoreResult, TaxRateStore};
use dynabill_core::billing::LedgerEntry;
use dynabill_core::domain::{AccountId, InvoiceId, InvoiceStatus, TenantId};
use dynabill_core::tax::TaxRule;
use dynabill_sql::billing_accounts;
use dynabill_sql::{
    AccountRow, BillRows, INVOICE_WRITABLE, InvoiceLineRow, InvoiceRow, LEDGER_WRITABLE,
    LINE_WRITABLE, LedgerRow, OneTimeItemRow, PlanRow, TaxRateRow, Value, attach_lines, date_text,
    invoice_values, ledger_values, line_values, micros, taxes_text,
};
use jiff::Timestamp;
use rust_decimal::Decimal;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::bulk::insert_rows;
use crate::{PgBackend, db_error, lost_conflict, push_any_of, violates};
use dynabill_sql::{Query, fetch_items};

/// Invoices `i` joined with their accounts `a`, in the shapes `InvoiceRow` reads.
const INVOICE_SELECT: &str = "SELECT i.id, i.account_id, a.ext_id AS account_ext_id, i.plan_id, \
    i.invoice_number, i.status::int8 AS status, i.invoice_date::text AS invoice_date, \
    i.due_date::text AS due_date, i.currency, i.subtotal::text AS subtotal, \
    i.tax_total::text AS tax_total, i.total::text AS total, i.credit_applied::text AS credit_applied, \
    i.credit_added::text AS credit_added, i.amount_due::text AS amount_due, i.po_number, i.memo, \
    i.paid_date::text AS paid_date, i.payment_reference, i.cancel_reason, i.tax_error, \
    i.tax_attempts::int8 AS tax_attempts, i.next_tax_attempt, i.created_at, i.updated_at, \
    i.version \
    FROM invoices i JOIN accounts a ON a.tenant_id = i.tenant_id AND a.id = i.account_id";

const INVOICE_COUNT: &str = "SELECT COUNT(*) \
    FROM invoices i JOIN accounts a ON a.tenant_id = i.tenant_id AND a.id = i.account_id";

/// The lines of the invoices `$2` (an array) of tenant `$1`, invoice by invoice, in order.
const LINE_SELECT: &str = "SELECT id, invoice_id, line_type::int8 AS line_type, \
    recurring_item_id, one_time_item_id, item_ext_id, product_code, description, \
    quantity::text AS quantity, unit_price::text AS unit_price, \
    discount_percent::text AS discount_percent, fraction::text AS fraction, amount::text AS amount, \
    service_start::text AS service_start, service_end::text AS service_end, \
    period_start::text AS period_start, period_end::text AS period_end, tax_code, \
    tax_amount::text AS tax_amount, taxes \
    FROM invoice_lines WHERE tenant_id = $1 AND invoice_id = ANY($2) ORDER BY invoice_id, id";

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

/// Sorted, without duplicates.
fn distinct(mut ids: Vec<i64>) -> Vec<i64> {
    ids.sort_unstable();
    ids.dedup();
    ids
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

async fn lines_of(
    conn: &mut PgConnection,
    tenant: TenantId,
    invoices: &[i64],
) -> StoreResult<Vec<InvoiceLineRow>> {
    if invoices.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(LINE_SELECT)
        .bind(tenant.0)
        .bind(invoices)
        .fetch_all(conn)
        .await
        .map_err(db_error)
}

async fn invoices_where(
    conn: &mut PgConnection,
    tenant: TenantId,
    qb: &mut QueryBuilder<Postgres>,
    with_lines: bool,
) -> StoreResult<Vec<Invoice>> {
    let records: Vec<InvoiceRow> = qb
        .build_query_as()
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
    let lines = if with_lines {
        let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
        lines_of(conn, tenant, &ids).await?
    } else {
        Vec::new()
    };
    attach_lines(records, lines)
}

async fn invoice_by_id(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: i64,
    with_lines: bool,
) -> StoreResult<Option<Invoice>> {
    let mut qb = QueryBuilder::<Postgres>::new(INVOICE_SELECT);
    qb.push(" WHERE i.tenant_id = ").push_bind(tenant.0);
    qb.push(" AND i.id = ").push_bind(id);
    Ok(invoices_where(conn, tenant, &mut qb, with_lines)
        .await?
        .pop())
}

fn push_invoice_filter(qb: &mut QueryBuilder<Postgres>, tenant: TenantId, filter: &InvoiceFilter) {
    qb.push(" WHERE i.tenant_id = ").push_bind(tenant.0);
    if let Some(id) = filter.id {
        qb.push(" AND i.id = ").push_bind(id);
    }
    if let Some(account) = filter.account_id {
        qb.push(" AND i.account_id = ").push_bind(account);
    }
    if let Some(ext_id) = &filter.account_ext_id {
        qb.push(" AND a.ext_id = ").push_bind(ext_id.clone());
    }
    if let Some(plan) = filter.plan_id {
        qb.push(" AND i.plan_id = ").push_bind(plan);
    }
    if !filter.statuses.is_empty() {
        let codes: Vec<i64> = filter.statuses.iter().map(|s| s.code()).collect();
        qb.push(" AND i.status = ANY(").push_bind(codes).push(")");
    }
    if let Some(from) = filter.date_from {
        qb.push(" AND i.invoice_date >= ")
            .push_bind(date_text(from))
            .push("::date");
    }
    if let Some(to) = filter.date_to {
        qb.push(" AND i.invoice_date <= ")
            .push_bind(date_text(to))
            .push("::date");
    }
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

#[async_trait]
impl InvoiceStore for PgBackend {
    async fn find_invoice(
        &self,
        tenant: TenantId,
        id: InvoiceId,
        with_lines: bool,
    ) -> StoreResult<Option<Invoice>> {
        let mut tx = self.begin_snapshot().await?;
        let invoice = invoice_by_id(&mut tx, tenant, id.0, with_lines).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(invoice)
    }

    async fn list_invoices(
        &self,
        tenant: TenantId,
        filter: &InvoiceFilter,
        page: PageRequest,
        with_lines: bool,
    ) -> StoreResult<Page<Invoice>> {
        let mut tx = self.begin_snapshot().await?;
        let mut count = QueryBuilder::<Postgres>::new(INVOICE_COUNT);
        push_invoice_filter(&mut count, tenant, filter);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        let mut qb = QueryBuilder::<Postgres>::new(INVOICE_SELECT);
        push_invoice_filter(&mut qb, tenant, filter);
        if let Some(after) = page.after {
            qb.push(" AND i.id > ").push_bind(after);
        }
        qb.push(" ORDER BY i.id LIMIT ")
            .push_bind(i64::from(page.size) + 1);
        let invoices = invoices_where(&mut tx, tenant, &mut qb, with_lines).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(Page::from_rows(invoices, page.size, total, |i| i.id.0))
    }

    async fn update_invoice(
        &self,
        tenant: TenantId,
        id: InvoiceId,
        version: i64,
        update: &InvoiceUpdate,
        prefix: &str,
        now: Timestamp,
    ) -> StoreResult<Invoice> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let mut qb = QueryBuilder::<Postgres>::new(
            "UPDATE invoices SET version = version + 1, updated_at = ",
        );
        qb.push_bind(micros(now));
        if let Some(status) = update.status {
            qb.push(", status = ").push_bind(status.code());
        }
        if let Some(due) = update.due_date {
            qb.push(", due_date = ")
                .push_bind(date_text(due))
                .push("::date");
        }
        if let Some(po) = &update.po_number {
            qb.push(", po_number = ").push_bind(po.clone());
        }
        if let Some(memo) = &update.memo {
            qb.push(", memo = ").push_bind(memo.clone());
        }
        if let Some(paid) = update.paid_date {
            qb.push(", paid_date = ")
                .push_bind(date_text(paid))
                .push("::date");
        }
        if let Some(reference) = &update.payment_reference {
            qb.push(", payment_reference = ")
                .push_bind(reference.clone());
        }
        qb.push(" WHERE tenant_id = ").push_bind(tenant.0);
        qb.push(" AND id = ").push_bind(id.0);
        qb.push(" AND version = ").push_bind(version);
        let done = qb.build().execute(&mut *tx).await.map_err(write_error)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Stale);
        }
        if update.status == Some(InvoiceStatus::Posted) {
            // Only once the update matched: a stale update never waits for the sequence.
            let number = take_numbers(&mut tx, tenant, 1, prefix).await?.pop();
            sqlx::query("UPDATE invoices SET invoice_number = $1 WHERE tenant_id = $2 AND id = $3")
                .bind(number)
                .bind(tenant.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(write_error)?;
        }
        let invoice = invoice_by_id(&mut tx, tenant, id.0, true)
            .await?
            .ok_or(StoreError::Stale)?;
        tx.commit().await.map_err(write_error)?;
        Ok(invoice)
    }

    async fn cancel_invoice(
        &self,
        tenant: TenantId,
        id: InvoiceId,
        version: i64,
        reason: Option<&str>,
        rebill: bool,
        balance: (Decimal, Decimal),
        now: Timestamp,
    ) -> StoreResult<Invoice> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let account: Option<i64> = sqlx::query_scalar(
            "UPDATE invoices SET status = 5, cancel_reason = $1, rebill = $2, updated_at = $3,
                 version = version + 1
             WHERE tenant_id = $4 AND id = $5 AND version = $6 AND status IN (1, 2, 3)
             RETURNING account_id",
        )
        .bind(reason)
        .bind(rebill)
        .bind(micros(now))
        .bind(tenant.0)
        .bind(id.0)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await
        .map_err(write_error)?;
        let Some(account) = account else {
            return Err(StoreError::Stale);
        };
        move_credit(&mut tx, tenant, AccountId(account), balance.0, balance.1).await?;
        if rebill {
            let items: Vec<i64> = sqlx::query_scalar(
                "UPDATE billing_ledger SET released = TRUE
                 WHERE tenant_id = $1 AND invoice_id = $2 AND NOT released RETURNING item_id",
            )
            .bind(tenant.0)
            .bind(id.0)
            .fetch_all(&mut *tx)
            .await
            .map_err(write_error)?;
            sqlx::query(
                "UPDATE one_time_items SET invoiced = FALSE, invoice_id = NULL, updated_at = $1,
                     version = version + 1
                 WHERE tenant_id = $2 AND invoice_id = $3",
            )
            .bind(micros(now))
            .bind(tenant.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(write_error)?;
            refresh_charged_through(&mut tx, tenant, &distinct(items)).await?;
        }
        let invoice = invoice_by_id(&mut tx, tenant, id.0, true)
            .await?
            .ok_or(StoreError::Stale)?;
        tx.commit().await.map_err(write_error)?;
        Ok(invoice)
    }

    async fn post_invoice(
        &self,
        tenant: TenantId,
        id: InvoiceId,
        version: i64,
        post: &PostInvoice,
        prefix: &str,
        now: Timestamp,
    ) -> StoreResult<Invoice> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // The row lock this takes queues other writers of the invoice; each re-checks
        // the version and status once it gets the row, so only the first one matches.
        let account: Option<i64> = sqlx::query_scalar(
            "UPDATE invoices SET status = $1, tax_total = $2::numeric, total = $3::numeric,
                 credit_applied = $4::numeric, credit_added = $5::numeric,
                 amount_due = $6::numeric, tax_error = NULL, next_tax_attempt = NULL,
                 updated_at = $7, version = version + 1
             WHERE tenant_id = $8 AND id = $9 AND version = $10 AND status IN (1, 2)
             RETURNING account_id",
        )
        .bind(post.status.code())
        .bind(post.tax_total.to_string())
        .bind(post.total.to_string())
        .bind(post.credit_applied.to_string())
        .bind(post.credit_added.to_string())
        .bind(post.amount_due.to_string())
        .bind(micros(now))
        .bind(tenant.0)
        .bind(id.0)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await
        .map_err(write_error)?;
        let Some(account) = account else {
            return Err(StoreError::Stale);
        };
        // Every line's taxes are replaced: the lines named get theirs, the rest none.
        sqlx::query(
            "UPDATE invoice_lines SET taxes = '[]', tax_amount = 0
             WHERE tenant_id = $1 AND invoice_id = $2",
        )
        .bind(tenant.0)
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(write_error)?;
        for line in &post.line_taxes {
            let tax_amount: Decimal = line.taxes.iter().map(|t| t.amount).sum();
            sqlx::query(
                "UPDATE invoice_lines SET taxes = $1, tax_amount = $2::numeric,
                     tax_code = COALESCE($3, tax_code)
                 WHERE tenant_id = $4 AND invoice_id = $5 AND id = $6",
            )
            .bind(taxes_text(&line.taxes))
            .bind(tax_amount.to_string())
            .bind(line.tax_code.as_deref())
            .bind(tenant.0)
            .bind(id.0)
            .bind(line.line_id)
            .execute(&mut *tx)
            .await
            .map_err(write_error)?;
        }
        move_credit(
            &mut tx,
            tenant,
            AccountId(account),
            post.balance.0,
            post.balance.1,
        )
        .await?;
        if post.status == InvoiceStatus::Posted {
            // Last, so that the tenant's sequence stays locked only for the end of the
            // transaction; a refused posting never takes a number.
            let number = take_numbers(&mut tx, tenant, 1, prefix).await?.pop();
            sqlx::query("UPDATE invoices SET invoice_number = $1 WHERE tenant_id = $2 AND id = $3")
                .bind(number)
                .bind(tenant.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(write_error)?;
        }
        let invoice = invoice_by_id(&mut tx, tenant, id.0, true)
            .await?
            .ok_or(StoreError::Stale)?;
        tx.commit().await.map_err(write_error)?;
        Ok(invoice)
    }

    async fn record_tax_error(
        &self,
        tenant: TenantId,
        id: InvoiceId,
        error: &str,
        next_attempt: Timestamp,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE invoices SET tax_error = $1, tax_attempts = tax_attempts + 1,
                 next_tax_attempt = $2, updated_at = $3
             WHERE tenant_id = $4 AND id = $5 AND status = 2",
        )
        .bind(error)
        .bind(micros(next_attempt))
        .bind(micros(now))
        .bind(tenant.0)
        .bind(id.0)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn account_has_invoices(
        &self,
        tenant: TenantId,
        account: AccountId,
    ) -> StoreResult<bool> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM invoices
                            WHERE tenant_id = $1 AND account_id = $2 AND status <> 5)",
        )
        .bind(tenant.0)
        .bind(account.0)
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)
    }

    async fn account_has_unpaid_invoices(
        &self,
        tenant: TenantId,
        account: AccountId,
    ) -> StoreResult<bool> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM invoices
                            WHERE tenant_id = $1 AND account_id = $2 AND status IN (2, 3))",
        )
        .bind(tenant.0)
        .bind(account.0)
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)
    }
}

#[async_trait]
impl TaxRateStore for PgBackend {
    async fn add_tax_rate(&self, tenant: TenantId, rule: &TaxRule) -> StoreResult<TaxRateRecord> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tax_rates (tenant_id, name, country, state, tax_code, rate)
             VALUES ($1, $2, $3, $4, $5, $6::numeric) RETURNING id",
        )
        .bind(tenant.0)
        .bind(&rule.name)
        .bind(&rule.country)
        .bind(&rule.state)
        .bind(&rule.tax_code)
        .bind(rule.rate.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(TaxRateRecord {
            id,
            rule: rule.clone(),
        })
    }

    async fn list_tax_rates(&self, tenant: TenantId) -> StoreResult<Vec<TaxRateRecord>> {
        let rows: Vec<TaxRateRow> = sqlx::query_as(
            "SELECT id, name, country, state, tax_code, rate::text AS rate
             FROM tax_rates WHERE tenant_id = $1 ORDER BY id",
        )
        .bind(tenant.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn remove_tax_rate(&self, tenant: TenantId, id: i64) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM tax_rates WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }
}
