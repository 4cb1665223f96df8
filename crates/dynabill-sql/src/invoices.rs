//! Invoices and their lines.

use anyhow::anyhow;
use async_trait::async_trait;
use dynabill_app::model::{
    CreditMove, Invoice, InvoiceFilter, InvoiceLineRecord, InvoiceUpdate, LineTax, NewInvoice,
    Page, PageRequest, PostInvoice,
};
use dynabill_app::store::{InvoiceStore, StoreError, StoreResult};
use dynabill_core::billing::LineType;
use dynabill_core::domain::{
    AccountId, InvoiceId, InvoiceStatus, OneTimeItemId, PlanId, RecurringItemId, TenantId,
};
use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;

use crate::backend::{Backend, Conn, conflicted, failed};
use crate::billing::refresh_charged_through;
use crate::paging::{Listing, PageOrder, Tally, finish};
use crate::query::{Query, kept, row_columns, select_list};
use crate::store::SqlStore;
use crate::values::{
    Value, amount, coded, date_text, from_micros, micros, parse_date, parse_decimal,
    parse_opt_date, stored,
};

/// A row of `invoices`, with its account's `ExtID`. Also read from the JSON an
/// event keeps of it (on SQLite an array in the order of these fields, see
/// `0009_record_events.sql`).
#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct InvoiceRow {
    pub id: i64,
    pub account_id: i64,
    pub account_ext_id: String,
    pub plan_id: Option<i64>,
    pub invoice_number: Option<String>,
    pub status: i64,
    pub invoice_date: String,
    pub due_date: String,
    pub currency: String,
    pub subtotal: String,
    pub tax_total: String,
    pub total: String,
    pub credit_applied: String,
    pub credit_added: String,
    pub amount_due: String,
    pub po_number: Option<String>,
    pub memo: Option<String>,
    pub paid_date: Option<String>,
    pub payment_reference: Option<String>,
    pub cancel_reason: Option<String>,
    pub tax_error: Option<String>,
    pub tax_attempts: i64,
    pub next_tax_attempt: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

impl InvoiceRow {
    pub fn into_invoice(self, lines: Vec<InvoiceLineRecord>) -> Result<Invoice, StoreError> {
        Ok(Invoice {
            id: InvoiceId(self.id),
            account_id: AccountId(self.account_id),
            account_ext_id: self.account_ext_id,
            plan_id: self.plan_id.map(PlanId),
            number: self.invoice_number,
            status: coded("invoice status", self.status, InvoiceStatus::from_code)?,
            invoice_date: parse_date(&self.invoice_date)?,
            due_date: parse_date(&self.due_date)?,
            currency: stored("currency", &self.currency)?,
            subtotal: parse_decimal(&self.subtotal)?,
            tax_total: parse_decimal(&self.tax_total)?,
            total: parse_decimal(&self.total)?,
            credit_applied: parse_decimal(&self.credit_applied)?,
            credit_added: parse_decimal(&self.credit_added)?,
            amount_due: parse_decimal(&self.amount_due)?,
            po_number: self.po_number,
            memo: self.memo,
            paid_date: parse_opt_date(self.paid_date.as_deref())?,
            payment_reference: self.payment_reference,
            cancel_reason: self.cancel_reason,
            tax_error: self.tax_error,
            tax_attempts: self.tax_attempts,
            next_tax_attempt: self.next_tax_attempt.map(from_micros).transpose()?,
            lines,
            created_at: from_micros(self.created_at)?,
            updated_at: from_micros(self.updated_at)?,
            version: self.version,
        })
    }
}

/// The columns of `invoices` a new invoice writes (after `tenant_id, account_id`),
/// in the order [`invoice_values`] gives them.
pub const INVOICE_WRITABLE: [&str; 14] = [
    "plan_id",
    "status",
    "invoice_date",
    "due_date",
    "currency",
    "subtotal",
    "tax_total",
    "total",
    "credit_applied",
    "credit_added",
    "amount_due",
    "po_number",
    "created_at",
    "updated_at",
];

