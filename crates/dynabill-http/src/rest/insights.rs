//! `/v1/insights`: recurring revenue, its movements, renewals due, accounts with
//! billing issues and upsell candidates (docs/INSIGHTS.md), as of the tenant's
//! today. Amounts are shown rounded half-up to the currency's minor unit, once,
//! from the exact figure; `exact` fields carry the unrounded values the
//! definitions hold on.

#![expect(
    unused_qualifications,
    reason = "utoipa's path macro qualifies the parameter types it is given"
)]

use axum::response::Response;
use dynabill_app::insights::{
    self as app, Amount, Amounts, BillingIssue, MAX_LIMIT, MAX_WITHIN_DAYS, Month, UpsellSignal,
};
use dynabill_app::model;
use dynabill_core::domain::AccountId;
use dynabill_core::insights::MovementKind;
use dynabill_core::money::Currency;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::shapes::{CurrencyCode, day, decimal, money};
use super::{Call, Reply};
use crate::error::DoorError;
use crate::fields::{MAX_TEXT, PAGE_SIZE};
use crate::params::Params;

/// Ranked lists answer this many accounts unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 100;
/// The renewals window unless `within_days` says otherwise.
const DEFAULT_WITHIN_DAYS: i64 = 30;

/// An account an insight is about.
#[derive(Serialize, ToSchema)]
pub struct AccountRef {
    /// The account's ID.
    #[schema(example = 1042)]
    account_id: i64,
    /// The account's ExtID.
    #[schema(example = "CRM-1042")]
    account_ext_id: String,
    /// The account's name.
    #[schema(example = "Acme Corp")]
    account_name: String,
}

impl From<&model::Account> for AccountRef {
    fn from(a: &model::Account) -> Self {
        AccountRef {
            account_id: a.id.0,
            account_ext_id: a.fields.ext_id.clone(),
            account_name: a.fields.name.clone(),
        }
    }
}

/// An amount in a currency.
#[derive(Serialize, ToSchema)]
pub struct Money {
    /// The currency.
    #[schema(example = "USD")]
    currency: &'static str,
    /// The amount, rounded to the currency's minor unit.
    #[schema(example = "1250.00")]
    amount: String,
}

impl From<Amount> for Money {
    fn from(a: Amount) -> Self {
        Money {
            currency: a.currency.code(),
            amount: money(a.amount, a.currency),
        }
    }
}

fn amounts(a: &Amounts) -> Vec<Money> {
    a.iter().map(Money::from).collect()
}

/// Twelve times an exact monthly figure, rounded once.
fn annual(mrr: Decimal, currency: Currency) -> String {
    money(mrr * Decimal::from(12), currency)
}

// ---- MRR ------------------------------------------------------------------

/// The day and scope of an MRR report.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "a schema: it checks the query; the door's parser reads the values"
)]
pub struct MrrOptions {
    /// The day (default: the tenant's today).
    #[param(format = Date, example = "2026-03-31")]
    date: Option<String>,
    /// Only this account, with the items that make its MRR.
    #[param(minimum = 1, example = 1042)]
    account_id: Option<i64>,
    /// Only this currency.
    #[param(inline, example = "USD")]
    currency: Option<CurrencyCode>,
}

/// One currency's recurring revenue on the day.
#[derive(Serialize, ToSchema)]
pub struct CurrencyMrr {
    /// The currency (figures are never converted).
    #[schema(example = "USD")]
    currency: &'static str,
    /// Monthly recurring revenue, rounded once from the exact sum.
    #[schema(example = "1250.00")]
    mrr: String,
    /// The exact, unrounded MRR.
    #[schema(example = "1250")]
    mrr_exact: String,
    /// Annual recurring revenue: 12 × the exact MRR, rounded once.
    #[schema(example = "15000.00")]
    arr: String,
    /// Accounts with at least one item in force.
    #[schema(example = 12)]
    active_accounts: u64,
    /// Items in force on the day.
    #[schema(example = 31)]
    active_items: u64,
    /// The MRR of items in force that stop for good within their current terms
    /// (a scheduled cancel, or the end of a plan that does not renew).
    #[schema(example = "150.00")]
    committed_churn: String,
}

