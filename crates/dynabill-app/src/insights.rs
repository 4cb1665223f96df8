//! Insights (issue 15; docs/INSIGHTS.md): the tenant's recurring revenue on a day
//! and how it moved month by month, the plans coming up for renewal, the accounts
//! with billing issues and the accounts with upsell signals.
//!
//! Computed from the book as it stands, read in batches of accounts (so memory is
//! bounded by a batch and by the answer, not by the book), exactly: amounts are
//! never rounded here, a door rounds a total once when it shows it.

use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use dynabill_core::calendar::BillingPeriod;
use dynabill_core::domain::{AccountId, AccountStatus, InvoiceStatus, PlanId};
use dynabill_core::insights::{MovementKind, movement};
use dynabill_core::money::Currency;
use jiff::civil::Date;
use jiff::{Span, ToSpan};
use rust_decimal::Decimal;

use crate::App;
use crate::billing::{ACCOUNT_BATCH, BillableBatches};
use crate::error::{AppError, Field};
use crate::model::{
    Account, AccountFilter, BillingAccount, Invoice, InvoiceFilter, PageRequest, RecordKey,
    RecurringItem, Tenant,
};

/// The longest range of months a movements report covers (ten years).
pub const MAX_MONTHS: i64 = 120;
/// The widest renewals window, in days (ten years).
pub const MAX_WITHIN_DAYS: i64 = 3650;
/// How many accounts a ranked list (renewals, billing issues, upsell
/// candidates) answers with at most.
pub const MAX_LIMIT: usize = 1000;

/// Days after which an invoice waiting in Pending Tax is a billing issue.
const TAX_PENDING_HOURS: i64 = 24;
/// The window of the renewal and expansion upsell signals, in days.
const UPSELL_WINDOW_DAYS: i64 = 90;
/// Months on monthly billing after which an item is a candidate for annual.
const MONTHLY_FOR_ANNUAL_MONTHS: i64 = 12;
/// A discount above this (percent) ending at renewal is a signal.
const BIG_DISCOUNT: Decimal = Decimal::from_parts(20, 0, 0, false, 0);

/// An amount in one currency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Amount {
    pub currency: Currency,
    pub amount: Decimal,
}

/// Amounts per currency, kept in currency-code order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Amounts(BTreeMap<&'static str, Amount>);

impl Amounts {
    pub fn add(&mut self, currency: Currency, amount: Decimal) {
        self.0
            .entry(currency.code())
            .or_insert(Amount {
                currency,
                amount: Decimal::ZERO,
            })
            .amount += amount;
    }

    pub fn get(&self, currency: Currency) -> Decimal {
        self.0
            .get(currency.code())
            .map_or(Decimal::ZERO, |a| a.amount)
    }

    pub fn iter(&self) -> impl Iterator<Item = Amount> + '_ {
        self.0.values().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A recurring item's part of an account's MRR.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemMrr {
    pub item: RecurringItem,
    pub currency: Currency,
    pub mrr: Decimal,
    /// When it stops for good within its current terms (a scheduled cancel or a
    /// non-renewing end): its MRR is committed churn.
    pub ends: Option<Date>,
}

/// One currency's MRR on a day.
#[derive(Clone, Debug, PartialEq)]
pub struct CurrencyMrr {
    pub currency: Currency,
    pub mrr: Decimal,
    /// Accounts with at least one item in force.
    pub active_accounts: u64,
    /// Items in force (they count towards MRR, even at a value of zero).
    pub active_items: u64,
    /// The MRR of items in force that stop for good within their current terms.
    pub committed_churn: Decimal,
}

/// The MRR of the book, or of one account, on a day.
#[derive(Clone, Debug, PartialEq)]
pub struct MrrReport {
    pub date: Date,
    pub currencies: Vec<CurrencyMrr>,
    /// With one account: the items that make its MRR.
    pub items: Option<Vec<ItemMrr>>,
}

/// A calendar month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(Date);

impl Month {
    pub fn new(year: i16, month: i8) -> Result<Month, AppError> {
        Date::new(year, month, 1)
            .map(Month)
            .map_err(|e| AppError::Internal(e.into()))
    }

    pub fn of(day: Date) -> Month {
        Month(day.first_of_month())
    }

    pub fn first_day(self) -> Date {
        self.0
    }