pub fn invoice_values(i: &NewInvoice, now: Timestamp) -> Vec<Value> {
    use Value::*;
    vec![
        OptInt(i.plan_id.map(|p| p.0)),
        Int(i.status.code()),
        Text(date_text(i.invoice_date)),
        Text(date_text(i.due_date)),
        Text(i.currency.code().to_owned()),
        amount(i.subtotal),
        amount(i.tax_total),
        amount(i.total),
        amount(i.credit_applied),
        amount(i.credit_added),
        amount(i.amount_due),
        OptText(i.po_number.clone()),
        Int(micros(now)),
        Int(micros(now)),
    ]
}

/// A row of `invoice_lines`.
#[derive(Debug, sqlx::FromRow)]
pub struct InvoiceLineRow {
    pub id: i64,
    pub invoice_id: i64,
    pub line_type: i64,
    pub recurring_item_id: Option<i64>,
    pub one_time_item_id: Option<i64>,
    pub item_ext_id: String,
    pub product_code: String,
    pub description: String,
    pub quantity: String,
    pub unit_price: String,
    pub discount_percent: String,
    pub fraction: Option<String>,
    pub amount: String,
    pub service_start: String,
    pub service_end: String,
    pub period_start: Option<String>,
    pub period_end: Option<String>,
    pub tax_code: Option<String>,
    pub tax_amount: String,
    pub taxes: String,
}

impl TryFrom<InvoiceLineRow> for InvoiceLineRecord {
    type Error = StoreError;

    fn try_from(r: InvoiceLineRow) -> Result<Self, StoreError> {
        let period = match (
            parse_opt_date(r.period_start.as_deref())?,
            parse_opt_date(r.period_end.as_deref())?,
        ) {
            (Some(start), Some(end)) => Some((start, end)),
            _ => None,
        };
        Ok(InvoiceLineRecord {
            id: r.id,
            line_type: coded("line type", r.line_type, LineType::from_code)?,
            recurring_item_id: r.recurring_item_id.map(RecurringItemId),
            one_time_item_id: r.one_time_item_id.map(OneTimeItemId),
            item_ext_id: r.item_ext_id,
            product_code: r.product_code,
            description: r.description,
            quantity: parse_decimal(&r.quantity)?,
            unit_price: parse_decimal(&r.unit_price)?,
            discount_percent: parse_decimal(&r.discount_percent)?,
            fraction: r.fraction.as_deref().map(parse_decimal).transpose()?,
            amount: parse_decimal(&r.amount)?,
            service_start: parse_date(&r.service_start)?,
            service_end: parse_date(&r.service_end)?,
            period,
            tax_code: r.tax_code,
            tax_amount: parse_decimal(&r.tax_amount)?,
            taxes: parse_taxes(&r.taxes)?,
        })
    }
}

/// The columns of `invoice_lines` after `tenant_id, invoice_id`, in the order
/// [`line_values`] gives them.
pub const LINE_WRITABLE: [&str; 18] = [
    "line_type",
    "recurring_item_id",
    "one_time_item_id",
    "item_ext_id",
    "product_code",
    "description",
    "quantity",
    "unit_price",
    "discount_percent",
    "fraction",
    "amount",
    "service_start",
    "service_end",
    "period_start",
    "period_end",
    "tax_code",
    "tax_amount",
    "taxes",
];

pub fn line_values(l: &InvoiceLineRecord) -> Vec<Value> {
    use Value::*;
    vec![
        Int(l.line_type.code()),
        OptInt(l.recurring_item_id.map(|i| i.0)),
        OptInt(l.one_time_item_id.map(|i| i.0)),
        Text(l.item_ext_id.clone()),
        Text(l.product_code.clone()),
        Text(l.description.clone()),
        Text(l.quantity.normalize().to_string()),
        Text(l.unit_price.normalize().to_string()),
        Text(l.discount_percent.normalize().to_string()),
        OptText(l.fraction.map(|f| f.to_string())),
        amount(l.amount),
        Text(date_text(l.service_start)),
        Text(date_text(l.service_end)),
        OptText(l.period.map(|p| date_text(p.0))),
        OptText(l.period.map(|p| date_text(p.1))),
        OptText(l.tax_code.clone()),
        amount(l.tax_amount),
        Text(taxes_text(&l.taxes)),
    ]
}