/// A recurring item's part of an account's MRR.
#[derive(Serialize, ToSchema)]
pub struct ItemMrr {
    /// The item's ID.
    #[schema(example = 5001)]
    id: i64,
    /// The item's ExtID.
    #[schema(example = "SUB-310-SEATS")]
    ext_id: String,
    /// Its plan's ID.
    #[schema(example = 310)]
    plan_id: i64,
    /// Its plan's ExtID.
    #[schema(example = "SUB-310")]
    plan_ext_id: String,
    /// The product.
    #[schema(example = "SEATS")]
    product_code: String,
    /// The item's name.
    #[schema(example = "Seats")]
    item_name: String,
    /// Its plan's currency.
    #[schema(example = "USD")]
    currency: &'static str,
    /// Quantity × unit price × (1 − discount) under the terms in force on the
    /// day, per month, rounded.
    #[schema(example = "495.00")]
    mrr: String,
    /// The exact, unrounded MRR.
    #[schema(example = "495")]
    mrr_exact: String,
    /// When it stops for good (exclusive), if it does within its current terms.
    #[schema(example = "2026-07-01", format = Date)]
    ends: Option<String>,
}

/// The MRR and ARR of the book (or of one account) on a day, per currency.
#[derive(Serialize, ToSchema)]
pub struct MrrReport {
    /// The day.
    #[schema(example = "2026-03-31", format = Date)]
    date: String,
    /// One entry per currency with items in force, by currency code.
    currencies: Vec<CurrencyMrr>,
    /// With `account_id`: the account's items in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    items: Option<Vec<ItemMrr>>,
}

impl From<&app::MrrReport> for MrrReport {
    fn from(r: &app::MrrReport) -> Self {
        MrrReport {
            date: day(r.date),
            currencies: r
                .currencies
                .iter()
                .map(|c| CurrencyMrr {
                    currency: c.currency.code(),
                    mrr: money(c.mrr, c.currency),
                    mrr_exact: decimal(c.mrr),
                    arr: annual(c.mrr, c.currency),
                    active_accounts: c.active_accounts,
                    active_items: c.active_items,
                    committed_churn: money(c.committed_churn, c.currency),
                })
                .collect(),
            items: r.items.as_ref().map(|items| {
                items
                    .iter()
                    .map(|i| ItemMrr {
                        id: i.item.id.0,
                        ext_id: i.item.fields.ext_id.clone(),
                        plan_id: i.item.plan_id.0,
                        plan_ext_id: i.item.plan_ext_id.clone(),
                        product_code: i.item.fields.product_code.clone(),
                        item_name: i.item.fields.name.clone(),
                        currency: i.currency.code(),
                        mrr: money(i.mrr, i.currency),
                        mrr_exact: decimal(i.mrr),
                        ends: i.ends.map(day),
                    })
                    .collect()
            }),
        }
    }
}

/// Monthly recurring revenue
///
/// MRR and ARR per currency on a day: the items in force then (started, not
/// stopped, of an Active or Billing-issues account), each normalised to a month
/// (docs/INSIGHTS.md). With `account_id`, the items that make the account's MRR.
#[utoipa::path(get, path = "/v1/insights/mrr", tag = "Insights",
    params(MrrOptions),
    responses((status = 200, description = "MRR and ARR per currency", body = MrrReport)))]
pub async fn mrr(call: Call) -> Response {
    call.read(async |call| {
        let p = call.query::<MrrOptions>(false)?;
        let date = p.required_date("Date")?;
        let account: Option<AccountId> = p.id("AccountId")?;
        let currency = p
            .parsed("Currency", MAX_TEXT, "an ISO 4217 code such as USD", |s| {
                s.parse::<Currency>().ok()
            })?
            .flatten();
        let report = call
            .app
            .mrr(&call.tenant, date, account, currency)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&MrrReport::from(&report)))
    })
    .await
}

// ---- Movements ------------------------------------------------------------

/// The months of a movements report.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "a schema: it checks the query; the door's parser reads the values"
)]
pub struct MovementsOptions {
    /// The first month, `YYYY-MM` (default: eleven months before `to`).
    #[param(
        example = "2026-01",
        pattern = r"^(19[0-9]{2}|2[0-9]{3})-(0[1-9]|1[0-2])$"
    )]
    from: Option<String>,
    /// The last month, `YYYY-MM`, included (default: the tenant's current month).
    #[param(
        example = "2026-03",
        pattern = r"^(19[0-9]{2}|2[0-9]{3})-(0[1-9]|1[0-2])$"
    )]
    to: Option<String>,
    /// `1`: list the accounts behind each movement.
    #[param(example = 1, minimum = 0, maximum = 1)]
    detail: Option<u8>,
}