    pub fn last_day(self) -> Date {
        self.0.last_of_month()
    }

    pub fn year(self) -> i16 {
        self.0.year()
    }

    pub fn month(self) -> i8 {
        self.0.month()
    }

    fn next(self) -> Option<Month> {
        self.0.checked_add(1.month()).ok().map(Month)
    }

    /// Months from `self` to `to`, both included, if `self` is not after `to`.
    fn count_to(self, to: Month) -> i64 {
        let months = |m: Month| i64::from(m.year()) * 12 + i64::from(m.month());
        months(to) - months(self) + 1
    }
}

/// An account's movement in a month (or in the committed changes).
#[derive(Clone, Debug, PartialEq)]
pub struct AccountMovement {
    pub account: AccountId,
    pub account_ext_id: String,
    pub account_name: String,
    pub kind: MovementKind,
    pub start: Decimal,
    pub end: Decimal,
}

impl AccountMovement {
    pub fn amount(&self) -> Decimal {
        (self.end - self.start).abs()
    }
}

/// The movements of one currency over one stretch of time.
#[derive(Clone, Debug, PartialEq)]
pub struct CurrencyMovements {
    pub currency: Currency,
    pub start: Decimal,
    /// Per kind: the amount and how many accounts moved so.
    pub kinds: BTreeMap<MovementKind, (Decimal, u64)>,
    pub end: Decimal,
    /// With `detail`: the accounts behind each movement, by account ID.
    pub accounts: Vec<AccountMovement>,
}

impl CurrencyMovements {
    fn new(currency: Currency) -> CurrencyMovements {
        CurrencyMovements {
            currency,
            start: Decimal::ZERO,
            kinds: MovementKind::ALL
                .into_iter()
                .map(|k| (k, (Decimal::ZERO, 0)))
                .collect(),
            end: Decimal::ZERO,
            accounts: Vec::new(),
        }
    }
}

/// One month's movements: from the MRR at the end of the previous month's last
/// day to the MRR at the end of its own (or of today, for the current month).
#[derive(Clone, Debug, PartialEq)]
pub struct MonthMovements {
    pub month: Month,
    /// The days the month's MRR is read on.
    pub from_day: Date,
    pub to_day: Date,
    pub currencies: Vec<CurrencyMovements>,
}

/// Movements month by month, and the committed ones: changes already recorded
/// but dated after today, up to the end of the last month asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct MovementsReport {
    pub months: Vec<MonthMovements>,
    pub committed: Option<MonthMovements>,
}

/// A plan whose term ends within the window.
#[derive(Clone, Debug, PartialEq)]
pub struct Renewal {
    pub account: Account,
    pub plan_id: PlanId,
    pub plan_ext_id: String,
    pub plan_name: Option<String>,
    pub currency: Currency,
    pub end_date: Date,
    pub days_left: i64,
    pub auto_renew: bool,
    pub mrr: Decimal,
    /// The account's Posted, unpaid invoices in the plan's currency.
    pub account_unpaid: Decimal,
}

/// A ranked list: the first `limit` and how many there are in all.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranked<T> {
    pub total: u64,
    pub items: Vec<T>,
}

/// How long overdue invoices have been overdue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgingBucket {
    UpTo30,
    UpTo60,
    UpTo90,
    Over90,
}

impl AgingBucket {
    pub fn of(days_overdue: i64) -> AgingBucket {
        match days_overdue {
            ..=30 => AgingBucket::UpTo30,
            31..=60 => AgingBucket::UpTo60,
            61..=90 => AgingBucket::UpTo90,
            _ => AgingBucket::Over90,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AgingBucket::UpTo30 => "1-30",
            AgingBucket::UpTo60 => "31-60",
            AgingBucket::UpTo90 => "61-90",
            AgingBucket::Over90 => "90+",
        }
    }
}

/// Why an account has billing issues, with the evidence.
#[derive(Clone, Debug, PartialEq)]
pub enum BillingIssue {
    /// Posted invoices past their due date.
    Overdue {
        invoices: u64,
        amount: Amounts,
        oldest_days_overdue: i64,
        bucket: AgingBucket,
    },
    /// Invoices waiting in Pending Tax, unchanged for over a day.
    TaxPending { invoices: u64, oldest: Date },
    /// Invoices in Pending Tax whose last tax attempt failed.
    TaxFailed {
        invoices: u64,
        attempts: i64,
        last_error: String,
    },
    /// `AccountStatus` 3.
    StatusBillingIssues,
    /// Unused credit above zero.
    CreditBalance(Amount),
}