/// A line's taxes as stored: a JSON array of `{description, amount, rate?,
/// jurisdiction?}` with amounts and rates as exact decimal strings.
pub fn taxes_text(taxes: &[LineTax]) -> String {
    let list: Vec<serde_json::Value> = taxes
        .iter()
        .map(|t| {
            let mut o = serde_json::Map::new();
            o.insert("description".into(), t.description.clone().into());
            o.insert("amount".into(), t.amount.to_string().into());
            if let Some(rate) = t.rate {
                o.insert("rate".into(), rate.to_string().into());
            }
            if let Some(j) = &t.jurisdiction {
                o.insert("jurisdiction".into(), j.clone().into());
            }
            serde_json::Value::Object(o)
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

fn parse_taxes(text: &str) -> Result<Vec<LineTax>, StoreError> {
    let bad = |why: &str| StoreError::Other(anyhow!("bad stored taxes {text:?}: {why}"));
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| bad("not JSON"))?;
    let list = value.as_array().ok_or_else(|| bad("not an array"))?;
    list.iter()
        .map(|t| {
            let field = |k: &str| t.get(k).and_then(serde_json::Value::as_str);
            Ok(LineTax {
                description: field("description")
                    .ok_or_else(|| bad("no description"))?
                    .to_owned(),
                amount: parse_decimal(field("amount").ok_or_else(|| bad("no amount"))?)?,
                rate: field("rate").map(parse_decimal).transpose()?,
                jurisdiction: field("jurisdiction").map(str::to_owned),
            })
        })
        .collect()
}

/// Groups line rows (ordered by invoice, then line) under their invoices, keeping
/// the invoices' order.
pub fn attach_lines(
    records: Vec<InvoiceRow>,
    rows: Vec<InvoiceLineRow>,
) -> Result<Vec<Invoice>, StoreError> {
    let mut by_invoice: std::collections::HashMap<i64, Vec<InvoiceLineRecord>> =
        std::collections::HashMap::new();
    for row in rows {
        let invoice = row.invoice_id;
        by_invoice.entry(invoice).or_default().push(row.try_into()?);
    }
    records
        .into_iter()
        .map(|r| {
            let lines = by_invoice.remove(&r.id).unwrap_or_default();
            r.into_invoice(lines)
        })
        .collect()
}

/// The columns of `invoices` an [`InvoiceRow`] reads (besides its account's `ExtID`).
pub(crate) fn invoice_row_columns() -> Vec<&'static str> {
    row_columns(
        &["id", "account_id", "invoice_number"],
        &INVOICE_WRITABLE,
        &[
            "memo",
            "paid_date",
            "payment_reference",
            "cancel_reason",
            "tax_error",
            "tax_attempts",
            "next_tax_attempt",
            "version",
        ],
    )
}

/// The columns an [`InvoiceLineRow`] reads.
pub(crate) fn line_columns() -> Vec<&'static str> {
    row_columns(&["id", "invoice_id"], &LINE_WRITABLE, &[])
}

/// Invoices `i` joined with their accounts `a` (of the same tenant).
const INVOICES_JOINED: &str =
    "FROM invoices i JOIN accounts a ON a.tenant_id = i.tenant_id AND a.id = i.account_id";

fn invoice_columns<B: Backend>() -> &'static str {
    kept::<B>("invoices", build_invoice_columns::<B>)
}

fn build_invoice_columns<B: Backend>() -> String {
    let mut columns: Vec<String> = invoice_row_columns()
        .iter()
        .map(|c| format!("i.{c}"))
        .collect();
    columns.push("a.ext_id AS account_ext_id".to_owned());
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    select_list::<B>(&columns)
}

fn invoice_number(prefix: &str, seq: i64) -> String {
    format!("{prefix}{seq:06}")
}

/// Takes `count` invoice numbers from the tenant's sequence, in the caller's
/// transaction. The row lock this takes makes other posters of the tenant wait
/// until the transaction ends; it gives the numbers back if it rolls back, so
/// numbers have no gaps.
pub(crate) async fn take_numbers<B: Backend>(
    conn: &mut Conn<B>,
    tenant: TenantId,
    count: usize,
    prefix: &str,
) -> StoreResult<Vec<String>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let count = count as i64;
    let mut q = Query::<B>::new("UPDATE tenants SET invoice_seq = invoice_seq + ");
    q.bind(count)
        .push(" WHERE id = ")
        .bind(tenant)
        .push(" RETURNING invoice_seq");
    let (last,): (i64,) = q.fetch_one(conn).await.map_err(conflicted::<B>)?;
    Ok((last - count + 1..=last)
        .map(|seq| invoice_number(prefix, seq))
        .collect())
}

