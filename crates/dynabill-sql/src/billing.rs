//! Bill runs: the ledger, the billing snapshot of a batch of accounts, and the
//! atomic commit of a batch of accounts' bills.
//!
//! Races between bill runs (and servers) are settled by the database: the partial
//! unique index `billing_ledger_once` refuses a second bill of the same piece (the
//! later transaction waits for the earlier one and fails once it committed),
//! conditional updates refuse a moved credit balance or a one-time item no longer
//! pending, and invoice numbers come from an `UPDATE` of the tenant's sequence,
//! whose row lock queues concurrent posters until the transaction that took a
//! number ends (so a rolled-back transaction gives its numbers back: no gaps).

use anyhow::anyhow;
use async_trait::async_trait;
use dynabill_app::model::{
    Account, AccountBill, BillingAccount, CreditMove, InvoiceLineRecord, NewInvoice, OneTimeItem,
    Plan, RecurringItem,
};
use dynabill_app::store::{BillingStore, StoreError, StoreResult};
use dynabill_core::billing::{EntryKey, LedgerEntry};
use dynabill_core::domain::{AccountId, InvoiceId, InvoiceStatus, RecurringItemId, TenantId};
use jiff::Timestamp;

use crate::accounts::{AccountRow, account_select};
use crate::backend::{Backend, Conn, conflicted, failed};
use crate::invoices::{
    INVOICE_WRITABLE, LINE_WRITABLE, invoice_values, line_values, move_credit, take_numbers,
};
use crate::items::{fetch_items, item_columns};
use crate::one_time::{OneTimeItemRow, one_time_columns};
use crate::paging::convert;
use crate::plans::{PlanRow, plan_columns};
use crate::query::{Query, kept, select_list};
use crate::store::SqlStore;
use crate::values::{Value, date_text, parse_date};

/// A row of `billing_ledger`: what an earlier bill run billed or settled for an
/// item's piece.
#[derive(Debug, sqlx::FromRow)]
pub struct LedgerRow {
    pub item_id: i64,
    pub period_start: String,
    pub period_end: String,
    pub entry: i64,
    pub base_seq: i64,
}

impl TryFrom<LedgerRow> for LedgerEntry {
    type Error = StoreError;

    fn try_from(r: LedgerRow) -> Result<Self, StoreError> {
        Ok(LedgerEntry {
            item: RecurringItemId(r.item_id),
            period_start: parse_date(&r.period_start)?,
            period_end: parse_date(&r.period_end)?,
            entry: EntryKey::from_code(r.entry)
                .ok_or_else(|| StoreError::Other(anyhow!("bad ledger entry {}", r.entry)))?,
            base_seq: r.base_seq,
        })
    }
}

/// The columns of `billing_ledger` after `tenant_id`, in the order [`ledger_values`] gives them.
pub const LEDGER_WRITABLE: [&str; 6] = [
    "item_id",
    "period_start",
    "entry",
    "period_end",
    "base_seq",
    "invoice_id",
];

/// The billing snapshot of a batch, from its rows: each plan, item, ledger entry
/// and one-time item goes to its account (in one pass each, keeping the rows'
/// order), and accounts keep theirs.
fn billing_accounts(
    account_rows: Vec<AccountRow>,
    plans: Vec<Plan>,
    items: Vec<RecurringItem>,
    ledger: Vec<LedgerEntry>,
    one_time: Vec<OneTimeItem>,
) -> Result<Vec<BillingAccount>, StoreError> {
    use std::collections::HashMap;
    let mut out = Vec::with_capacity(account_rows.len());
    let mut index = HashMap::with_capacity(account_rows.len());
    for row in account_rows {
        let account = Account::try_from(row)?;
        index.insert(account.id, out.len());
        out.push(BillingAccount {
            account,
            plans: Vec::new(),
            items: Vec::new(),
            ledger: Vec::new(),
            one_time: Vec::new(),
        });
    }
    for plan in plans {
        if let Some(&i) = index.get(&plan.account_id) {
            out[i].plans.push(plan);
        }
    }
    let mut item_account = HashMap::with_capacity(items.len());
    for item in items {
        if let Some(&i) = index.get(&item.account_id) {
            item_account.insert(item.id, i);
            out[i].items.push(item);
        }
    }
    for entry in ledger {
        if let Some(&i) = item_account.get(&entry.item) {
            out[i].ledger.push(entry);
        }
    }
    for item in one_time {
        if let Some(&i) = index.get(&item.account_id) {
            out[i].one_time.push(item);
        }
    }
    Ok(out)
}