impl BillingIssue {
    pub fn code(&self) -> &'static str {
        match self {
            BillingIssue::Overdue { .. } => "overdue",
            BillingIssue::TaxPending { .. } => "tax_pending",
            BillingIssue::TaxFailed { .. } => "tax_failed",
            BillingIssue::StatusBillingIssues => "status_billing_issues",
            BillingIssue::CreditBalance(_) => "credit_balance",
        }
    }
}

/// An account and its billing issues.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountIssues {
    pub account: Account,
    pub reasons: Vec<BillingIssue>,
}

impl AccountIssues {
    /// How long the oldest overdue invoice has been overdue (0 without one): the
    /// list's order, most overdue first.
    fn days_overdue(&self) -> i64 {
        self.reasons
            .iter()
            .find_map(|r| match r {
                BillingIssue::Overdue {
                    oldest_days_overdue,
                    ..
                } => Some(*oldest_days_overdue),
                _ => None,
            })
            .unwrap_or(0)
    }
}

/// An explainable reason to talk to an account about buying more.
#[derive(Clone, Debug, PartialEq)]
pub enum UpsellSignal {
    /// A plan's term ends within 90 days.
    RenewalSoon {
        plan_id: PlanId,
        plan_ext_id: String,
        end_date: Date,
        days_left: i64,
    },
    /// Its MRR grew over the last 90 days.
    Expanded {
        currency: Currency,
        from: Decimal,
        to: Decimal,
    },
    /// An item billed monthly for 12 months or more: a candidate for annual.
    MonthlyForAYear {
        item_ext_id: String,
        start_date: Date,
        months: i64,
    },
    /// Everything in force is one product.
    SingleProduct { product_code: String },
    /// A discount above 20% on an item whose term ends (the discount with it).
    DiscountEnding {
        item_ext_id: String,
        discount_percent: Decimal,
        end_date: Date,
    },
}

impl UpsellSignal {
    pub fn code(&self) -> &'static str {
        match self {
            UpsellSignal::RenewalSoon { .. } => "renewal_soon",
            UpsellSignal::Expanded { .. } => "expanded",
            UpsellSignal::MonthlyForAYear { .. } => "monthly_for_a_year",
            UpsellSignal::SingleProduct { .. } => "single_product",
            UpsellSignal::DiscountEnding { .. } => "discount_ending",
        }
    }

    /// The signal's weight in the score (docs/INSIGHTS.md).
    pub fn weight(&self) -> u32 {
        match self {
            UpsellSignal::RenewalSoon { .. } => 30,
            UpsellSignal::Expanded { .. } => 25,
            UpsellSignal::MonthlyForAYear { .. } => 20,
            UpsellSignal::DiscountEnding { .. } => 15,
            UpsellSignal::SingleProduct { .. } => 10,
        }
    }
}

/// An account with upsell signals.
#[derive(Clone, Debug, PartialEq)]
pub struct UpsellCandidate {
    pub account: Account,
    pub score: u32,
    pub mrr: Amounts,
    pub signals: Vec<UpsellSignal>,
}

/// An account's items in force on `day`, each with its currency (its plan's) and
/// its MRR.
fn values_on(
    book: &BillingAccount,
    day: Date,
) -> Result<Vec<(&RecurringItem, Currency, Decimal)>, AppError> {
    let mut values = Vec::new();
    for item in &book.items {
        let Some(plan) = book.plans.iter().find(|p| p.id == item.plan_id) else {
            continue;
        };
        if let Some(mrr) = item.mrr_on(day)? {
            values.push((item, plan.fields.currency, mrr));
        }
    }
    Ok(values)
}

/// [`values_on`], as a report shows the items.
fn items_in_force(book: &BillingAccount, day: Date) -> Result<Vec<ItemMrr>, AppError> {
    Ok(values_on(book, day)?
        .into_iter()
        .map(|(item, currency, mrr)| ItemMrr {
            item: item.clone(),
            currency,
            mrr,
            ends: item.final_end(),
        })
        .collect())
}