/// A `YYYY-MM` month parameter.
fn month(p: &Params, name: &str) -> Result<Option<Month>, DoorError> {
    let Some(text) = p.text(name, 7)? else {
        return Ok(None);
    };
    let parsed = text
        .split_once('-')
        .filter(|(y, m)| y.len() == 4 && m.len() == 2)
        .and_then(|(y, m)| Some((y.parse::<i16>().ok()?, m.parse::<i8>().ok()?)))
        .filter(|(y, m)| (1900..=2999).contains(y) && (1..=12).contains(m))
        .and_then(|(y, m)| Month::new(y, m).ok());
    parsed
        .map(Some)
        .ok_or_else(|| DoorError::invalid(name, format!("must be a month YYYY-MM, got {text:?}")))
}

fn month_name(m: Month) -> String {
    format!("{:04}-{:02}", m.year(), m.month())
}

/// A movement's amount and how many accounts moved so.
#[derive(Serialize, ToSchema)]
pub struct MovementTotal {
    /// The sum of the accounts' movements, rounded.
    #[schema(example = "300.00")]
    amount: String,
    /// How many accounts moved this way.
    #[schema(example = 2)]
    accounts: u64,
}

/// The exact, unrounded figures of a currency's movements: `start + new +
/// reactivation + expansion − contraction − churn = end` holds on them exactly.
#[derive(Serialize, ToSchema)]
pub struct ExactMovements {
    /// MRR at the start.
    #[schema(example = "1000")]
    start: String,
    /// New MRR.
    #[schema(example = "300")]
    new: String,
    /// Reactivated MRR.
    #[schema(example = "0")]
    reactivation: String,
    /// Expansion.
    #[schema(example = "50")]
    expansion: String,
    /// Contraction.
    #[schema(example = "20")]
    contraction: String,
    /// Churned MRR.
    #[schema(example = "80")]
    churn: String,
    /// MRR at the end.
    #[schema(example = "1250")]
    end: String,
}

/// One account's movement.
#[derive(Serialize, ToSchema)]
pub struct AccountMovement {
    /// The account.
    #[serde(flatten)]
    account: AccountRef,
    /// `new`, `reactivation`, `expansion`, `contraction` or `churn`.
    #[schema(example = "expansion")]
    kind: &'static str,
    /// Its MRR at the start, rounded.
    #[schema(example = "100.00")]
    start: String,
    /// Its MRR at the end, rounded.
    #[schema(example = "150.00")]
    end: String,
    /// How much it moved (always positive), rounded.
    #[schema(example = "50.00")]
    amount: String,
}

/// One currency's movements.
#[derive(Serialize, ToSchema)]
pub struct CurrencyMovements {
    /// The currency.
    #[schema(example = "USD")]
    currency: &'static str,
    /// MRR at the end of the day before the stretch, rounded.
    #[schema(example = "1000.00")]
    start: String,
    /// Accounts from no MRR to some, for the first time.
    new: MovementTotal,
    /// Accounts from no MRR to some, having had MRR before.
    reactivation: MovementTotal,
    /// Accounts whose MRR went up.
    expansion: MovementTotal,
    /// Accounts whose MRR went down, still above zero.
    contraction: MovementTotal,
    /// Accounts whose MRR went to zero.
    churn: MovementTotal,
    /// MRR at the end of the stretch's last day, rounded.
    #[schema(example = "1250.00")]
    end: String,
    /// The same figures, unrounded.
    exact: ExactMovements,
    /// With `detail=1`: every account that moved, by account ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    accounts: Option<Vec<AccountMovement>>,
}

/// A month's movements (or the committed ones).
#[derive(Serialize, ToSchema)]
pub struct MonthMovements {
    /// The month, `YYYY-MM` (of committed movements: the last month asked for).
    #[schema(example = "2026-03")]
    month: String,
    /// MRR is read at the end of this day for the start: the previous month's
    /// last day (of committed movements: today).
    #[schema(example = "2026-02-28", format = Date)]
    start_day: String,
    /// And at the end of this one: the month's last day, or today for the
    /// current month.
    #[schema(example = "2026-03-31", format = Date)]
    end_day: String,
    /// One entry per currency of the accounts' plans, by currency code.
    currencies: Vec<CurrencyMovements>,
}