/// The rows a batch of bills writes, once every invoice has its ID.
pub struct BillRows<'a> {
    /// The invoices' IDs, per bill, in the order of its `invoices`.
    pub ids: Vec<Vec<i64>>,
    /// Every invoice with its account and ID, bill by bill.
    pub invoices: Vec<(AccountId, i64, &'a NewInvoice)>,
    /// Every line with its invoice's ID, invoice by invoice.
    pub lines: Vec<(i64, &'a InvoiceLineRecord)>,
    /// Every ledger entry with its invoice's ID (`None` for a settlement without a line).
    pub ledger: Vec<(Option<i64>, &'a LedgerEntry)>,
    /// The one-time items now invoiced, with their invoice's ID.
    pub one_time: Vec<(i64, i64)>,
    /// The recurring items with new ledger entries, sorted, without duplicates.
    pub items: Vec<i64>,
}

impl<'a> BillRows<'a> {
    /// How many invoices `bills` hold.
    pub fn invoice_count(bills: &[AccountBill]) -> usize {
        bills.iter().map(|b| b.invoices.len()).sum()
    }

    /// The rows of `bills`, the invoices numbered from `ids` in bill order (it must
    /// yield [`Self::invoice_count`] IDs).
    pub fn new(bills: &'a [AccountBill], ids: impl IntoIterator<Item = i64>) -> Self {
        let mut ids = ids.into_iter();
        let ids: Vec<Vec<i64>> = bills
            .iter()
            .map(|bill| bill.invoices.iter().map_while(|_| ids.next()).collect())
            .collect();
        let mut rows = BillRows {
            invoices: Vec::new(),
            lines: Vec::new(),
            ledger: Vec::new(),
            one_time: Vec::new(),
            items: Vec::new(),
            ids: Vec::new(),
        };
        for (bill, ids) in bills.iter().zip(&ids) {
            for (id, invoice) in ids.iter().zip(&bill.invoices) {
                rows.invoices.push((bill.account, *id, invoice));
                rows.lines
                    .extend(invoice.lines.iter().map(|line| (*id, line)));
            }
            for (invoice, entry) in &bill.ledger {
                rows.ledger
                    .push((invoice.and_then(|i| ids.get(i).copied()), entry));
                rows.items.push(entry.item.0);
            }
            for (item, invoice) in &bill.one_time {
                if let Some(id) = ids.get(*invoice) {
                    rows.one_time.push((item.0, *id));
                }
            }
        }
        rows.items.sort_unstable();
        rows.items.dedup();
        rows.ids = ids;
        rows
    }

    /// The IDs per bill, as returned by a commit.
    pub fn invoice_ids(self) -> Vec<Vec<InvoiceId>> {
        self.ids
            .into_iter()
            .map(|ids| ids.into_iter().map(InvoiceId).collect())
            .collect()
    }
}

pub fn ledger_values(e: &LedgerEntry, invoice: Option<i64>) -> Vec<Value> {
    use Value::*;
    vec![
        Int(e.item.0),
        Text(date_text(e.period_start)),
        Int(e.entry.code()),
        Text(date_text(e.period_end)),
        Int(e.base_seq),
        OptInt(invoice),
    ]
}

/// Recomputes the charged-through date of `items` from their unreleased base and
/// remainder entries, bumping their version (so that edits read before retry).
pub(crate) async fn refresh_charged_through<B: Backend>(
    conn: &mut Conn<B>,
    tenant: TenantId,
    items: &[i64],
) -> StoreResult<()> {
    if items.is_empty() {
        return Ok(());
    }
    B::lock_in_order(conn, "recurring_items", tenant.0, items)
        .await
        .map_err(conflicted::<B>)?;
    for chunk in items.chunks(B::BINDS_PER_STATEMENT) {
        let mut q = Query::<B>::new(
            "UPDATE recurring_items SET version = version + 1, charged_through = \
             (SELECT MAX(l.period_end) FROM billing_ledger l \
              WHERE l.tenant_id = recurring_items.tenant_id AND l.item_id = recurring_items.id \
                AND NOT l.released AND l.entry <= 0) WHERE ",
        );
        // Look the items up by ID, never by the tenant's index.
        q.push(B::TENANT_ID_UNINDEXED)
            .push(" = ")
            .bind(tenant)
            .and_in("id", chunk)
            .per_batch();
        q.execute(conn).await.map_err(conflicted::<B>)?;
    }
    Ok(())
}

/// The columns a [`LedgerRow`] reads, of the ledger `l`.
const LEDGER_COLUMNS: [&str; 5] = [
    "l.item_id",
    "l.period_start",
    "l.period_end",
    "l.entry",
    "l.base_seq",
];

/// Writes a batch's invoices, numbering the posted ones.
async fn insert_invoices<B: Backend>(
    conn: &mut Conn<B>,
    tenant: TenantId,
    rows: &BillRows<'_>,
    prefix: &str,
    now: Timestamp,
) -> StoreResult<()> {
    let posted = rows
        .invoices
        .iter()
        .filter(|(_, _, invoice)| invoice.status == InvoiceStatus::Posted)
        .count();
    let mut numbers = take_numbers::<B>(conn, tenant, posted, prefix)
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
    B::insert_rows(conn, "invoices", &columns, invoices, true)
        .await
        .map_err(conflicted::<B>)
}

/// Marks a batch's one-time items invoiced, `Stale` if one no longer is pending.
async fn mark_invoiced<B: Backend>(
    conn: &mut Conn<B>,
    tenant: TenantId,
    items: &[(i64, i64)],
    now: Timestamp,
) -> StoreResult<()> {
    for chunk in items.chunks((B::BINDS_PER_STATEMENT / 2).max(1)) {
        let mut q = Query::<B>::new(
            "UPDATE one_time_items SET invoiced = TRUE, invoice_id = v.other, \
             version = version + 1, updated_at = ",
        );
        q.bind(now)
            .push(" FROM ")
            .pairs(chunk)
            .push(" WHERE one_time_items.id = v.id AND one_time_items.tenant_id = ")
            .bind(tenant)
            .push(" AND NOT one_time_items.invoiced AND one_time_items.cancelled_at IS NULL")
            .per_batch();
        // Fewer rows than items: one was invoiced or cancelled meanwhile.
        if q.execute(conn).await.map_err(conflicted::<B>)? != chunk.len() as u64 {
            return Err(StoreError::Stale);
        }
    }
    Ok(())
}

/// The reads of a batch's billing snapshot (of the accounts `ids`), each led by
/// `lead` (`""` to run them, `"EXPLAIN "` to see how the database would): the
/// accounts, their plans, their items (whose histories [`fetch_items`] reads with
/// [`history_read`](crate::items::history_read)), their unreleased ledger entries
/// and their pending one-time items. Each read but the first is driven from the
/// batch's plans (`JOIN_IN_ORDER`), and names the batch as a list and a range
/// (`and_batch`): its cost follows the batch, not the book, whatever the
/// statistics say.
pub fn snapshot_reads<B: Backend>(tenant: TenantId, ids: &[i64], lead: &str) -> [Query<B>; 5] {
    let join = B::JOIN_IN_ORDER;
    let mut accounts = Query::<B>::new(format!(
        "{lead}SELECT {} FROM accounts WHERE tenant_id = ",
        account_select::<B>()
    ));
    accounts
        .bind(tenant)
        .and_batch("id", ids)
        .push(" ORDER BY id")
        .per_batch();

    let mut plans = Query::<B>::new(format!(
        "{lead}SELECT {} FROM plans p {join} accounts a \
         ON a.tenant_id = p.tenant_id AND a.id = p.account_id WHERE p.tenant_id = ",
        plan_columns::<B>()
    ));
    plans
        .bind(tenant)
        .and_batch("p.account_id", ids)
        .push(" ORDER BY p.id")
        .per_batch();

    let plans_and_items = format!(
        "FROM plans p {join} recurring_items r ON r.tenant_id = p.tenant_id AND r.plan_id = p.id"
    );
    let mut items = Query::<B>::new(format!(
        "{lead}SELECT {} {plans_and_items} WHERE p.tenant_id = ",
        item_columns::<B>()
    ));
    items
        .bind(tenant)
        .push(" AND r.tenant_id = ")
        .bind(tenant)
        .push(" AND r.deleted_at IS NULL")
        .and_batch("p.account_id", ids)
        .push(" ORDER BY r.id");

    let mut ledger = Query::<B>::new(format!(
        "{lead}SELECT {} {plans_and_items} {join} billing_ledger l \
         ON l.tenant_id = r.tenant_id AND l.item_id = r.id WHERE p.tenant_id = ",
        kept::<B>("ledger", || select_list::<B>(&LEDGER_COLUMNS))
    ));
    ledger
        .bind(tenant)
        .push(" AND r.tenant_id = ")
        .bind(tenant)
        .push(" AND l.tenant_id = ")
        .bind(tenant)
        .push(" AND NOT l.released")
        .and_batch("p.account_id", ids)
        .push(" ORDER BY l.id")
        .per_batch();

    let mut one_time = Query::<B>::new(format!(
        "{lead}SELECT {} FROM plans p {join} one_time_items o \
         ON o.tenant_id = p.tenant_id AND o.plan_id = p.id WHERE p.tenant_id = ",
        one_time_columns::<B>()
    ));
    one_time
        .bind(tenant)
        .push(" AND o.tenant_id = ")
        .bind(tenant)
        .push(" AND NOT o.invoiced AND o.cancelled_at IS NULL AND o.deleted_at IS NULL")
        .and_batch("p.account_id", ids)
        .push(" ORDER BY o.id")
        .per_batch();
    [accounts, plans, items, ledger, one_time]
}

#[async_trait]
impl<B: Backend> BillingStore for SqlStore<B> {
    async fn billable_accounts(
        &self,
        tenant: TenantId,
        after: Option<AccountId>,
        limit: u32,
    ) -> StoreResult<Vec<AccountId>> {
        self.accounts_in(tenant, after.map_or(0, |a| a.0), None, limit)
            .await
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
        let mut tx = self.backend().begin_read().await?;
        let [
            accounts_read,
            plans_read,
            items_read,
            ledger_read,
            one_time_read,
        ] = snapshot_reads::<B>(tenant, &ids, "");
        let account_rows: Vec<AccountRow> = accounts_read
            .fetch_all(&mut tx)
            .await
            .map_err(failed::<B>)?;
        let plan_rows: Vec<PlanRow> = plans_read.fetch_all(&mut tx).await.map_err(failed::<B>)?;
        let items = fetch_items::<B>(&mut tx, tenant, items_read).await?;
        let ledger_rows: Vec<LedgerRow> =
            ledger_read.fetch_all(&mut tx).await.map_err(failed::<B>)?;
        let one_time_rows: Vec<OneTimeItemRow> = one_time_read
            .fetch_all(&mut tx)
            .await
            .map_err(failed::<B>)?;
        tx.commit().await.map_err(failed::<B>)?;

        let plans = plan_rows
            .into_iter()
            .map(Plan::try_from)
            .collect::<StoreResult<Vec<_>>>()?;
        let ledger = ledger_rows
            .into_iter()
            .map(LedgerEntry::try_from)
            .collect::<StoreResult<Vec<_>>>()?;
        let one_time: Vec<OneTimeItem> = convert(one_time_rows)?;
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
        let mut tx = self.backend().begin_write().await?;
        // Bills come in account order, so concurrent committers lock balances in one order.
        for bill in bills {
            let balance = CreditMove {
                before: bill.credit_balance_before,
                after: bill.credit_balance_after,
            };
            move_credit::<B>(&mut tx, tenant, bill.account, balance).await?;
        }
        // IDs are given first, so that lines, ledger entries and one-time items name
        // their invoice without reading IDs back.
        let ids = B::invoice_ids(&mut tx, BillRows::invoice_count(bills))
            .await
            .map_err(failed::<B>)?;
        let rows = BillRows::new(bills, ids);
        if B::INVOICES_FIRST {
            insert_invoices::<B>(&mut tx, tenant, &rows, prefix, now).await?;
        }

        let columns: Vec<&str> = ["tenant_id", "invoice_id"]
            .into_iter()
            .chain(LINE_WRITABLE)
            .collect();
        let lines = rows
            .lines
            .iter()
            .map(|(invoice, line)| {
                let mut row = vec![Value::Int(tenant.0), Value::Int(*invoice)];
                row.extend(line_values(line));
                row
            })
            .collect();
        B::insert_rows(&mut tx, "invoice_lines", &columns, lines, false)
            .await
            .map_err(conflicted::<B>)?;

        let columns: Vec<&str> = ["tenant_id"].into_iter().chain(LEDGER_WRITABLE).collect();
        let entries = rows
            .ledger
            .iter()
            .map(|(invoice, entry)| {
                let mut row = vec![Value::Int(tenant.0)];
                row.extend(ledger_values(entry, *invoice));
                row
            })
            .collect();
        // An entry billed already (by another bill run, perhaps still committing: the
        // insert waits for it) is refused by `billing_ledger_once`: `Stale`.
        B::insert_rows(&mut tx, "billing_ledger", &columns, entries, false)
            .await
            .map_err(conflicted::<B>)?;

        mark_invoiced::<B>(&mut tx, tenant, &rows.one_time, now).await?;
        refresh_charged_through::<B>(&mut tx, tenant, &rows.items).await?;
        if !B::INVOICES_FIRST {
            insert_invoices::<B>(&mut tx, tenant, &rows, prefix, now).await?;
        }
        tx.commit().await.map_err(conflicted::<B>)?;
        self.backend()
            .bills_committed(rows.ledger.len() as u64)
            .await;
        Ok(rows.invoice_ids())
    }
}