/// An account's MRR on `day`, per currency.
fn account_mrr(book: &BillingAccount, day: Date) -> Result<Amounts, AppError> {
    let mut mrr = Amounts::default();
    for (_, currency, value) in values_on(book, day)? {
        mrr.add(currency, value);
    }
    Ok(mrr)
}

/// The currencies of an account's plans.
fn currencies(book: &BillingAccount) -> Vec<Currency> {
    let mut seen = Vec::new();
    for plan in &book.plans {
        if !seen.contains(&plan.fields.currency) {
            seen.push(plan.fields.currency);
        }
    }
    seen
}

/// Whether the account had MRR in `currency` on some day before `day`.
fn had_mrr_before(book: &BillingAccount, currency: Currency, day: Date) -> Result<bool, AppError> {
    for item in &book.items {
        let in_currency = book
            .plans
            .iter()
            .any(|p| p.id == item.plan_id && p.fields.currency == currency);
        if in_currency && item.had_mrr_before(day)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The first `limit` of a ranking, smallest key first, kept in a bounded heap.
struct TopN<K: Ord, T> {
    limit: usize,
    total: u64,
    heap: BinaryHeap<(K, u64, Keep<T>)>,
}

/// A value carried in the heap, ignored by its order.
struct Keep<T>(T);

impl<T> PartialEq for Keep<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for Keep<T> {}
impl<T> PartialOrd for Keep<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Keep<T> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<K: Ord, T> TopN<K, T> {
    fn new(limit: usize) -> TopN<K, T> {
        TopN {
            limit,
            total: 0,
            heap: BinaryHeap::new(),
        }
    }

    fn push(&mut self, key: K, value: T) {
        let tie = self.total;
        self.total += 1;
        self.heap.push((key, tie, Keep(value)));
        if self.heap.len() > self.limit {
            self.heap.pop();
        }
    }

    fn finish(self) -> Ranked<T> {
        Ranked {
            total: self.total,
            items: self
                .heap
                .into_sorted_vec()
                .into_iter()
                .map(|(_, _, Keep(v))| v)
                .collect(),
        }
    }
}

fn days_between(from: Date, to: Date) -> Result<i64, AppError> {
    let span: Span = from
        .until(to)
        .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?;
    Ok(i64::from(span.get_days()))
}

fn shifted(day: Date, span: Span) -> Result<Date, AppError> {
    day.checked_add(span)
        .map_err(|e| AppError::Internal(anyhow::Error::new(e)))
}

impl App {
    /// Hands `each` every billable account of the tenant (or the one named) with
    /// its plans and items, a batch at a time.
    async fn each_book(
        &self,
        tenant: &Tenant,
        account: Option<AccountId>,
        each: &mut (dyn FnMut(&BillingAccount) -> Result<(), AppError> + Send),
    ) -> Result<(), AppError> {
        if let Some(account) = account {
            for book in self.store().billing_snapshot(tenant.id, &[account]).await? {
                each(&book)?;
            }
            return Ok(());
        }
        let mut batches = BillableBatches::default();
        while let Some(ids) = batches.next(self, tenant).await? {
            for book in self.store().billing_snapshot(tenant.id, &ids).await? {
                each(&book)?;
            }
        }
        Ok(())
    }

    /// Hands `each` every invoice of the tenant in one of `statuses`, a page at a time.
    async fn each_invoice(
        &self,
        tenant: &Tenant,
        filter: InvoiceFilter,
        each: &mut (dyn FnMut(&Invoice) + Send),
    ) -> Result<(), AppError> {
        let mut page = PageRequest::first(ACCOUNT_BATCH);
        loop {
            let found = self
                .store()
                .list_invoices(tenant.id, &filter, page, false)
                .await?;
            found.items.iter().for_each(&mut *each);
            match page.next(&found) {
                Some(next) => page = next,
                None => return Ok(()),
            }
        }
    }

    /// The MRR of the book on `date` (the tenant's today by default), per currency;
    /// of one account with the items that make it.
    pub async fn mrr(
        &self,
        tenant: &Tenant,
        date: Option<Date>,
        account: Option<AccountId>,
        currency: Option<Currency>,
    ) -> Result<MrrReport, AppError> {
        let date = date.unwrap_or_else(|| self.today(tenant));
        if let Some(id) = account {
            // 404 for an account that is not there (or is another tenant's).
            self.get_account(tenant, &RecordKey::Id(id), false).await?;
        }
        let mut totals: BTreeMap<&'static str, CurrencyMrr> = BTreeMap::new();
        let mut shown = account.map(|_| Vec::new());
        self.each_book(tenant, account, &mut |book| {
            if !book.account.fields.status.is_billable() {
                return Ok(());
            }
            let mut counted = HashSet::new();
            for (item, item_currency, mrr) in values_on(book, date)? {
                if currency.is_some_and(|c| c != item_currency) {
                    continue;
                }
                let total = totals
                    .entry(item_currency.code())
                    .or_insert_with(|| CurrencyMrr {
                        currency: item_currency,
                        mrr: Decimal::ZERO,
                        active_accounts: 0,
                        active_items: 0,
                        committed_churn: Decimal::ZERO,
                    });
                total.mrr += mrr;
                total.active_items += 1;
                if item.final_end().is_some() {
                    total.committed_churn += mrr;
                }
                if counted.insert(item_currency.code()) {
                    total.active_accounts += 1;
                }
            }
            if let Some(shown) = &mut shown {
                shown.extend(
                    items_in_force(book, date)?
                        .into_iter()
                        .filter(|i| currency.is_none_or(|c| c == i.currency)),
                );
            }
            Ok(())
        })
        .await?;
        Ok(MrrReport {
            date,
            currencies: totals.into_values().collect(),
            items: shown,
        })
    }

    /// How MRR moved in each month from `from` to `to` (both included; by default
    /// the twelve months to the current one), per currency; the months are read up
    /// to today, and what is recorded for later is reported as committed.
    pub async fn mrr_movements(
        &self,
        tenant: &Tenant,
        from: Option<Month>,
        to: Option<Month>,
        detail: bool,
    ) -> Result<MovementsReport, AppError> {
        let today = self.today(tenant);
        let to = to.unwrap_or(Month::of(today));
        let from = match from {
            Some(from) => from,
            None => Month::of(shifted(to.first_day(), (-11).months())?),
        };
        if from > to {
            return Err(AppError::invalid(
                Field::From,
                format!("must not be after to ({:04}-{:02})", to.year(), to.month()),
            ));
        }
        if from.count_to(to) > MAX_MONTHS {
            return Err(AppError::invalid(
                Field::From,
                format!("must be at most {MAX_MONTHS} months before to"),
            ));
        }
        // The days MRR is read on: the end of the month before `from`, then the end
        // of each month, none after today.
        let mut months = Vec::new();
        let mut month = Some(from);
        while let Some(m) = month.filter(|m| *m <= to) {
            months.push(m);
            month = m.next();
        }
        let before = shifted(from.first_day(), (-1).days())?;
        let mut days = vec![before.min(today)];
        days.extend(months.iter().map(|m| m.last_day().min(today)));
        let horizon = to.last_day();
        let committed = horizon > today;

        let mut report: Vec<BTreeMap<&'static str, CurrencyMovements>> =
            vec![BTreeMap::new(); months.len() + 1];
        self.each_book(tenant, None, &mut |book| {
            // The account's MRR on each day read, every currency at once.
            let on_days = days
                .iter()
                .map(|&day| account_mrr(book, day))
                .collect::<Result<Vec<_>, _>>()?;
            let around_today = if committed {
                Some((account_mrr(book, today)?, account_mrr(book, horizon)?))
            } else {
                None
            };
            for currency in currencies(book) {
                let values: Vec<Decimal> = on_days.iter().map(|m| m.get(currency)).collect();
                let mut stretches: Vec<(usize, Date, Decimal, Decimal)> = values
                    .windows(2)
                    .enumerate()
                    .map(|(i, w)| (i, days[i], w[0], w[1]))
                    .collect();
                // The committed changes: from today to the horizon.
                if let Some((now, later)) = &around_today {
                    stretches.push((months.len(), today, now.get(currency), later.get(currency)));
                }
                for (slot, from_day, start, end) in stretches {
                    let entry = report[slot]
                        .entry(currency.code())
                        .or_insert_with(|| CurrencyMovements::new(currency));
                    entry.start += start;
                    entry.end += end;
                    let had_before = start.is_zero() && had_mrr_before(book, currency, from_day)?;
                    let Some(moved) = movement(start, end, had_before) else {
                        continue;
                    };
                    let kind = entry.kinds.entry(moved.kind).or_default();
                    kind.0 += moved.amount;
                    kind.1 += 1;
                    if detail {
                        entry.accounts.push(AccountMovement {
                            account: book.account.id,
                            account_ext_id: book.account.fields.ext_id.clone(),
                            account_name: book.account.fields.name.clone(),
                            kind: moved.kind,
                            start,
                            end,
                        });
                    }
                }
            }
            Ok(())
        })
        .await?;
        let committed_report = report.pop().filter(|_| committed);
        let months = months
            .iter()
            .zip(report)
            .enumerate()
            .map(|(i, (&month, currencies))| MonthMovements {
                month,
                from_day: days[i],
                to_day: days[i + 1],
                currencies: currencies.into_values().collect(),
            })
            .collect();
        Ok(MovementsReport {
            months,
            committed: committed_report.map(|currencies| MonthMovements {
                month: Month::of(horizon),
                from_day: today,
                to_day: horizon,
                currencies: currencies.into_values().collect(),
            }),
        })
    }

    /// The plans (of billable accounts, not cancelled) whose term ends within
    /// `within_days` of the tenant's today, soonest first.
    pub async fn renewals(
        &self,
        tenant: &Tenant,
        within_days: i64,
        limit: usize,
    ) -> Result<Ranked<Renewal>, AppError> {
        if !(0..=MAX_WITHIN_DAYS).contains(&within_days) {
            return Err(AppError::invalid(
                Field::WithinDays,
                format!("must be between 0 and {MAX_WITHIN_DAYS}, got {within_days}"),
            ));
        }
        let today = self.today(tenant);
        let last = shifted(today, within_days.days())?;
        let mut top = TopN::new(limit);
        self.each_book(tenant, None, &mut |book| {
            for plan in &book.plans {
                let Some(end) = plan.fields.end_date else {
                    continue;
                };
                if plan.cancel_date.is_some() || end < today || end > last {
                    continue;
                }
                let mut mrr = Decimal::ZERO;
                for item in book.items.iter().filter(|i| i.plan_id == plan.id) {
                    mrr += item.mrr_on(today)?.unwrap_or_default();
                }
                let renewal = Renewal {
                    account: book.account.clone(),
                    plan_id: plan.id,
                    plan_ext_id: plan.fields.ext_id.clone(),
                    plan_name: plan.fields.name.clone(),
                    currency: plan.fields.currency,
                    end_date: end,
                    days_left: days_between(today, end)?,
                    auto_renew: plan.fields.auto_renew,
                    mrr,
                    account_unpaid: Decimal::ZERO,
                };
                top.push((end, plan.id), renewal);
            }
            Ok(())
        })
        .await?;
        let mut ranked = top.finish();
        let mut unpaid: HashMap<AccountId, Amounts> = HashMap::new();
        for renewal in &mut ranked.items {
            let id = renewal.account.id;
            let owed = match unpaid.get(&id) {
                Some(amounts) => amounts.get(renewal.currency),
                None => {
                    let mut amounts = Amounts::default();
                    let filter = InvoiceFilter {
                        account_id: Some(id),
                        statuses: vec![InvoiceStatus::Posted],
                        ..InvoiceFilter::default()
                    };
                    self.each_invoice(tenant, filter, &mut |i| {
                        amounts.add(i.currency, i.amount_due);
                    })
                    .await?;
                    let owed = amounts.get(renewal.currency);
                    unpaid.insert(id, amounts);
                    owed
                }
            };
            renewal.account_unpaid = owed;
        }
        Ok(ranked)
    }

    /// The reasons of every account (not deleted) that has billing issues.
    async fn issues_by_account(
        &self,
        tenant: &Tenant,
    ) -> Result<HashMap<AccountId, (Option<Account>, Vec<BillingIssue>)>, AppError> {
        let today = self.today(tenant);
        let stale = self
            .clock()
            .now()
            .checked_sub(jiff::SignedDuration::from_hours(TAX_PENDING_HOURS))
            .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?;
        let mut overdue: HashMap<AccountId, (u64, Amounts, Date)> = HashMap::new();
        let mut pending: HashMap<AccountId, (u64, Date)> = HashMap::new();
        let mut failed: HashMap<AccountId, (u64, i64, String)> = HashMap::new();
        let filter = InvoiceFilter {
            statuses: vec![InvoiceStatus::Posted, InvoiceStatus::PendingTax],
            ..InvoiceFilter::default()
        };
        self.each_invoice(tenant, filter, &mut |i| match i.status {
            InvoiceStatus::Posted if i.due_date < today => {
                let e = overdue
                    .entry(i.account_id)
                    .or_insert((0, Amounts::default(), i.due_date));
                e.0 += 1;
                e.1.add(i.currency, i.amount_due);
                e.2 = e.2.min(i.due_date);
            }
            InvoiceStatus::PendingTax => {
                if let Some(error) = &i.tax_error {
                    let e = failed.entry(i.account_id).or_insert((0, 0, String::new()));
                    e.0 += 1;
                    e.1 += i.tax_attempts;
                    e.2.clone_from(error);
                } else if i.updated_at < stale {
                    let since = i.updated_at.to_zoned(tenant.time_zone.clone()).date();
                    let e = pending.entry(i.account_id).or_insert((0, since));
                    e.0 += 1;
                    e.1 = e.1.min(since);
                }
            }
            _ => {}
        })
        .await?;

        let mut found: HashMap<AccountId, (Option<Account>, Vec<BillingIssue>)> = HashMap::new();
        for (id, (invoices, amount, oldest)) in overdue {
            let days = days_between(oldest, today)?;
            found.entry(id).or_default().1.push(BillingIssue::Overdue {
                invoices,
                amount,
                oldest_days_overdue: days,
                bucket: AgingBucket::of(days),
            });
        }
        for (id, (invoices, oldest)) in pending {
            found
                .entry(id)
                .or_default()
                .1
                .push(BillingIssue::TaxPending { invoices, oldest });
        }
        for (id, (invoices, attempts, last_error)) in failed {
            found
                .entry(id)
                .or_default()
                .1
                .push(BillingIssue::TaxFailed {
                    invoices,
                    attempts,
                    last_error,
                });
        }
        let mut page = PageRequest::first(ACCOUNT_BATCH);
        loop {
            let accounts = self
                .store()
                .list_accounts(tenant.id, &AccountFilter::default(), page)
                .await?;
            for account in &accounts.items {
                let mut reasons = Vec::new();
                if account.fields.status == AccountStatus::BillingIssues {
                    reasons.push(BillingIssue::StatusBillingIssues);
                }
                if account.credit_balance > Decimal::ZERO {
                    reasons.push(BillingIssue::CreditBalance(Amount {
                        currency: account.fields.currency,
                        amount: account.credit_balance,
                    }));
                }
                if reasons.is_empty() && !found.contains_key(&account.id) {
                    continue;
                }
                let entry = found.entry(account.id).or_default();
                entry.0 = Some(account.clone());
                entry.1.extend(reasons);
            }
            match page.next(&accounts) {
                Some(next) => page = next,
                None => break,
            }
        }
        // Invoices of a deleted account are not an account's issue to show.
        found.retain(|_, (account, _)| account.is_some());
        Ok(found)
    }

    /// The accounts with billing issues, most overdue first.
    pub async fn billing_issues(
        &self,
        tenant: &Tenant,
        limit: usize,
    ) -> Result<Ranked<AccountIssues>, AppError> {
        let mut top = TopN::new(limit);
        for (_, (account, reasons)) in self.issues_by_account(tenant).await? {
            let Some(account) = account else { continue };
            let mut issues = AccountIssues { account, reasons };
            issues.reasons.sort_by_key(reason_rank);
            let key = (std::cmp::Reverse(issues.days_overdue()), issues.account.id);
            top.push(key, issues);
        }
        Ok(top.finish())
    }

    /// The accounts (billable, without billing issues) with upsell signals, highest
    /// score first.
    pub async fn upsell_candidates(
        &self,
        tenant: &Tenant,
        limit: usize,
    ) -> Result<Ranked<UpsellCandidate>, AppError> {
        let today = self.today(tenant);
        let excluded: HashSet<AccountId> =
            self.issues_by_account(tenant).await?.into_keys().collect();
        let window_end = shifted(today, UPSELL_WINDOW_DAYS.days())?;
        let window_start = shifted(today, (-UPSELL_WINDOW_DAYS).days())?;
        let a_year_ago = shifted(today, (-MONTHLY_FOR_ANNUAL_MONTHS).months())?;
        let mut top = TopN::new(limit);
        self.each_book(tenant, None, &mut |book| {
            if excluded.contains(&book.account.id) {
                return Ok(());
            }
            let items: Vec<&RecurringItem> = values_on(book, today)?
                .into_iter()
                .map(|(item, _, _)| item)
                .collect();
            if items.is_empty() {
                return Ok(());
            }
            let mut signals = Vec::new();
            for plan in &book.plans {
                if let Some(end) = plan.fields.end_date
                    && plan.cancel_date.is_none()
                    && today <= end
                    && end <= window_end
                {
                    signals.push(UpsellSignal::RenewalSoon {
                        plan_id: plan.id,
                        plan_ext_id: plan.fields.ext_id.clone(),
                        end_date: end,
                        days_left: days_between(today, end)?,
                    });
                }
            }
            let mrr = account_mrr(book, today)?;
            let before = account_mrr(book, window_start)?;
            for now in mrr.iter() {
                let then = before.get(now.currency);
                if now.amount > then && then > Decimal::ZERO {
                    signals.push(UpsellSignal::Expanded {
                        currency: now.currency,
                        from: then,
                        to: now.amount,
                    });
                }
            }
            for i in &items {
                let f = &i.fields;
                if f.billing_period == BillingPeriod::Monthly
                    && f.period_count == 1
                    && f.start_date <= a_year_ago
                {
                    let months = f
                        .start_date
                        .until((jiff::Unit::Month, today))
                        .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?
                        .get_months();
                    signals.push(UpsellSignal::MonthlyForAYear {
                        item_ext_id: f.ext_id.clone(),
                        start_date: f.start_date,
                        months: i64::from(months),
                    });
                }
            }
            for i in &items {
                let discount = i.timeline()?.terms_at(today).discount_percent();
                if discount > BIG_DISCOUNT
                    && let Some(end) = i.fields.end_date
                {
                    signals.push(UpsellSignal::DiscountEnding {
                        item_ext_id: i.fields.ext_id.clone(),
                        discount_percent: discount,
                        end_date: end,
                    });
                }
            }
            let products: HashSet<&str> = items
                .iter()
                .map(|i| i.fields.product_code.as_str())
                .collect();
            if let [product] = products.into_iter().collect::<Vec<_>>()[..] {
                signals.push(UpsellSignal::SingleProduct {
                    product_code: product.to_owned(),
                });
            }
            if signals.is_empty() {
                return Ok(());
            }
            let score = signals.iter().map(UpsellSignal::weight).sum();
            let key = (std::cmp::Reverse(score), book.account.id);
            top.push(
                key,
                UpsellCandidate {
                    account: book.account.clone(),
                    score,
                    mrr,
                    signals,
                },
            );
            Ok(())
        })
        .await?;
        Ok(top.finish())
    }
}

/// The order reasons are listed in.
fn reason_rank(reason: &BillingIssue) -> u8 {
    match reason {
        BillingIssue::Overdue { .. } => 0,
        BillingIssue::TaxFailed { .. } => 1,
        BillingIssue::TaxPending { .. } => 2,
        BillingIssue::StatusBillingIssues => 3,
        BillingIssue::CreditBalance(_) => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aging_buckets_are_closed_at_their_upper_day() {
        let cases = [
            (1, "1-30"),
            (30, "1-30"),
            (31, "31-60"),
            (60, "31-60"),
            (61, "61-90"),
            (90, "61-90"),
            (91, "90+"),
        ];
        for (days, name) in cases {
            assert_eq!(AgingBucket::of(days).name(), name, "{days} days");
        }
    }

    #[test]
    fn a_ranking_keeps_the_first_ones_in_order_and_counts_all() {
        let mut top = TopN::new(2);
        for (key, value) in [(5, "e"), (1, "a"), (3, "c"), (2, "b"), (4, "d")] {
            top.push(key, value);
        }
        assert_eq!(
            top.finish(),
            Ranked {
                total: 5,
                items: vec!["a", "b"]
            }
        );
    }
}
