//! The bill run (BILLING.md §3): for a date, stream a tenant's billable accounts
//! in batches, renew what renews automatically, compute each account's bill in the
//! pure core, and commit a batch's bills in one transaction (so each account's bill
//! is atomic, and a batch costs one commit).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dynabill_core::billing::{
    BillableItem, ChangeEvent, ChangeKind, InvoiceGroup, InvoiceLine, InvoiceTotals, LineSource,
    OneTimeCharge, apply_credit, bill_item, bill_one_time, due_date, group_lines,
};
use dynabill_core::calendar::Pricing;
use dynabill_core::domain::{AccountId, InvoiceId, InvoiceStatus, PlanId, TaxMode};
use dynabill_core::money::Currency;
use dynabill_core::tax::TaxRule;
use jiff::civil::Date;
use rust_decimal::Decimal;

use crate::App;
use crate::error::AppError;
use crate::model::{
    AccountBill, BillingAccount, InvoiceLineRecord, ItemChange, ItemChangeKind, ItemWrite,
    NewInvoice, OneTimeItem, Plan, RecordKey, RecurringItem, Tenant,
};
use crate::races::{WRITE_RACE_RETRIES, backoff};
use crate::recurring::{Renewal, plan_renewal};
use crate::store::{BatchOutcome, BillRunId, Claim, Lease, StoreError};
use crate::taxes::{built_in_taxes, effective_mode};

/// Accounts read and billed per batch: memory stays flat however large the book.
pub const ACCOUNT_BATCH: u32 = 1000;

/// The IDs of a tenant's billable accounts, read a batch at a time in ID order.
#[derive(Default)]
pub struct BillableBatches {
    after: Option<AccountId>,
    done: bool,
}

impl BillableBatches {
    /// The next batch, or `None` when every account has been read.
    pub async fn next(
        &mut self,
        app: &App,
        tenant: &Tenant,
    ) -> Result<Option<Vec<AccountId>>, AppError> {
        if self.done {
            return Ok(None);
        }
        let ids = app
            .store()
            .billable_accounts(tenant.id, self.after, ACCOUNT_BATCH)
            .await?;
        self.after = ids.last().copied();
        self.done = ids.is_empty();
        Ok(Some(ids).filter(|ids| !ids.is_empty()))
    }
}

/// What a bill run did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BillRunSummary {
    pub tenants: u64,
    pub accounts_seen: u64,
    pub accounts_billed: u64,
    pub invoices: u64,
    pub lines: u64,
    /// Batches claimed by another process first, whose lease expired.
    pub batches_taken_over: u64,
    /// Sum of invoice totals, per currency code.
    pub totals: BTreeMap<String, Decimal>,
}

impl BillRunSummary {
    /// Counts an account's bill: its invoices, their lines and totals.
    fn count(&mut self, bill: &AccountBill) {
        self.accounts_billed += u64::from(!bill.invoices.is_empty());
        self.invoices += bill.invoices.len() as u64;
        for invoice in &bill.invoices {
            self.lines += invoice.lines.len() as u64;
            *self
                .totals
                .entry(invoice.currency.code().to_owned())
                .or_default() += invoice.total;
        }
    }

    pub fn add(&mut self, other: &BillRunSummary) {
        self.tenants += other.tenants;
        self.accounts_seen += other.accounts_seen;
        self.accounts_billed += other.accounts_billed;
        self.invoices += other.invoices;
        self.lines += other.lines;
        self.batches_taken_over += other.batches_taken_over;
        for (currency, total) in &other.totals {
            *self.totals.entry(currency.clone()).or_default() += *total;
        }
    }
}

fn change_kind(change: &ItemChange) -> ChangeKind {
    let names_terms = change.quantity.is_some()
        || change.unit_price.is_some()
        || change.discount_percent.is_some();
    match change.kind {
        ItemChangeKind::Cancellation => ChangeKind::Cancellation {
            credit: change.credit.unwrap_or(true),
        },
        ItemChangeKind::Created
        | ItemChangeKind::Updated
        | ItemChangeKind::Upsell
        | ItemChangeKind::Renewal
            if names_terms =>
        {
            ChangeKind::TermsSet {
                quantity: change.quantity,
                unit_price: change.unit_price,
                discount_percent: change.discount_percent,
            }
        }
        ItemChangeKind::Created
        | ItemChangeKind::Updated
        | ItemChangeKind::Upsell
        | ItemChangeKind::Renewal
        | ItemChangeKind::DatesChanged
        | ItemChangeKind::Deleted => ChangeKind::Other,
    }
}