/// Moves an account's credit balance from `before` to `after`, or `Stale` if it
/// moved meanwhile. A concurrent mover makes this wait, then re-check the condition
/// against the balance it left. The balance is written normalised, so that SQLite
/// (which compares the text) and PostgreSQL read back the same digits.
pub(crate) async fn move_credit<B: Backend>(
    conn: &mut Conn<B>,
    tenant: TenantId,
    account: AccountId,
    CreditMove { before, after }: CreditMove,
) -> StoreResult<()> {
    if before == after {
        return Ok(());
    }
    let mut q = Query::<B>::new("UPDATE accounts SET credit_balance = ");
    q.bind_amount(after.normalize())
        .push(" WHERE tenant_id = ")
        .bind(tenant)
        .push(" AND id = ")
        .bind(account)
        .push(" AND credit_balance = ")
        .bind_amount(before.normalize());
    if q.execute(conn).await.map_err(conflicted::<B>)? == 0 {
        return Err(StoreError::Stale);
    }
    Ok(())
}

async fn lines_of<B: Backend>(
    conn: &mut Conn<B>,
    tenant: TenantId,
    invoices: &[i64],
) -> StoreResult<Vec<InvoiceLineRow>> {
    if invoices.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = Query::<B>::new(format!(
        "SELECT {} FROM invoice_lines WHERE tenant_id = ",
        kept::<B>("invoice lines", || select_list::<B>(&line_columns()))
    ));
    q.bind(tenant)
        .and_in("invoice_id", invoices)
        .push(" ORDER BY invoice_id, id");
    q.fetch_all(conn).await.map_err(failed::<B>)
}

/// The invoices of `rows`, with their lines if asked for (read on the same connection).
async fn with_lines<B: Backend>(
    conn: &mut Conn<B>,
    tenant: TenantId,
    records: Vec<InvoiceRow>,
    lines: bool,
) -> StoreResult<Vec<Invoice>> {
    let lines = if lines {
        let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
        lines_of::<B>(conn, tenant, &ids).await?
    } else {
        Vec::new()
    };
    attach_lines(records, lines)
}

async fn invoice_by_id<B: Backend>(
    conn: &mut Conn<B>,
    tenant: TenantId,
    id: InvoiceId,
    lines: bool,
) -> StoreResult<Option<Invoice>> {
    let mut q = Query::<B>::new(format!(
        "SELECT {} {INVOICES_JOINED} WHERE i.tenant_id = ",
        invoice_columns::<B>()
    ));
    q.bind(tenant).push(" AND i.id = ").bind(id);
    let rows: Vec<InvoiceRow> = q.fetch_all(conn).await.map_err(failed::<B>)?;
    Ok(with_lines::<B>(conn, tenant, rows, lines).await?.pop())
}

fn push_filter<B: Backend>(q: &mut Query<B>, tenant: TenantId, filter: &InvoiceFilter) {
    q.push(" WHERE i.tenant_id = ").bind(tenant);
    if let Some(id) = filter.id {
        q.push(" AND i.id = ").bind(id);
    }
    if let Some(account) = filter.account_id {
        q.push(" AND i.account_id = ").bind(account);
    }
    if let Some(ext_id) = &filter.account_ext_id {
        // The account first, by its key (as for plans).
        q.push(" AND i.account_id = (SELECT id FROM accounts WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND ext_id = ")
            .bind(ext_id)
            .push(")");
    }
    if let Some(plan) = filter.plan_id {
        q.push(" AND i.plan_id = ").bind(plan);
    }
    if !filter.statuses.is_empty() {
        let codes: Vec<i64> = filter.statuses.iter().map(|s| s.code()).collect();
        q.and_in("i.status", &codes);
    }
    if let Some(from) = filter.date_from {
        q.push(" AND i.invoice_date >= ").bind_date(from);
    }
    if let Some(to) = filter.date_to {
        q.push(" AND i.invoice_date <= ").bind_date(to);
    }
}