/// Month-by-month MRR movements.
#[derive(Serialize, ToSchema)]
pub struct MovementsReport {
    /// The first month.
    #[schema(example = "2026-01")]
    from: String,
    /// The last month.
    #[schema(example = "2026-03")]
    to: String,
    /// Each month from `from` to `to`.
    months: Vec<MonthMovements>,
    /// Changes already recorded but dated after today (a scheduled cancel, a
    /// future-dated upsell): the movements from today to the end of `to`. Null
    /// when `to` ends by today.
    committed: Option<MonthMovements>,
}

impl MovementsReport {
    /// The report in its REST shape (`None` if it has no month).
    pub fn new(report: &app::MovementsReport, detail: bool) -> Option<MovementsReport> {
        let (first, last) = (report.months.first()?, report.months.last()?);
        Some(MovementsReport {
            from: month_name(first.month),
            to: month_name(last.month),
            months: report
                .months
                .iter()
                .map(|m| MonthMovements::new(m, detail))
                .collect(),
            committed: report
                .committed
                .as_ref()
                .map(|m| MonthMovements::new(m, detail)),
        })
    }
}

fn total(c: &app::CurrencyMovements, kind: MovementKind) -> (Decimal, u64) {
    c.kinds.get(&kind).copied().unwrap_or_default()
}

impl MonthMovements {
    fn new(m: &app::MonthMovements, detail: bool) -> MonthMovements {
        MonthMovements {
            month: month_name(m.month),
            start_day: day(m.from_day),
            end_day: day(m.to_day),
            currencies: m
                .currencies
                .iter()
                .map(|c| {
                    let cur = c.currency;
                    let shown = |kind| {
                        let (amount, accounts) = total(c, kind);
                        MovementTotal {
                            amount: money(amount, cur),
                            accounts,
                        }
                    };
                    let exact = |kind| decimal(total(c, kind).0);
                    CurrencyMovements {
                        currency: cur.code(),
                        start: money(c.start, cur),
                        new: shown(MovementKind::New),
                        reactivation: shown(MovementKind::Reactivation),
                        expansion: shown(MovementKind::Expansion),
                        contraction: shown(MovementKind::Contraction),
                        churn: shown(MovementKind::Churn),
                        end: money(c.end, cur),
                        exact: ExactMovements {
                            start: decimal(c.start),
                            new: exact(MovementKind::New),
                            reactivation: exact(MovementKind::Reactivation),
                            expansion: exact(MovementKind::Expansion),
                            contraction: exact(MovementKind::Contraction),
                            churn: exact(MovementKind::Churn),
                            end: decimal(c.end),
                        },
                        accounts: detail.then(|| {
                            c.accounts
                                .iter()
                                .map(|a| AccountMovement {
                                    account: AccountRef {
                                        account_id: a.account.0,
                                        account_ext_id: a.account_ext_id.clone(),
                                        account_name: a.account_name.clone(),
                                    },
                                    kind: a.kind.name(),
                                    start: money(a.start, cur),
                                    end: money(a.end, cur),
                                    amount: money(a.amount(), cur),
                                })
                                .collect()
                        }),
                    }
                })
                .collect(),
        }
    }
}

/// MRR movements by month
///
/// For each month from `from` to `to` and each currency: the MRR at the start
/// (the end of the previous month's last day), what new, reactivated, expanding,
/// contracting and churning accounts moved, and the MRR at the end;
/// `start + new + reactivation + expansion − contraction − churn = end`. Months
/// are read up to today; changes recorded for later are reported as committed.
#[utoipa::path(get, path = "/v1/insights/mrr-movements", tag = "Insights",
    params(MovementsOptions),
    responses((status = 200, description = "Movements per month and currency", body = MovementsReport)))]