fn billable(item: &RecurringItem) -> Result<BillableItem, AppError> {
    Ok(BillableItem {
        id: item.id,
        plan: item.plan_id,
        grid: item.grid()?,
        timing: item.fields.timing,
        start: item.fields.start_date,
        end: item.fields.end_date,
        changes: item
            .changes
            .iter()
            .map(|c| ChangeEvent {
                seq: c.seq,
                effective: c.effective_date,
                kind: change_kind(c),
            })
            .collect(),
    })
}

fn billing_error(e: dynabill_core::billing::BillingError) -> AppError {
    AppError::Internal(anyhow::Error::new(e).context("computing a bill"))
}

/// Where each line came from, for its description on the invoice.
struct Sources<'a> {
    items: HashMap<i64, &'a RecurringItem>,
    one_time: HashMap<i64, &'a OneTimeItem>,
}

impl Sources<'_> {
    fn record(&self, line: &InvoiceLine) -> InvoiceLineRecord {
        let (recurring, one_time, ext_id, product, name, tax_code) = match line.source {
            LineSource::Recurring { item, .. } => {
                let found = self.items.get(&item.0);
                (
                    Some(item),
                    None,
                    found.map(|i| i.fields.ext_id.clone()),
                    found.map(|i| i.fields.product_code.clone()),
                    found.map(|i| i.fields.name.clone()),
                    found.and_then(|i| i.fields.tax_code.clone()),
                )
            }
            LineSource::OneTime { item } => {
                let found = self.one_time.get(&item.0);
                (
                    None,
                    Some(item),
                    found.map(|i| i.fields.ext_id.clone()),
                    found.map(|i| i.fields.product_code.clone()),
                    found.map(|i| i.fields.name.clone()),
                    found.and_then(|i| i.fields.tax_code.clone()),
                )
            }
        };
        let is_recurring = recurring.is_some();
        InvoiceLineRecord {
            id: 0,
            line_type: line.line_type,
            recurring_item_id: recurring,
            one_time_item_id: one_time,
            item_ext_id: ext_id.unwrap_or_default(),
            product_code: product.unwrap_or_default(),
            description: name.unwrap_or_default(),
            quantity: line.terms.quantity(),
            unit_price: line.terms.unit_price(),
            discount_percent: line.terms.discount_percent(),
            fraction: is_recurring.then_some(line.fraction),
            amount: line.amount,
            service_start: line.service.start(),
            service_end: line.service.end(),
            period: is_recurring.then(|| (line.period.start(), line.period.end())),
            tax_code,
            tax_amount: Decimal::ZERO,
            taxes: Vec::new(),
        }
    }
}