/// The list of the invoices `filter` selects (3/119, 1007/119). Its total is a
/// maintained count unless the filter names a key, an account, a plan or dates.
pub(crate) fn invoice_listing<'a, B: Backend>(
    tenant: TenantId,
    filter: &'a InvoiceFilter,
) -> Listing<'a, B> {
    let counted = filter.id.is_none()
        && filter.account_id.is_none()
        && filter.account_ext_id.is_none()
        && filter.plan_id.is_none()
        && filter.date_from.is_none()
        && filter.date_to.is_none();
    Listing {
        columns: invoice_columns::<B>(),
        from: INVOICES_JOINED,
        // Every invoice has its account (a foreign key) and the filter names
        // only the invoice: its count needs no join.
        count_from: Some("FROM invoices i"),
        key: "i.id",
        filter: Box::new(move |q: &mut Query<B>| push_filter(q, tenant, filter)),
        order: PageOrder::of(
            filter.date_from.is_some()
                || filter.date_to.is_some()
                || (counted && filter.statuses.len() > 1),
            counted,
        )
        .probing("invoices", tenant),
        tally: counted.then(|| Tally {
            tenant,
            list: "invoices",
            live_only: false,
            statuses: filter.statuses.iter().map(|s| s.code()).collect(),
        }),
    }
}

/// Lines `l` joined with their invoices `i`.
const LINES_JOINED: &str =
    "FROM invoice_lines l JOIN invoices i ON i.tenant_id = l.tenant_id AND i.id = l.invoice_id";

fn joined_line_columns<B: Backend>() -> &'static str {
    kept::<B>("joined invoice lines", || {
        let columns: Vec<String> = line_columns().iter().map(|c| format!("l.{c}")).collect();
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        select_list::<B>(&columns)
    })
}

/// The list of the lines of invoices in Pending Tax (1007/119), of one invoice
/// when named. Read through the invoices' status index and sorted by line: the
/// lines waiting for a tax service are few next to the book's.
pub(crate) fn pending_line_listing<'a, B: Backend>(
    tenant: TenantId,
    invoice: Option<InvoiceId>,
) -> Listing<'a, B> {
    Listing {
        columns: joined_line_columns::<B>(),
        from: LINES_JOINED,
        count_from: None,
        key: "l.id",
        filter: Box::new(move |q: &mut Query<B>| {
            q.push(" WHERE i.tenant_id = ")
                .bind(tenant)
                .push(" AND i.status = ")
                .bind(InvoiceStatus::PendingTax.code());
            if let Some(id) = invoice {
                q.push(" AND i.id = ").bind(id);
            }
        }),
        order: PageOrder::Filter,
        tally: None,
    }
}

/// The invoices (without lines) of these IDs, read on `conn`.
async fn invoices_by_ids<B: Backend>(
    conn: &mut Conn<B>,
    tenant: TenantId,
    ids: &[i64],
) -> StoreResult<Vec<Invoice>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = Query::<B>::new(format!(
        "SELECT {} {INVOICES_JOINED} WHERE i.tenant_id = ",
        invoice_columns::<B>()
    ));
    q.bind(tenant).and_in("i.id", ids);
    let rows: Vec<InvoiceRow> = q.fetch_all(conn).await.map_err(failed::<B>)?;
    rows.into_iter()
        .map(|r| r.into_invoice(Vec::new()))
        .collect()
}

/// Sets the invoice's number to the tenant's next one. Last in its transaction, so
/// that the tenant's sequence stays locked only for the end of it; a refused write
/// never takes a number.
async fn number_invoice<B: Backend>(
    conn: &mut Conn<B>,
    tenant: TenantId,
    id: InvoiceId,
    prefix: &str,
) -> StoreResult<()> {
    let number = take_numbers::<B>(conn, tenant, 1, prefix).await?.pop();
    let mut q = Query::<B>::new("UPDATE invoices SET invoice_number = ");
    q.bind(number)
        .push(" WHERE tenant_id = ")
        .bind(tenant)
        .push(" AND id = ")
        .bind(id);
    q.execute(conn).await.map_err(conflicted::<B>)?;
    Ok(())
}