pub async fn movements(call: Call) -> Response {
    call.read(async |call| {
        let p = call.query::<MovementsOptions>(false)?;
        let from = month(&p, "From")?;
        let to = month(&p, "To")?;
        let detail = p.flag("Detail")?.unwrap_or(false);
        let report = call
            .app
            .mrr_movements(&call.tenant, from, to, detail)
            .await
            .map_err(|e| call.fail(e))?;
        let shaped = MovementsReport::new(&report, detail)
            .ok_or_else(|| DoorError::invalid("From", "names no month"))?;
        Ok(Reply::ok(&shaped))
    })
    .await
}

// ---- Ranked lists -----------------------------------------------------------

/// How many accounts a ranked list answers with.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "a schema: it checks the query; the door's parser reads the values"
)]
pub struct RankedOptions {
    /// At most this many (1 to 1000, default 100); `total` says how many there are.
    #[param(minimum = 1, maximum = 1000, example = 100)]
    limit: Option<u32>,
}

/// The renewals window, and how many to answer with.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "a schema: it checks the query; the door's parser reads the values"
)]
pub struct RenewalsOptions {
    /// Plans whose term ends within this many days of today (0 to 3650, default 30).
    #[param(minimum = 0, maximum = 3650, example = 30)]
    within_days: Option<u32>,
    /// At most this many (1 to 1000, default 100); `total` says how many there are.
    #[param(minimum = 1, maximum = 1000, example = 100)]
    limit: Option<u32>,
}

/// The first `limit` of a ranking, and how many it has in all.
#[derive(Serialize, ToSchema)]
pub struct Ranked<T> {
    /// Today, as the tenant's clock says: what the ranking was computed for.
    #[schema(example = "2026-03-15", format = Date)]
    today: String,
    /// How many there are in all.
    #[schema(example = 4)]
    total: u64,
    /// The first `limit` of them, in the ranking's order.
    data: Vec<T>,
}

impl<T> Ranked<T> {
    /// A ranking computed for `today`, in its REST shape.
    pub fn new<R>(today: Date, ranked: &app::Ranked<R>) -> Ranked<T>
    where
        for<'a> T: From<&'a R>,
    {
        Ranked {
            today: day(today),
            total: ranked.total,
            data: ranked.items.iter().map(T::from).collect(),
        }
    }
}

impl<T: Serialize> Ranked<T> {
    fn reply<R>(call: &Call, ranked: &app::Ranked<R>) -> Reply
    where
        for<'a> T: From<&'a R>,
    {
        Reply::ok(&Ranked::<T>::new(call.app.today(&call.tenant), ranked))
    }
}

fn limit(p: &Params) -> Result<usize, DoorError> {
    let max = i64::try_from(MAX_LIMIT).unwrap_or(i64::MAX);
    // The query's `limit` is read as the dynamic door's page size.
    Ok(p.int_in(PAGE_SIZE, 1..=max)?
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(DEFAULT_LIMIT))
}

/// A plan coming up for renewal.
#[derive(Serialize, ToSchema)]
pub struct Renewal {
    /// The account.
    #[serde(flatten)]
    account: AccountRef,
    /// The plan's ID.
    #[schema(example = 310)]
    plan_id: i64,
    /// The plan's ExtID.
    #[schema(example = "SUB-310")]
    plan_ext_id: String,
    /// The plan's name.
    #[schema(example = "Growth")]
    plan_name: Option<String>,
    /// The plan's currency.
    #[schema(example = "USD")]
    currency: &'static str,
    /// The end of its term (exclusive: the term's last day is the day before).
    #[schema(example = "2026-04-01", format = Date)]
    end_date: String,
    /// End date − today, in days.
    #[schema(example = 17)]
    days_left: i64,
    /// Whether the plan renews itself (`AutoRenew`).
    #[schema(example = true)]
    auto_renew: bool,
    /// The plan's MRR today, rounded.
    #[schema(example = "495.00")]
    mrr: String,
    /// 12 × its exact MRR, rounded.
    #[schema(example = "5940.00")]
    arr: String,
    /// The account's Posted, unpaid invoices in the plan's currency.
    #[schema(example = "0.00")]
    account_unpaid: String,
}

impl From<&app::Renewal> for Renewal {
    fn from(r: &app::Renewal) -> Self {
        Renewal {
            account: AccountRef::from(&r.account),
            plan_id: r.plan_id.0,
            plan_ext_id: r.plan_ext_id.clone(),
            plan_name: r.plan_name.clone(),
            currency: r.currency.code(),
            end_date: day(r.end_date),
            days_left: r.days_left,
            auto_renew: r.auto_renew,
            mrr: money(r.mrr, r.currency),
            arr: annual(r.mrr, r.currency),
            account_unpaid: money(r.account_unpaid, r.currency),
        }
    }
}