/// The bill of one account for `date`, computed from its snapshot (no I/O).
pub fn compute_bill(
    tenant: &Tenant,
    snapshot: &BillingAccount,
    date: Date,
    rules: &[TaxRule],
) -> Result<AccountBill, AppError> {
    let settings = &tenant.settings;
    let pricing = |currency: Currency| Pricing {
        policy: settings.proration_policy,
        currency,
        rounding: settings.rounding,
    };
    let plans: HashMap<PlanId, &Plan> = snapshot.plans.iter().map(|p| (p.id, p)).collect();
    let plan_currency = |plan: PlanId| {
        plans
            .get(&plan)
            .map_or(snapshot.account.fields.currency, |p| p.fields.currency)
    };

    let mut lines = Vec::new();
    let mut entries = Vec::new();
    for item in &snapshot.items {
        let ledger: Vec<_> = snapshot
            .ledger
            .iter()
            .filter(|e| e.item == item.id)
            .copied()
            .collect();
        let bill = bill_item(
            &billable(item)?,
            &ledger,
            date,
            pricing(plan_currency(item.plan_id)),
        )
        .map_err(billing_error)?;
        lines.extend(bill.lines);
        entries.extend(bill.entries);
    }
    for item in &snapshot.one_time {
        let charge = OneTimeCharge {
            id: item.id,
            plan: item.plan_id,
            quantity: item.fields.quantity,
            unit_price: item.fields.unit_price,
            charge_date: item.fields.charge_date,
        };
        if let Some(line) = bill_one_time(&charge, date, pricing(plan_currency(item.plan_id)))
            .map_err(billing_error)?
        {
            lines.push(line);
        }
    }

    let account = &snapshot.account;
    let sources = Sources {
        items: snapshot.items.iter().map(|i| (i.id.0, i)).collect(),
        one_time: snapshot.one_time.iter().map(|i| (i.id.0, i)).collect(),
    };
    let mut balance = account.credit_balance;
    let mut invoices = Vec::new();
    let mut invoice_of_source: HashMap<(i64, Date, i64), usize> = HashMap::new();
    let mut one_time = Vec::new();
    for (index, group) in group_lines(lines, account.fields.invoice_grouping)
        .into_iter()
        .enumerate()
    {
        for line in &group.lines {
            match line.source {
                LineSource::Recurring {
                    item,
                    period_start,
                    entry,
                } => {
                    invoice_of_source.insert((item.0, period_start, entry.code()), index);
                }
                LineSource::OneTime { item } => one_time.push((item, index)),
            }
        }
        let (invoice, balance_after) = new_invoice(
            tenant, snapshot, &plans, &sources, group, balance, date, rules,
        )?;
        balance = balance_after;
        invoices.push(invoice);
    }
    let ledger = entries
        .into_iter()
        .map(|e| {
            (
                invoice_of_source
                    .get(&(e.item.0, e.period_start, e.entry.code()))
                    .copied(),
                e,
            )
        })
        .collect();
    Ok(AccountBill {
        account: account.id,
        credit_balance_before: account.credit_balance,
        credit_balance_after: balance,
        invoices,
        ledger,
        one_time,
    })
}

#[expect(
    clippy::too_many_arguments,
    reason = "an invoice is made of all of these"
)]
fn new_invoice(
    tenant: &Tenant,
    snapshot: &BillingAccount,
    plans: &HashMap<PlanId, &Plan>,
    sources: &Sources<'_>,
    group: InvoiceGroup,
    balance: Decimal,
    date: Date,
    rules: &[TaxRule],
) -> Result<(NewInvoice, Decimal), AppError> {
    let account = &snapshot.account;
    // Tax is computed when an invoice leaves Draft; with external tax it waits in
    // Pending Tax. Only a Posted invoice moves credit (after tax).
    let mode = effective_mode(tenant, account);
    let status = match (tenant.settings.auto_post, mode) {
        (false, _) => InvoiceStatus::Draft,
        (true, TaxMode::None | TaxMode::BuiltIn) => InvoiceStatus::Posted,
        (true, TaxMode::External | TaxMode::Avalara) => InvoiceStatus::PendingTax,
    };
    let mut lines: Vec<InvoiceLineRecord> = group.lines.iter().map(|l| sources.record(l)).collect();
    if status == InvoiceStatus::Posted && mode == TaxMode::BuiltIn {
        for line in &mut lines {
            line.taxes = built_in_taxes(rules, account, line, group.currency, tenant);
            line.tax_amount = line.taxes.iter().map(|t| t.amount).sum();
        }
    }
    let tax_amounts: Vec<Decimal> = lines
        .iter()
        .flat_map(|l| &l.taxes)
        .map(|t| t.amount)
        .collect();
    let totals = InvoiceTotals::new(
        &group.lines,
        &tax_amounts,
        group.currency,
        tenant.settings.rounding,
    )
    .map_err(billing_error)?;
    // The credit balance is kept in the account's currency; invoices in another
    // currency neither use nor add to it.
    let (credit_applied, credit_added, amount_due, balance_after) =
        if status != InvoiceStatus::Posted || group.currency != account.fields.currency {
            (
                Decimal::ZERO,
                Decimal::ZERO,
                totals.total.max(Decimal::ZERO),
                balance,
            )
        } else {
            let movement = apply_credit(totals.total, balance).map_err(billing_error)?;
            (
                movement.credit_applied,
                movement.credit_added,
                movement.amount_due,
                movement.balance_after,
            )
        };
    let mut plan_ids = group.lines.iter().map(|l| l.plan);
    let first_plan = plan_ids.next();
    let single_plan = first_plan.filter(|first| plan_ids.all(|p| p == *first));
    let po_number = single_plan
        .and_then(|p| plans.get(&p))
        .and_then(|p| p.fields.po_number.clone());
    let invoice = NewInvoice {
        plan_id: group.plan,
        status,
        invoice_date: date,
        due_date: due_date(
            date,
            account.fields.due_date_method,
            account.fields.due_date_days,
        )
        .map_err(billing_error)?,
        currency: group.currency,
        subtotal: totals.subtotal,
        tax_total: totals.tax_total,
        total: totals.total,
        credit_applied,
        credit_added,
        amount_due,
        po_number,
        lines,
    };
    Ok((invoice, balance_after))
}