#[async_trait]
impl<B: Backend> InvoiceStore for SqlStore<B> {
    async fn find_invoice(
        &self,
        tenant: TenantId,
        id: InvoiceId,
        with_lines: bool,
    ) -> StoreResult<Option<Invoice>> {
        let mut tx = self.backend().begin_read().await?;
        let invoice = invoice_by_id::<B>(&mut tx, tenant, id, with_lines).await?;
        tx.commit().await.map_err(failed::<B>)?;
        Ok(invoice)
    }

    async fn list_invoices(
        &self,
        tenant: TenantId,
        filter: &InvoiceFilter,
        page: PageRequest,
        lines: bool,
    ) -> StoreResult<Page<Invoice>> {
        let listing = invoice_listing::<B>(tenant, filter);
        let (total, rows, mut tx) = listing.read::<InvoiceRow>(self, page).await?;
        let invoices = with_lines::<B>(&mut tx, tenant, rows, lines).await?;
        finish::<B, _>(tx, invoices, page, total, |i| i.id.0).await
    }

    async fn pending_tax_lines(
        &self,
        tenant: TenantId,
        invoice: Option<InvoiceId>,
        page: PageRequest,
    ) -> StoreResult<Page<(Invoice, InvoiceLineRecord)>> {
        let listing = pending_line_listing::<B>(tenant, invoice);
        let (total, rows, mut tx) = listing.read::<InvoiceLineRow>(self, page).await?;
        let mut ids: Vec<i64> = rows.iter().map(|r| r.invoice_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let invoices: std::collections::HashMap<i64, Invoice> =
            invoices_by_ids::<B>(&mut tx, tenant, &ids)
                .await?
                .into_iter()
                .map(|i| (i.id.0, i))
                .collect();
        let mut lines = Vec::with_capacity(rows.len());
        for row in rows {
            let invoice = invoices
                .get(&row.invoice_id)
                .cloned()
                .ok_or_else(|| StoreError::Other(anyhow!("line {} has no invoice", row.id)))?;
            lines.push((invoice, InvoiceLineRecord::try_from(row)?));
        }
        finish::<B, _>(tx, lines, page, total, |(_, line)| line.id).await
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
        // Returning early drops (and so rolls back) the transaction.
        let mut tx = self.backend().begin_write().await?;
        let mut q = Query::<B>::new("UPDATE invoices SET version = version + 1, updated_at = ");
        q.bind(now);
        if let Some(status) = update.status {
            q.push(", status = ").bind(status.code());
        }
        if let Some(due) = update.due_date {
            q.push(", due_date = ").bind_date(due);
        }
        if let Some(po) = &update.po_number {
            q.push(", po_number = ").bind(po);
        }
        if let Some(memo) = &update.memo {
            q.push(", memo = ").bind(memo);
        }
        if let Some(paid) = update.paid_date {
            q.push(", paid_date = ").bind_date(paid);
        }
        if let Some(reference) = &update.payment_reference {
            q.push(", payment_reference = ").bind(reference);
        }
        q.push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id)
            .push(" AND version = ")
            .bind(version);
        if q.execute(&mut tx).await.map_err(conflicted::<B>)? == 0 {
            return Err(StoreError::Stale);
        }
        if update.status == Some(InvoiceStatus::Posted) {
            number_invoice::<B>(&mut tx, tenant, id, prefix).await?;
        }
        let invoice = invoice_by_id::<B>(&mut tx, tenant, id, true)
            .await?
            .ok_or(StoreError::Stale)?;
        tx.commit().await.map_err(conflicted::<B>)?;
        Ok(invoice)
    }