/// Renewals due
///
/// Plans of billable accounts, not cancelled, whose term ends within
/// `within_days` of the tenant's today, soonest first, with their MRR and the
/// account's unpaid amount.
#[utoipa::path(get, path = "/v1/insights/renewals", tag = "Insights",
    params(RenewalsOptions),
    responses((status = 200, description = "Plans ending within the window", body = Ranked<Renewal>)))]
pub async fn renewals(call: Call) -> Response {
    call.read(async |call| {
        let p = call.query::<RenewalsOptions>(false)?;
        let within = p
            .int_in("WithinDays", 0..=MAX_WITHIN_DAYS)?
            .unwrap_or(DEFAULT_WITHIN_DAYS);
        let ranked = call
            .app
            .renewals(&call.tenant, within, limit(&p)?)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Ranked::<Renewal>::reply(call, &ranked))
    })
    .await
}

/// Why an account has billing issues, and the evidence.
#[derive(Serialize, ToSchema)]
pub struct IssueReason {
    /// `overdue`, `tax_failed`, `tax_pending`, `status_billing_issues` or
    /// `credit_balance`.
    #[schema(example = "overdue")]
    code: &'static str,
    /// Invoices behind the reason (overdue, tax pending, tax failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 2)]
    invoices: Option<u64>,
    /// Overdue: what is owed, per currency; credit balance: the credit.
    #[serde(skip_serializing_if = "Option::is_none")]
    amounts: Option<Vec<Money>>,
    /// Overdue: days since the oldest one's due date.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 45)]
    oldest_days_overdue: Option<i64>,
    /// Overdue: the aging bucket of the oldest, `1-30`, `31-60`, `61-90` or `90+`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "31-60")]
    aging_bucket: Option<&'static str>,
    /// Tax pending: the day the oldest one last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "2026-03-10", format = Date)]
    waiting_since: Option<String>,
    /// Tax failed: the tax service's last error, and the attempts made.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "AvaTax answered 400: JurisdictionNotFoundError")]
    last_error: Option<String>,
    /// Tax failed: attempts made on its invoices.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 3)]
    attempts: Option<i64>,
}

impl From<&BillingIssue> for IssueReason {
    fn from(r: &BillingIssue) -> Self {
        let mut reason = IssueReason {
            code: r.code(),
            invoices: None,
            amounts: None,
            oldest_days_overdue: None,
            aging_bucket: None,
            waiting_since: None,
            last_error: None,
            attempts: None,
        };
        match r {
            BillingIssue::Overdue {
                invoices,
                amount,
                oldest_days_overdue,
                bucket,
            } => {
                reason.invoices = Some(*invoices);
                reason.amounts = Some(amounts(amount));
                reason.oldest_days_overdue = Some(*oldest_days_overdue);
                reason.aging_bucket = Some(bucket.name());
            }
            BillingIssue::TaxPending { invoices, oldest } => {
                reason.invoices = Some(*invoices);
                reason.waiting_since = Some(day(*oldest));
            }
            BillingIssue::TaxFailed {
                invoices,
                attempts,
                last_error,
            } => {
                reason.invoices = Some(*invoices);
                reason.attempts = Some(*attempts);
                reason.last_error = Some(last_error.clone());
            }
            BillingIssue::StatusBillingIssues => {}
            BillingIssue::CreditBalance(credit) => {
                reason.amounts = Some(vec![Money::from(*credit)]);
            }
        }
        reason
    }
}

/// An account with billing issues.
#[derive(Serialize, ToSchema)]
pub struct AccountIssues {
    /// The account.
    #[serde(flatten)]
    account: AccountRef,
    /// `AccountStatus`: 1 Active, 2 Inactive, 3 Billing issues.
    #[schema(example = 1)]
    account_status: i64,
    /// Each reason, most pressing first.
    reasons: Vec<IssueReason>,
}

impl From<&app::AccountIssues> for AccountIssues {
    fn from(a: &app::AccountIssues) -> Self {
        AccountIssues {
            account: AccountRef::from(&a.account),
            account_status: a.account.fields.status.code(),
            reasons: a.reasons.iter().map(IssueReason::from).collect(),
        }
    }
}