/// How this process takes part in a bill run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BillRunOptions {
    /// Batches billed at once by this process. More than one only where the
    /// backend writes in parallel (PostgreSQL); SQLite has one writer.
    pub workers: u32,
    /// Accounts per batch.
    pub batch_size: u32,
    /// How long a claim on a batch lasts unless renewed; this process renews its
    /// claims every third of it, so a batch is taken over by another process only
    /// when this one stopped (crashed, killed, cut off) for a whole lease.
    pub lease: Duration,
}

impl Default for BillRunOptions {
    fn default() -> Self {
        BillRunOptions {
            workers: 1,
            batch_size: ACCOUNT_BATCH,
            lease: DEFAULT_LEASE,
        }
    }
}

/// The default lease of a claimed batch.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// What a worker does next.
enum Next {
    /// Bill the claimed batch of accounts after `after`.
    Batch {
        after: AccountId,
        snapshot: Vec<BillingAccount>,
        taken_over: bool,
    },
    /// Others hold batches not done yet; claim again (to take one over if its
    /// lease is not renewed) at `until` at the latest.
    Wait {
        until: jiff::Timestamp,
    },
    Done,
}

/// The name this process's claims are made under: its process ID and random
/// bits, so that two processes (on one machine or several) never share one.
fn owner_name() -> String {
    let mut bytes = [0u8; 6];
    let _ = getrandom::fill(&mut bytes);
    format!("{}-{}", std::process::id(), hex::encode(bytes))
}

