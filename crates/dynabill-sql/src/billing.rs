//! Bill runs: the ledger, the billing snapshot of a batch of accounts, and the
//! rows a batch of bills writes.

use anyhow::anyhow;
use dynabill_app::model::{Account, OneTimeItem, Plan, RecurringItem};
use dynabill_app::model::{InvoiceLineRecord, NewInvoice};
use dynabill_app::store::StoreError;
use dynabill_core::billing::{EntryKey, LedgerEntry};
use dynabill_core::domain::{AccountId, InvoiceId, RecurringItemId};

use dynabill_app::store::StoreResult;
use dynabill_core::domain::TenantId;

use crate::accounts::AccountRow;
use crate::backend::{Backend, Conn, conflicted};
use crate::query::Query;
use crate::values::{Value, date_text, parse_date};

/// A ledger row: what an earlier bill run billed or settled for an item's piece.
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
pub fn billing_accounts(
    account_rows: Vec<AccountRow>,
    plans: Vec<Plan>,
    items: Vec<RecurringItem>,
    ledger: Vec<LedgerEntry>,
    one_time: Vec<OneTimeItem>,
) -> Result<Vec<dynabill_app::model::BillingAccount>, StoreError> {
    use std::collections::HashMap;
    let mut out = Vec::with_capacity(account_rows.len());
    let mut index = HashMap::with_capacity(account_rows.len());
    for row in account_rows {
        let account = Account::try_from(row)?;
        index.insert(account.id, out.len());
        out.push(dynabill_app::model::BillingAccount {
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
    pub fn invoice_count(bills: &[dynabill_app::model::AccountBill]) -> usize {
        bills.iter().map(|b| b.invoices.len()).sum()
    }

    /// The rows of `bills`, the invoices numbered from `ids` in bill order (it must
    /// yield [`Self::invoice_count`] IDs).
    pub fn new(
        bills: &'a [dynabill_app::model::AccountBill],
        ids: impl IntoIterator<Item = i64>,
    ) -> Self {
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