/// Accounts with billing issues
///
/// Accounts (not deleted) with at least one reason: Posted invoices past their
/// due date, invoices stuck in Pending Tax for over a day or failed by the tax
/// service, `AccountStatus` 3, or unused credit. Most overdue first.
#[utoipa::path(get, path = "/v1/insights/billing-issues", tag = "Insights",
    params(RankedOptions),
    responses((status = 200, description = "Accounts with their reasons", body = Ranked<AccountIssues>)))]
pub async fn billing_issues(call: Call) -> Response {
    call.read(async |call| {
        let p = call.query::<RankedOptions>(false)?;
        let ranked = call
            .app
            .billing_issues(&call.tenant, limit(&p)?)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Ranked::<AccountIssues>::reply(call, &ranked))
    })
    .await
}

/// An upsell signal and its evidence.
#[derive(Serialize, ToSchema)]
pub struct Signal {
    /// `renewal_soon`, `expanded`, `monthly_for_a_year`, `single_product` or
    /// `discount_ending`.
    #[schema(example = "renewal_soon")]
    code: &'static str,
    /// What the signal adds to the score.
    #[schema(example = 30)]
    weight: u32,
    /// The evidence, in words.
    #[schema(example = "plan SUB-310 ends on 2026-04-01, in 17 days")]
    evidence: String,
}

impl From<&UpsellSignal> for Signal {
    fn from(s: &UpsellSignal) -> Self {
        let evidence = match s {
            UpsellSignal::RenewalSoon {
                plan_ext_id,
                end_date,
                days_left,
                ..
            } => format!("plan {plan_ext_id} ends on {end_date}, in {days_left} days"),
            UpsellSignal::Expanded { currency, from, to } => format!(
                "MRR rose from {} to {} {} in the last 90 days",
                money(*from, *currency),
                money(*to, *currency),
                currency.code()
            ),
            UpsellSignal::MonthlyForAYear {
                item_ext_id,
                start_date,
                months,
            } => format!("item {item_ext_id} billed monthly since {start_date} ({months} months)"),
            UpsellSignal::SingleProduct { product_code } => {
                format!("every item in force is product {product_code}")
            }
            UpsellSignal::DiscountEnding {
                item_ext_id,
                discount_percent,
                end_date,
            } => format!(
                "item {item_ext_id} has a {}% discount and ends on {end_date}",
                decimal(*discount_percent)
            ),
        };
        Signal {
            code: s.code(),
            weight: s.weight(),
            evidence,
        }
    }
}

/// An account worth talking to about buying more.
#[derive(Serialize, ToSchema)]
pub struct UpsellCandidate {
    /// The account.
    #[serde(flatten)]
    account: AccountRef,
    /// The sum of its signals' weights.
    #[schema(example = 50)]
    score: u32,
    /// Its MRR today, per currency.
    mrr: Vec<Money>,
    /// Each signal, with its evidence.
    signals: Vec<Signal>,
}

impl From<&app::UpsellCandidate> for UpsellCandidate {
    fn from(c: &app::UpsellCandidate) -> Self {
        UpsellCandidate {
            account: AccountRef::from(&c.account),
            score: c.score,
            mrr: amounts(&c.mrr),
            signals: c.signals.iter().map(Signal::from).collect(),
        }
    }
}

/// Upsell candidates
///
/// Billable accounts with items in force and no billing issues, with
/// explainable signals: a renewal within 90 days, MRR expanded in the last 90
/// days, 12+ months on monthly billing, a single product, a discount over 20%
/// on an item whose term ends. Highest score (the sum of the signals' weights)
/// first.
#[utoipa::path(get, path = "/v1/insights/upsell-candidates", tag = "Insights",
    params(RankedOptions),
    responses((status = 200, description = "Accounts with their signals", body = Ranked<UpsellCandidate>)))]
pub async fn upsell_candidates(call: Call) -> Response {
    call.read(async |call| {
        let p = call.query::<RankedOptions>(false)?;
        let ranked = call
            .app
            .upsell_candidates(&call.tenant, limit(&p)?)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Ranked::<UpsellCandidate>::reply(call, &ranked))
    })
    .await
}