impl App {
    /// Runs the bill run of `tenant` for `date`, alone or with the other
    /// processes running it now. `progress` hears the number of accounts this
    /// process has seen so far after each batch.
    pub async fn bill_run(
        &self,
        tenant: &Tenant,
        date: Date,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<BillRunSummary, AppError> {
        self.bill_run_with(tenant, date, BillRunOptions::default(), progress)
            .await
    }

    /// [`Self::bill_run`] with options: joins the run of `tenant` for `date` that
    /// other processes are running now, or starts one; either way this process
    /// claims batches of accounts until none is left and every other process's
    /// batch is done (or taken over after its lease). The summary counts what this
    /// process billed: the summaries of a run's processes add up to the run.
    pub async fn bill_run_with(
        &self,
        tenant: &Tenant,
        date: Date,
        options: BillRunOptions,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<BillRunSummary, AppError> {
        let lease = self.lease(options);
        let (run, _) = self.store().open_bill_run(tenant.id, date, lease).await?;
        self.take_part(tenant, run, date, options, progress).await
    }

    /// Helps with the unfinished run of `tenant` for `date`, if there is one (a
    /// server whose scheduler did not claim the day helps the one that did, and
    /// finishes its batches if it died). `None` if there is no such run.
    pub async fn join_bill_run(
        &self,
        tenant: &Tenant,
        date: Date,
        options: BillRunOptions,
    ) -> Result<Option<BillRunSummary>, AppError> {
        let lease = self.lease(options);
        let Some(run) = self.store().join_bill_run(tenant.id, date, lease).await? else {
            return Ok(None);
        };
        Ok(Some(
            self.take_part(tenant, run, date, options, &|_| {}).await?,
        ))
    }

    fn lease(&self, options: BillRunOptions) -> Lease {
        Lease {
            now: self.clock().now(),
            length: options.lease,
        }
    }

    /// This process's part of `run`, counted in the telemetry.
    async fn take_part(
        &self,
        tenant: &Tenant,
        run: BillRunId,
        date: Date,
        options: BillRunOptions,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<BillRunSummary, AppError> {
        let started = std::time::Instant::now();
        let part = self.bill_part(tenant, run, date, options, progress).await;
        self.telemetry().bill_run(
            tenant.id,
            part.as_ref()
                .ok()
                .map(|s| (s.accounts_seen, s.invoices, s.lines)),
            started.elapsed(),
        );
        part
    }

    /// This process's part of `run`: its workers claim and bill batches while a
    /// heartbeat renews its claims.
    async fn bill_part(
        &self,
        tenant: &Tenant,
        run: BillRunId,
        date: Date,
        options: BillRunOptions,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<BillRunSummary, AppError> {
        let owner = owner_name();
        let rules = self.tax_rules(tenant).await?;
        let seen = AtomicU64::new(0);
        let workers = if self.store().parallel_writes() {
            options.workers.max(1)
        } else {
            1
        };
        let workers = futures_util::future::try_join_all((0..workers).map(|_| {
            self.bill_worker(tenant, run, &owner, date, &rules, options, &seen, progress)
        }));
        let heartbeat = async {
            loop {
                tokio::time::sleep(options.lease / 3).await;
                let renewed = self
                    .store()
                    .renew_bill_run_leases(run, &owner, self.lease(options))
                    .await;
                if let Err(e) = renewed {
                    tracing::warn!(error = %e, "bill run: could not renew the leases of its batches");
                }
            }
        };
        let parts = tokio::select! {
            parts = workers => parts?,
            never = heartbeat => never,
        };
        self.store()
            .finish_bill_run(run, self.clock().now())
            .await?;
        let mut summary = BillRunSummary {
            tenants: 1,
            ..BillRunSummary::default()
        };
        for part in &parts {
            summary.add(part);
        }
        Ok(summary)
    }

    /// One worker: claims a batch, bills it while claiming and reading the next
    /// (the database and the engine work at the same time), until none is left.
    #[expect(
        clippy::too_many_arguments,
        reason = "a worker's share of the run is made of all of these"
    )]
    async fn bill_worker(
        &self,
        tenant: &Tenant,
        run: BillRunId,
        owner: &str,
        date: Date,
        rules: &[TaxRule],
        options: BillRunOptions,
        seen: &AtomicU64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<BillRunSummary, AppError> {
        let mut summary = BillRunSummary::default();
        let mut next = self.claim_batch(tenant, run, owner, date, options).await?;
        loop {
            match next {
                Next::Batch {
                    after,
                    snapshot,
                    taken_over,
                } => {
                    let accounts = snapshot.len() as u64;
                    summary.batches_taken_over += u64::from(taken_over);
                    let batch = tracing::debug_span!(
                        "bill_run_batch",
                        tenant = tenant.id.0,
                        %date,
                        accounts,
                        taken_over
                    );
                    let (billed, claimed) = tokio::join!(
                        tracing::Instrument::instrument(
                            self.bill_claimed(
                                tenant,
                                run,
                                owner,
                                after,
                                snapshot,
                                date,
                                rules,
                                &mut summary
                            ),
                            batch
                        ),
                        self.claim_batch(tenant, run, owner, date, options),
                    );
                    billed?;
                    next = claimed?;
                    progress(seen.fetch_add(accounts, Ordering::Relaxed) + accounts);
                }
                Next::Wait { until } => {
                    let left = self.clock().now().duration_until(until);
                    let pause = Duration::try_from(left)
                        .unwrap_or_default()
                        .clamp(Duration::from_millis(20), Duration::from_millis(500));
                    tokio::time::sleep(pause).await;
                    next = self.claim_batch(tenant, run, owner, date, options).await?;
                }
                Next::Done => return Ok(summary),
            }
        }
    }

    /// Claims the next batch of `run` and reads it, after renewing what renews
    /// automatically by `date`.
    async fn claim_batch(
        &self,
        tenant: &Tenant,
        run: BillRunId,
        owner: &str,
        date: Date,
        options: BillRunOptions,
    ) -> Result<Next, AppError> {
        let claim = self
            .store()
            .claim_batch(
                tenant.id,
                run,
                owner,
                options.batch_size,
                self.lease(options),
            )
            .await?;
        match claim {
            Claim::Batch {
                after,
                last,
                accounts,
                taken_over,
            } => {
                if taken_over {
                    tracing::info!(
                        run = run.0,
                        after = after.0,
                        last = last.0,
                        "bill run: took over a batch whose lease expired"
                    );
                }
                let mut snapshot = self.store().billing_snapshot(tenant.id, &accounts).await?;
                if self.renew_due_plans(tenant, &snapshot, date).await? {
                    snapshot = self.store().billing_snapshot(tenant.id, &accounts).await?;
                }
                Ok(Next::Batch {
                    after,
                    snapshot,
                    taken_over,
                })
            }
            Claim::Wait { until } => Ok(Next::Wait { until }),
            Claim::Done => Ok(Next::Done),
        }
    }

    /// Bills a claimed batch and records it done.
    #[expect(
        clippy::too_many_arguments,
        reason = "a batch's bill is made of all of these"
    )]
    async fn bill_claimed(
        &self,
        tenant: &Tenant,
        run: BillRunId,
        owner: &str,
        after: AccountId,
        snapshot: Vec<BillingAccount>,
        date: Date,
        rules: &[TaxRule],
        summary: &mut BillRunSummary,
    ) -> Result<(), AppError> {
        let accounts = snapshot.len() as u64;
        let invoices_before = summary.invoices;
        self.bill_batch(tenant, snapshot, date, rules, summary)
            .await?;
        summary.accounts_seen += accounts;
        let outcome = BatchOutcome {
            accounts,
            invoices: summary.invoices - invoices_before,
        };
        let recorded = self
            .store()
            .finish_batch(run, after, owner, outcome, self.clock().now())
            .await?;
        if !recorded {
            tracing::warn!(
                run = run.0,
                after = after.0,
                "bill run: a batch was taken over while this process billed it (its lease was not renewed in time); the database kept each piece billed once"
            );
        }
        Ok(())
    }

    /// Bills a batch of accounts: every bill is computed, then the bills are
    /// committed in two transactions that run at once (each one disk flush and a few
    /// multi-row statements; two, so that PostgreSQL works on two cores). If another
    /// writer changed an account meanwhile, its transaction commits nothing; those
    /// accounts are read again and committed one by one, so that only the account
    /// that changed waits and retries.
    async fn bill_batch(
        &self,
        tenant: &Tenant,
        snapshot: Vec<BillingAccount>,
        date: Date,
        rules: &[TaxRule],
        summary: &mut BillRunSummary,
    ) -> Result<(), AppError> {
        let mut bills = Vec::with_capacity(snapshot.len());
        for account in &snapshot {
            let bill = compute_bill(tenant, account, date, rules)?;
            if !bill.invoices.is_empty() || !bill.ledger.is_empty() {
                bills.push(bill);
            }
        }
        drop(snapshot);
        let (first, second) = bills.split_at(bills.len() / 2);
        let (first_done, second_done) = tokio::join!(
            self.commit_together(tenant, first),
            self.commit_together(tenant, second),
        );
        for (part, done) in [(first, first_done), (second, second_done)] {
            match done? {
                Some(ids) => {
                    for (bill, ids) in part.iter().zip(&ids) {
                        self.after_commit(tenant, bill, ids, summary).await?;
                    }
                }
                None => {
                    let accounts: Vec<AccountId> = part.iter().map(|b| b.account).collect();
                    let fresh = self.store().billing_snapshot(tenant.id, &accounts).await?;
                    for account in fresh {
                        self.bill_account(tenant, account, date, rules, summary)
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Commits `bills` in one transaction: their invoices' IDs, or `None` if another
    /// writer changed one of the accounts since it was read (nothing is written).
    async fn commit_together(
        &self,
        tenant: &Tenant,
        bills: &[AccountBill],
    ) -> Result<Option<Vec<Vec<InvoiceId>>>, AppError> {
        if bills.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let committed = self
            .store()
            .commit_bills(
                tenant.id,
                bills,
                &tenant.settings.invoice_prefix,
                self.clock().now(),
            )
            .await;
        match committed {
            Ok(ids) => Ok(Some(ids)),
            Err(StoreError::Stale) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// What follows a committed bill: AvaTax is asked for the tax of its invoices
    /// waiting in Pending Tax (a failure leaves them waiting, recorded and retried,
    /// never the run failed), and the summary counts it.
    async fn after_commit(
        &self,
        tenant: &Tenant,
        bill: &AccountBill,
        ids: &[InvoiceId],
        summary: &mut BillRunSummary,
    ) -> Result<(), AppError> {
        for (id, invoice) in ids.iter().zip(&bill.invoices) {
            if invoice.status == InvoiceStatus::PendingTax
                && tenant.settings.tax_mode == TaxMode::Avalara
            {
                self.tax_with_avatax(tenant, *id).await?;
            }
        }
        summary.count(bill);
        Ok(())
    }

    /// Bills one account, retrying from a fresh read when another writer (another
    /// bill run, an invoice cancellation) changed it meanwhile.
    async fn bill_account(
        &self,
        tenant: &Tenant,
        first: BillingAccount,
        date: Date,
        rules: &[TaxRule],
        summary: &mut BillRunSummary,
    ) -> Result<(), AppError> {
        let mut snapshot = first;
        for attempt in 0..WRITE_RACE_RETRIES {
            backoff(attempt).await;
            if attempt > 0 {
                let Some(fresh) = self
                    .store()
                    .billing_snapshot(tenant.id, &[snapshot.account.id])
                    .await?
                    .pop()
                else {
                    return Ok(());
                };
                snapshot = fresh;
            }
            let bill = compute_bill(tenant, &snapshot, date, rules)?;
            if bill.invoices.is_empty() && bill.ledger.is_empty() {
                return Ok(());
            }
            match self
                .store()
                .commit_bill(
                    tenant.id,
                    &bill,
                    &tenant.settings.invoice_prefix,
                    self.clock().now(),
                )
                .await
            {
                Ok(ids) => {
                    self.after_commit(tenant, &bill, &ids, summary).await?;
                    return Ok(());
                }
                Err(StoreError::Stale) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Unavailable(format!(
            "account {} kept changing during the bill run",
            snapshot.account.id
        )))
    }

    /// What a bill run for `date` would create for these accounts now, written
    /// nowhere: the plans due to renew automatically are renewed in memory (as
    /// the run renews them, with the same rule) and each account's bill computed as
    /// the run computes it. If nothing changes in between, a bill run for `date`
    /// creates exactly these invoices (numbers aside: they are taken at commit).
    pub async fn preview_bills(
        &self,
        tenant: &Tenant,
        date: Date,
        accounts: &[AccountId],
    ) -> Result<Vec<AccountBill>, AppError> {
        self.preview_bills_with(tenant, date, accounts, &|_| Ok(()))
            .await
    }

    /// [`Self::preview_bills`], with `change` made to each account's snapshot
    /// first (in memory: an edit previewed before it is made).
    pub(crate) async fn preview_bills_with(
        &self,
        tenant: &Tenant,
        date: Date,
        accounts: &[AccountId],
        change: &(dyn Fn(&mut BillingAccount) -> Result<(), AppError> + Send + Sync),
    ) -> Result<Vec<AccountBill>, AppError> {
        let rules = self.tax_rules(tenant).await?;
        let mut snapshot = self.store().billing_snapshot(tenant.id, accounts).await?;
        let now = self.clock().now();
        let mut bills = Vec::with_capacity(snapshot.len());
        for account in &mut snapshot {
            change(account)?;
            renew_in_memory(account, date, now)?;
            bills.push(compute_bill(tenant, account, date, &rules)?);
        }
        Ok(bills)
    }

    /// The invoices a bill run for `date` would create now for one account (the
    /// REST face's upcoming invoices), written nowhere: none for an account the
    /// run does not bill (Inactive). A deleted or unknown account is not found.
    pub async fn upcoming_invoices(
        &self,
        tenant: &Tenant,
        account: &RecordKey<AccountId>,
        date: Date,
    ) -> Result<Vec<NewInvoice>, AppError> {
        let account = self.get_account(tenant, account, false).await?;
        if !account.fields.status.is_billable() {
            return Ok(Vec::new());
        }
        let mut bills = self.preview_bills(tenant, date, &[account.id]).await?;
        Ok(bills.pop().map(|bill| bill.invoices).unwrap_or_default())
    }

    /// A dry run of the bill run of `tenant` for `date`: the summary it would
    /// report, computed batch by batch from [`Self::preview_bills`], writing nothing.
    pub async fn dry_run(
        &self,
        tenant: &Tenant,
        date: Date,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<BillRunSummary, AppError> {
        self.dry_run_each(tenant, date, progress, &mut |_| {}).await
    }

    /// [`Self::dry_run`], handing `each` every account's bill that has invoices.
    pub async fn dry_run_each(
        &self,
        tenant: &Tenant,
        date: Date,
        progress: &(dyn Fn(u64) + Send + Sync),
        each: &mut (dyn FnMut(AccountBill) + Send),
    ) -> Result<BillRunSummary, AppError> {
        let mut summary = BillRunSummary {
            tenants: 1,
            ..BillRunSummary::default()
        };
        let mut batches = BillableBatches::default();
        while let Some(ids) = batches.next(self, tenant).await? {
            for bill in self.preview_bills(tenant, date, &ids).await? {
                summary.count(&bill);
                if !bill.invoices.is_empty() {
                    each(bill);
                }
            }
            summary.accounts_seen += ids.len() as u64;
            progress(summary.accounts_seen);
        }
        Ok(summary)
    }

    /// Renews the auto-renewing plans of these accounts whose term ended by `date`
    /// (as many terms as it takes to pass `date`). True if any was renewed.
    async fn renew_due_plans(
        &self,
        tenant: &Tenant,
        accounts: &[BillingAccount],
        date: Date,
    ) -> Result<bool, AppError> {
        let mut renewed = false;
        for plan in accounts.iter().flat_map(|a| &a.plans) {
            let due = plan.fields.auto_renew
                && plan.cancel_date.is_none()
                && plan.fields.end_date.is_some_and(|end| end <= date);
            if !due {
                continue;
            }
            let mut end = plan.fields.end_date;
            while end.is_some_and(|end| end <= date) {
                let renewed_plan = self
                    .renew_plan(tenant, &RecordKey::Id(plan.id), Renewal::default())
                    .await?;
                end = renewed_plan.fields.end_date;
                renewed = true;
            }
        }
        Ok(renewed)
    }
}

/// Renews, in `account`'s snapshot, the plans a bill run for `date` renews
/// automatically (see [`App::bill_run`]): each write lands as the store would
/// land it (the item's new fields, its change appended last in its history).
/// Makes `write` to the item it names among `items`, in memory, as the store
/// would: its fields and cancellation, and its change appended to its history.
pub(crate) fn apply_item_write(items: &mut [RecurringItem], write: &ItemWrite) {
    let next_seq = items
        .iter()
        .flat_map(|i| &i.changes)
        .map(|c| c.seq)
        .max()
        .unwrap_or(0)
        + 1;
    if let Some(item) = items.iter_mut().find(|i| i.id == write.id) {
        item.fields = write.fields.clone();
        item.cancellation = write.cancellation;
        item.changes.push(ItemChange {
            seq: next_seq,
            ..write.change.clone()
        });
    }
}

fn renew_in_memory(
    account: &mut BillingAccount,
    date: Date,
    now: jiff::Timestamp,
) -> Result<(), AppError> {
    for index in 0..account.plans.len() {
        loop {
            let plan = &account.plans[index];
            let due = plan.fields.auto_renew
                && plan.cancel_date.is_none()
                && plan.fields.end_date.is_some_and(|end| end <= date);
            if !due {
                break;
            }
            let (fields, writes) = plan_renewal(plan, &account.items, &Renewal::default(), now)?;
            account.plans[index].fields = fields;
            for write in writes {
                apply_item_write(&mut account.items, &write);
            }
        }
    }
    Ok(())
}