    async fn cancel_invoice(
        &self,
        tenant: TenantId,
        id: InvoiceId,
        version: i64,
        reason: Option<&str>,
        rebill: bool,
        balance: CreditMove,
        now: Timestamp,
    ) -> StoreResult<Invoice> {
        // Returning early drops (and so rolls back) the transaction.
        let mut tx = self.backend().begin_write().await?;
        let mut q = Query::<B>::new("UPDATE invoices SET status = 5, cancel_reason = ");
        q.bind(reason)
            .push(", rebill = ")
            .bind(rebill)
            .push(", updated_at = ")
            .bind(now)
            .push(", version = version + 1 WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id)
            .push(" AND version = ")
            .bind(version)
            .push(" AND status IN (1, 2, 3) RETURNING account_id");
        let (account,): (i64,) = q
            .fetch_optional(&mut tx)
            .await
            .map_err(conflicted::<B>)?
            .ok_or(StoreError::Stale)?;
        move_credit::<B>(&mut tx, tenant, AccountId(account), balance).await?;
        if rebill {
            let mut q = rebill_pieces::<B>(tenant, id);
            q.push(
                "SELECT o.invoice_id FROM x \
                 JOIN billing_ledger o ON o.item_id = x.item_id \
                     AND o.period_start = x.period_start AND o.id > x.first_id \
                 JOIN invoices i ON i.id = o.invoice_id \
                 WHERE NOT o.released AND i.status <> 5 AND o.invoice_id <> ",
            )
            .bind(id)
            .push(" ORDER BY o.invoice_id LIMIT 1");
            let blocked: Option<(i64,)> =
                q.fetch_optional(&mut tx).await.map_err(conflicted::<B>)?;
            if let Some((other,)) = blocked {
                return Err(StoreError::NotAllowed(format!(
                    "invoice {other} adjusted periods that invoice {id} billed or adjusted; \
                     cancel invoice {other} with Rebill 1 first, or cancel this one with Rebill 0"
                )));
            }
            let mut q = rebill_pieces::<B>(tenant, id);
            q.push(
                "UPDATE billing_ledger SET released = TRUE FROM x \
                 WHERE billing_ledger.item_id = x.item_id \
                 AND billing_ledger.period_start = x.period_start \
                 AND billing_ledger.id >= x.first_id AND NOT billing_ledger.released \
                 RETURNING billing_ledger.item_id",
            );
            let released: Vec<(i64,)> = q.fetch_all(&mut tx).await.map_err(conflicted::<B>)?;
            let mut q = Query::<B>::new(
                "UPDATE one_time_items SET invoiced = FALSE, invoice_id = NULL, updated_at = ",
            );
            q.bind(now)
                .push(", version = version + 1 WHERE tenant_id = ")
                .bind(tenant)
                .push(" AND invoice_id = ")
                .bind(id);
            q.execute(&mut tx).await.map_err(conflicted::<B>)?;
            let mut items: Vec<i64> = released.into_iter().map(|(item,)| item).collect();
            items.sort_unstable();
            items.dedup();
            refresh_charged_through::<B>(&mut tx, tenant, &items).await?;
        }
        let invoice = invoice_by_id::<B>(&mut tx, tenant, id, true)
            .await?
            .ok_or(StoreError::Stale)?;
        tx.commit().await.map_err(conflicted::<B>)?;
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
        // Returning early drops (and so rolls back) the transaction.
        let mut tx = self.backend().begin_write().await?;
        // The row lock this takes queues other writers of the invoice; each re-checks
        // the version and status once it gets the row, so only the first one matches.
        let mut q = Query::<B>::new("UPDATE invoices SET status = ");
        q.bind(post.status.code())
            .push(", tax_total = ")
            .bind_amount(post.tax_total)
            .push(", total = ")
            .bind_amount(post.total)
            .push(", credit_applied = ")
            .bind_amount(post.credit_applied)
            .push(", credit_added = ")
            .bind_amount(post.credit_added)
            .push(", amount_due = ")
            .bind_amount(post.amount_due)
            .push(", tax_error = NULL, next_tax_attempt = NULL, updated_at = ")
            .bind(now)
            .push(", version = version + 1 WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id)
            .push(" AND version = ")
            .bind(version)
            .push(" AND status IN (1, 2) RETURNING account_id");
        let (account,): (i64,) = q
            .fetch_optional(&mut tx)
            .await
            .map_err(conflicted::<B>)?
            .ok_or(StoreError::Stale)?;
        // Every line's taxes are replaced: the lines named get theirs, the rest none.
        let mut q = Query::<B>::new("UPDATE invoice_lines SET taxes = '[]', tax_amount = ");
        q.bind_amount(Decimal::ZERO)
            .push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND invoice_id = ")
            .bind(id);
        q.execute(&mut tx).await.map_err(conflicted::<B>)?;
        for line in &post.line_taxes {
            let tax_amount: Decimal = line.taxes.iter().map(|t| t.amount).sum();
            let mut q = Query::<B>::new("UPDATE invoice_lines SET taxes = ");
            q.bind(taxes_text(&line.taxes))
                .push(", tax_amount = ")
                .bind_amount(tax_amount)
                .push(", tax_code = COALESCE(")
                .bind(line.tax_code.clone())
                .push(", tax_code) WHERE tenant_id = ")
                .bind(tenant)
                .push(" AND invoice_id = ")
                .bind(id)
                .push(" AND id = ")
                .bind(line.line_id);
            q.execute(&mut tx).await.map_err(conflicted::<B>)?;
        }
        move_credit::<B>(&mut tx, tenant, AccountId(account), post.balance).await?;
        if post.status == InvoiceStatus::Posted {
            number_invoice::<B>(&mut tx, tenant, id, prefix).await?;
        }
        let invoice = invoice_by_id::<B>(&mut tx, tenant, id, true)
            .await?
            .ok_or(StoreError::Stale)?;
        tx.commit().await.map_err(conflicted::<B>)?;
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
        let mut q = Query::<B>::new("UPDATE invoices SET tax_error = ");
        q.bind(error)
            .push(", tax_attempts = tax_attempts + 1, next_tax_attempt = ")
            .bind(next_attempt)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id)
            .push(" AND status = 2");
        q.execute(&mut *self.write_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(())
    }

    async fn mark_overdue(
        &self,
        tenant: TenantId,
        today: Date,
        now: Timestamp,
    ) -> StoreResult<u64> {
        // Served by the partial index `invoices_overdue`.
        let mut q = Query::<B>::new("UPDATE invoices SET overdue_on = ");
        q.bind_date(today)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND status = 3 AND overdue_on IS NULL AND due_date < ")
            .bind_date(today);
        q.execute(&mut *self.write_conn().await?)
            .await
            .map_err(failed::<B>)
    }

    async fn account_has_invoices(
        &self,
        tenant: TenantId,
        account: AccountId,
    ) -> StoreResult<bool> {
        self.invoice_exists(tenant, account, "status <> 5").await
    }

    async fn account_has_unpaid_invoices(
        &self,
        tenant: TenantId,
        account: AccountId,
    ) -> StoreResult<bool> {
        self.invoice_exists(tenant, account, "status IN (2, 3)")
            .await
    }
}

impl<B: Backend> SqlStore<B> {
    /// Whether the account has an invoice whose status meets `condition`.
    async fn invoice_exists(
        &self,
        tenant: TenantId,
        account: AccountId,
        condition: &str,
    ) -> StoreResult<bool> {
        let mut q = Query::<B>::new("SELECT EXISTS (SELECT 1 FROM invoices WHERE tenant_id = ");
        q.bind(tenant)
            .push(" AND account_id = ")
            .bind(account)
            .push(format_args!(" AND {condition})"));
        let (exists,): (bool,) = q
            .fetch_one(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(exists)
    }
}

/// Starts a query on the pieces (item and period) an invoice being cancelled with
/// rebill billed or adjusted, as `x`, each with the first ledger entry the invoice
/// holds for it (`first_id`). Ledger IDs follow the order entries were written, so
/// a piece's entries from `first_id` on are what the invoice's run, and the runs
/// after it, recorded for the piece: a rebill releases them (its own, settlements
/// that made no line, entries on invoices cancelled since), and is refused while a
/// live invoice holds one of them, since that invoice's adjustment was priced
/// against the entries the rebill would release.
fn rebill_pieces<B: Backend>(tenant: TenantId, invoice: InvoiceId) -> Query<B> {
    let mut q = Query::<B>::new(
        "WITH x AS (SELECT item_id, period_start, MIN(id) AS first_id \
         FROM billing_ledger WHERE tenant_id = ",
    );
    q.bind(tenant)
        .push(" AND invoice_id = ")
        .bind(invoice)
        .push(" GROUP BY item_id, period_start) ");
    q
}
