//! Random billing histories (issue 10): books that evolve the way real ones do —
//! accounts in USD, EUR, JPY and BHD, plans with and without `BillingDay`, terms
//! and auto-renewal, items of every cadence billed in advance or in arrears, with
//! discounts, near month ends and leap days; upsells (backdated, future-dated,
//! `ProrationMode` 0), cancellations (dated, `CancelAt` 2, with and without
//! credit), item and plan renewals, plan cancellations, one-time items, edits
//! before the first invoice, invoice cancellations with and without `Rebill` —
//! with bill runs on rising dates, all through the real server (test clock) and
//! real storage. What must hold is checked without an oracle implementation:
//!
//! - every billed period sums to what the item's terms timeline says it costs,
//!   within one minor unit per line, and exactly the periods due by the last run
//!   under the item's own dates are billed (BILLING.md §8 invariant 1, and the
//!   renewal rule of §3: nothing past an item's own end);
//! - invoice totals add up (invariant 2); running the last bill run again adds
//!   nothing (invariant 3); credit is conserved per account, never negative;
//! - billing a fixed history up to D in one run or in many gives the same lines
//!   per period (invariant 4);
//! - cancelling every invoice of a run with `Rebill` 1 and running it again gives
//!   exactly the lines of the history without the cancellation (BILLING.md §6).
//!
//! `DYNABILL_HISTORIES` sets how many histories each property runs per backend
//! (default 100). A failure is shrunk by proptest to a few steps and printed as the
//! requests it made; keep it as a scenario in `tests/scenarios/`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;

use dynabill_app::model::RecordKey;
use dynabill_core::calendar::Span;
use dynabill_core::domain::BillingTiming;
use dynabill_core::money::Currency;
use jiff::ToSpan;
use jiff::civil::Date;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::helpers::{Backend, Cred, TestApp, spawn_with_test_clock_alone};

/// Dates near month ends and leap days, where calendars go wrong.
const STARTS: [&str; 10] = [
    "2024-01-31",
    "2024-02-28",
    "2024-02-29",
    "2023-12-31",
    "2024-03-31",
    "2024-11-30",
    "2025-01-15",
    "2023-02-28",
    "2024-05-01",
    "2025-08-31",
];
const CURRENCIES: [&str; 4] = ["USD", "EUR", "JPY", "BHD"];
const QUANTITIES: [&str; 6] = ["1", "2", "1.25", "3", "10", "0.5"];
const PRICES: [&str; 8] = [
    "100.00",
    "7.5",
    "1200.00",
    "0.10",
    "33.33",
    "9.99",
    "1000",
    "12345.678",
];
const ONE_TIME_PRICES: [&str; 4] = ["-50.00", "25.00", "0.99", "100"];
const BILLING_DAYS: [u8; 6] = [1, 15, 28, 29, 30, 31];
const DISCOUNTS: [&str; 5] = ["10", "25", "33.333333", "50", "100"];

/// Line types and request outcomes seen, printed with `DYNABILL_HISTORY_STATS=1`
/// (how much of billing the histories reach).
static STATS: std::sync::Mutex<BTreeMap<String, u64>> = std::sync::Mutex::new(BTreeMap::new());

fn count(what: String) {
    *STATS.lock().unwrap().entry(what).or_default() += 1;
}

fn histories() -> u32 {
    std::env::var("DYNABILL_HISTORIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100)
}

// ---------------------------------------------------------------------------
// What a history is made of.

#[derive(Clone, Debug)]
struct AccountSpec {
    currency: usize,
    per_plan: bool,
}

#[derive(Clone, Debug)]
struct TermSpec {
    months: i64,
    auto_renew: bool,
    renewal_months: i64,
}

#[derive(Clone, Debug)]
struct PlanSpec {
    account: Index,
    start_offset: i64,
    billing_day: Option<usize>,
    term: Option<TermSpec>,
}

#[derive(Clone, Debug)]
enum ItemEnd {
    /// No `EndDate` sent: the plan's end.
    Plan,
    /// An end of its own, this many days after the item's start.
    Own(i64),
}

#[derive(Clone, Debug)]
struct ItemSpec {
    plan: Index,
    quantity: usize,
    price: usize,
    period: i64,
    count: i64,
    arrears: bool,
    start_offset: Option<i64>,
    end: ItemEnd,
    discount: Option<usize>,
}

#[derive(Clone, Debug)]
enum CancelHow {
    /// `CancelDate` this many days from today.
    On(i64),
    /// `CancelAt` 2.
    EndOfBilledPeriod,
}

#[derive(Clone, Debug)]
enum Step {
    /// Today moves on by this many days; with `run`, the bill run for the new today.
    Advance {
        days: i64,
        run: bool,
    },
    NewItem(ItemSpec),
    Upsell {
        item: Index,
        quantity: Option<usize>,
        price: Option<usize>,
        effective: i64,
        prorate: bool,
    },
    Cancel {
        item: Index,
        how: CancelHow,
        credit: bool,
    },
    RenewItem {
        item: Index,
        months: Option<i64>,
    },
    RenewPlan {
        plan: Index,
        months: Option<i64>,
    },
    CancelPlan {
        plan: Index,
        offset: i64,
        credit: bool,
    },
    OneTime {
        plan: Index,
        quantity: usize,
        price: usize,
        charge: i64,
    },
    /// 10/110 with new terms (only before the first invoice).
    Update {
        item: Index,
        quantity: usize,
        price: usize,
    },
    /// 15/110 (only before the first invoice).
    ChangeDates {
        item: Index,
        start: i64,
    },
    /// 11/110 (only before the first invoice).
    Delete {
        item: Index,
    },
    /// 14/119 on the `nth` live invoice counted from the newest.
    CancelInvoice {
        nth: Index,
        rebill: bool,
    },
}

#[derive(Clone, Debug)]
struct History {
    start: usize,
    accounts: Vec<AccountSpec>,
    plans: Vec<PlanSpec>,
    items: Vec<ItemSpec>,
    steps: Vec<Step>,
}

fn account_spec() -> impl Strategy<Value = AccountSpec> {
    (0..CURRENCIES.len(), prop::bool::weighted(0.25))
        .prop_map(|(currency, per_plan)| AccountSpec { currency, per_plan })
}

fn plan_spec() -> impl Strategy<Value = PlanSpec> {
    let term = (1i64..=14, prop::bool::weighted(0.7), 1i64..=12).prop_map(
        |(months, auto_renew, renewal_months)| TermSpec {
            months,
            auto_renew,
            renewal_months,
        },
    );
    (
        any::<Index>(),
        -20i64..=20,
        prop::option::weighted(0.5, 0..BILLING_DAYS.len()),
        prop::option::weighted(0.6, term),
    )
        .prop_map(|(account, start_offset, billing_day, term)| PlanSpec {
            account,
            start_offset,
            billing_day,
            term,
        })
}

fn item_spec() -> impl Strategy<Value = ItemSpec> {
    (
        any::<Index>(),
        0..QUANTITIES.len(),
        0..PRICES.len(),
        prop_oneof![4 => 1i64..=4, 1 => 5i64..=6],
        prop_oneof![6 => Just(1i64), 2 => 2i64..=3, 1 => 4i64..=13],
        prop::bool::weighted(0.3),
        prop::option::weighted(0.4, 0i64..=45),
        prop_oneof![2 => Just(ItemEnd::Plan), 1 => (10i64..=400).prop_map(ItemEnd::Own)],
        prop::option::weighted(0.2, 0..DISCOUNTS.len()),
    )
        .prop_map(
            |(plan, quantity, price, period, count, arrears, start_offset, end, discount)| {
                ItemSpec {
                    plan,
                    quantity,
                    price,
                    period,
                    count,
                    arrears,
                    start_offset,
                    end,
                    discount,
                }
            },
        )
}

/// The steps of a history. `dynamic`: today moves and bill runs happen between
/// steps, and invoices may be cancelled; otherwise every step happens on the first
/// day, before any bill run.
fn step(dynamic: bool) -> BoxedStrategy<Step> {
    let upsell = (
        any::<Index>(),
        prop::option::weighted(0.7, 0..QUANTITIES.len()),
        prop::option::weighted(0.5, 0..PRICES.len()),
        -60i64..=60,
        prop::bool::weighted(0.8),
    )
        .prop_filter_map(
            "an upsell names a quantity or a price",
            |(item, q, p, effective, prorate)| {
                (q.is_some() || p.is_some()).then_some(Step::Upsell {
                    item,
                    quantity: q,
                    price: p,
                    effective,
                    prorate,
                })
            },
        );
    let cancel = (
        any::<Index>(),
        prop_oneof![3 => (-40i64..=60).prop_map(CancelHow::On), 1 => Just(CancelHow::EndOfBilledPeriod)],
        prop::bool::weighted(0.7),
    )
        .prop_map(|(item, how, credit)| Step::Cancel { item, how, credit });
    let renew_item = (any::<Index>(), prop::option::weighted(0.5, 1i64..=12))
        .prop_map(|(item, months)| Step::RenewItem { item, months });
    let renew_plan = (any::<Index>(), prop::option::weighted(0.3, 1i64..=12))
        .prop_map(|(plan, months)| Step::RenewPlan { plan, months });
    let cancel_plan = (any::<Index>(), -20i64..=40, prop::bool::weighted(0.7)).prop_map(
        |(plan, offset, credit)| Step::CancelPlan {
            plan,
            offset,
            credit,
        },
    );
    let one_time = (
        any::<Index>(),
        0..QUANTITIES.len(),
        0..ONE_TIME_PRICES.len(),
        -10i64..=30,
    )
        .prop_map(|(plan, quantity, price, charge)| Step::OneTime {
            plan,
            quantity,
            price,
            charge,
        });
    let update = (any::<Index>(), 0..QUANTITIES.len(), 0..PRICES.len()).prop_map(
        |(item, quantity, price)| Step::Update {
            item,
            quantity,
            price,
        },
    );
    let change_dates =
        (any::<Index>(), -10i64..=30).prop_map(|(item, start)| Step::ChangeDates { item, start });
    let delete = any::<Index>().prop_map(|item| Step::Delete { item });
    if !dynamic {
        return prop_oneof![
            2 => item_spec().prop_map(Step::NewItem),
            4 => upsell,
            2 => cancel,
            2 => renew_item,
            1 => renew_plan,
            1 => cancel_plan,
            2 => one_time,
            1 => update,
            1 => change_dates,
            1 => delete,
        ]
        .boxed();
    }
    let advance =
        (1i64..=45, prop::bool::weighted(0.75)).prop_map(|(days, run)| Step::Advance { days, run });
    let cancel_invoice = (any::<Index>(), prop::bool::weighted(0.6))
        .prop_map(|(nth, rebill)| Step::CancelInvoice { nth, rebill });
    prop_oneof![
        8 => advance,
        1 => item_spec().prop_map(Step::NewItem),
        4 => upsell,
        2 => cancel,
        2 => renew_item,
        1 => renew_plan,
        1 => cancel_plan,
        2 => one_time,
        1 => update,
        1 => change_dates,
        1 => delete,
        2 => cancel_invoice,
    ]
    .boxed()
}

fn history(dynamic: bool, steps: usize) -> impl Strategy<Value = History> {
    (
        0..STARTS.len(),
        prop::collection::vec(account_spec(), 1..=3),
        prop::collection::vec(plan_spec(), 1..=3),
        prop::collection::vec(item_spec(), 1..=4),
        prop::collection::vec(step(dynamic), 0..=steps),
    )
        .prop_map(|(start, accounts, plans, items, steps)| History {
            start,
            accounts,
            plans,
            items,
            steps,
        })
}

// ---------------------------------------------------------------------------
// Playing a history through the server.

fn day(d: Date) -> String {
    d.to_string()
}

fn plus(d: Date, days: i64) -> Date {
    d.checked_add(days.days()).expect("a date in range")
}

fn decimal(v: &Value) -> Decimal {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .unwrap_or_else(|e| panic!("{text} is not a decimal: {e}"))
}

/// One history being played for one tenant.
struct Player<'a> {
    app: &'a TestApp,
    cred: Cred,
    today: Date,
    accounts: Vec<String>,
    /// Plan ExtID and its account's index.
    plans: Vec<String>,
    items: Vec<String>,
    one_time: usize,
    /// Every request made, for the report of a failure.
    log: Vec<String>,
    /// Items cancelled without credit (their billed days stay billed).
    without_credit: BTreeSet<String>,
    /// Invoices cancelled with `Rebill` 0 (their periods stay settled, unbilled).
    kept_settled: BTreeSet<String>,
    /// The invoices the last bill run made.
    last_run: Vec<String>,
}

impl<'a> Player<'a> {
    async fn new(app: &'a TestApp, history: &History) -> Player<'a> {
        let cred = app.new_tenant("history").await;
        let today = Date::from_str(STARTS[history.start]).unwrap();
        let mut player = Player {
            app,
            cred,
            today,
            accounts: Vec::new(),
            plans: Vec::new(),
            items: Vec::new(),
            one_time: 0,
            log: Vec::new(),
            without_credit: BTreeSet::new(),
            kept_settled: BTreeSet::new(),
            last_run: Vec::new(),
        };
        player.set_today(today).await;
        for (n, spec) in history.accounts.iter().enumerate() {
            let ext = format!("A{n}");
            player
                .post(json!({
                    "api_code": 10, "entity_code": 69, "ExtID": ext, "AccountName": ext,
                    "AccountType": 1, "AccountStatus": 1, "Email": "billing@example.com",
                    "Currency": CURRENCIES[spec.currency],
                    "InvoiceGrouping": if spec.per_plan { 0 } else { 1 },
                }))
                .await;
            player.accounts.push(ext);
        }
        for (n, spec) in history.plans.iter().enumerate() {
            let ext = format!("P{n}");
            let start = plus(today, spec.start_offset);
            let mut body = json!({
                "api_code": 10, "entity_code": 71, "ExtID": ext,
                "AccountExtID": spec.account.get(&player.accounts), "StartDate": day(start),
            });
            if let Some(d) = spec.billing_day {
                body["BillingDay"] = json!(BILLING_DAYS[d]);
            }
            if let Some(term) = &spec.term {
                let end = start.checked_add(term.months.months()).unwrap();
                body["EndDate"] = json!(day(end));
                body["AutoRenew"] = json!(u8::from(term.auto_renew));
                body["RenewalTermMonths"] = json!(term.renewal_months);
            }
            if player.post(body).await {
                player.plans.push(ext);
            }
        }
        for spec in &history.items {
            player.new_item(spec).await;
        }
        player
    }

    async fn set_today(&mut self, today: Date) {
        self.today = today;
        self.clock(json!({"Today": day(today)})).await;
    }

    /// Runs the bill run for today, after asking for its preview: the run must
    /// create exactly the lines the preview showed (auto-renewals included).
    async fn bill_run(&mut self) {
        let before: BTreeSet<String> = self.invoice_ids().await;
        let previewed = self.preview().await;
        self.clock(json!({"Today": day(self.today), "BillRun": 1}))
            .await;
        self.last_run = self
            .invoice_ids()
            .await
            .into_iter()
            .filter(|id| !before.contains(id))
            .collect();
        let created: Vec<Value> = self
            .invoices()
            .await
            .into_iter()
            .filter(|i| self.last_run.iter().any(|id| i["ID"] == json!(id)))
            .collect();
        assert_eq!(
            live_lines(&created),
            previewed,
            "the bill run created what its preview showed\nrequests:\n{}",
            self.report()
        );
    }

    /// The lines a bill run for today would create, by the preview (which writes nothing).
    async fn preview(&self) -> Vec<Line> {
        let app = &self.app.app;
        let tenant = app.tenant_by_app_key(&self.cred.app_key).await.unwrap();
        let accounts = app
            .store()
            .billable_accounts(tenant.id, None, 1000)
            .await
            .unwrap();
        let bills = app
            .preview_bills(&tenant, self.today, &accounts)
            .await
            .unwrap();
        let mut lines: Vec<Line> = bills
            .iter()
            .flat_map(|bill| &bill.invoices)
            .flat_map(|invoice| {
                let unit = Decimal::new(1, invoice.currency.minor_unit());
                invoice.lines.iter().map(move |l| Line {
                    unit,
                    item: l.item_ext_id.clone(),
                    period_start: l.period.map(|(start, _)| day(start)).unwrap_or_default(),
                    line_type: l.line_type.code(),
                    service_start: day(l.service_start),
                    // The wire shows the last day of service (the end is exclusive).
                    service_end: day(l.service_end.yesterday().unwrap()),
                    amount: l.amount,
                })
            })
            .collect();
        lines.sort();
        lines
    }

    /// Moves today past every change the items know of (a change dated after the
    /// last bill run is not yet billed, by design), for the final checks.
    async fn advance_past_every_change(&mut self) {
        let app = &self.app.app;
        let tenant = app.tenant_by_app_key(&self.cred.app_key).await.unwrap();
        let mut horizon = self.today;
        for ext in &self.items {
            let item = app
                .get_recurring_item(&tenant, &RecordKey::ExtId(ext.clone()), true)
                .await
                .unwrap();
            for change in &item.changes {
                horizon = horizon.max(change.effective_date);
            }
        }
        if horizon > self.today {
            self.set_today(horizon).await;
        }
    }

    async fn invoice_ids(&self) -> BTreeSet<String> {
        self.invoices()
            .await
            .iter()
            .map(|i| i["ID"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn clock(&mut self, body: Value) {
        self.log.push(format!("testclock {body}"));
        let response = self
            .app
            .client
            .post(format!("{}/api/testclock", self.app.base))
            .header("AppKey", &self.cred.app_key)
            .header("UserName", &self.cred.user)
            .header("AccessToken", &self.cred.token)
            .json(&body)
            .send()
            .await
            .expect("POST /api/testclock");
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{body}: {status} {text}");
    }

    /// A POST that may fail with a method error (the history asked for something
    /// the current state refuses), never with an API error. True if it succeeded.
    async fn post(&mut self, body: Value) -> bool {
        let (status, reply) = self.app.post_as(&self.cred, body.clone()).await;
        assert_eq!(status.as_u16(), 200, "{body}: {reply}");
        assert_eq!(reply["API_STATUS"], json!(1), "{body}: {reply}");
        let ok = reply["METHOD_STATUS"] == json!(1);
        count(format!(
            "request {}/{} {}",
            body["api_code"],
            body["entity_code"],
            if ok { "ok" } else { "refused" }
        ));
        let outcome = if ok {
            "ok".to_owned()
        } else {
            format!("error {}", reply["METHOD_ERROR"])
        };
        self.log.push(format!("{body} -> {outcome}"));
        ok
    }

    async fn new_item(&mut self, spec: &ItemSpec) {
        if self.plans.is_empty() {
            return;
        }
        let ext = format!("I{}", self.items.len());
        let plan = spec.plan.get(&self.plans).clone();
        let mut body = json!({
            "api_code": 10, "entity_code": 110, "ExtID": ext, "PlanExtID": plan,
            "ProductCode": "SKU", "ItemName": ext,
            "Quantity": QUANTITIES[spec.quantity], "UnitPrice": PRICES[spec.price],
            "BillingPeriod": spec.period, "BillingPeriodCount": spec.count,
            "BillingTiming": if spec.arrears { 2 } else { 1 },
        });
        let plan_start = self.plan_start(&plan).await;
        let start = spec.start_offset.map(|d| plus(plan_start, d));
        if let Some(start) = start {
            body["StartDate"] = json!(day(start));
        }
        if let ItemEnd::Own(days) = spec.end {
            body["EndDate"] = json!(day(plus(start.unwrap_or(plan_start), days)));
        }
        if let Some(d) = spec.discount {
            body["DiscountPercent"] = json!(DISCOUNTS[d]);
        }
        if self.post(body).await {
            self.items.push(ext);
        }
    }

    async fn plan_start(&self, plan: &str) -> Date {
        let (_, reply) = self
            .app
            .get_as(
                &self.cred,
                &format!("api_code=3&entity_code=71&ExtID={plan}"),
            )
            .await;
        Date::from_str(reply["DATA"][0]["StartDate"].as_str().unwrap()).unwrap()
    }

    async fn play(&mut self, step: &Step) {
        let today = self.today;
        match step {
            Step::Advance { days, run } => {
                self.set_today(plus(today, *days)).await;
                if *run {
                    self.bill_run().await;
                }
            }
            Step::NewItem(spec) => self.new_item(spec).await,
            Step::Upsell {
                item,
                quantity,
                price,
                effective,
                prorate,
            } => {
                let Some(ext) = pick(item, &self.items) else {
                    return;
                };
                let mut body = json!({
                    "api_code": 13, "entity_code": 110, "ExtID": ext,
                    "EffectiveDate": day(plus(today, *effective)),
                    "ProrationMode": u8::from(*prorate),
                });
                if let Some(q) = quantity {
                    body["Quantity"] = json!(QUANTITIES[*q]);
                }
                if let Some(p) = price {
                    body["UnitPrice"] = json!(PRICES[*p]);
                }
                self.post(body).await;
            }
            Step::Cancel { item, how, credit } => {
                let Some(ext) = pick(item, &self.items) else {
                    return;
                };
                let mut body = json!({
                    "api_code": 14, "entity_code": 110, "ExtID": ext,
                    "CreditMode": u8::from(*credit),
                });
                match how {
                    CancelHow::On(offset) => body["CancelDate"] = json!(day(plus(today, *offset))),
                    CancelHow::EndOfBilledPeriod => body["CancelAt"] = json!(2),
                }
                if self.post(body).await && !credit {
                    self.without_credit.insert(ext);
                }
            }
            Step::RenewItem { item, months } => {
                let Some(ext) = pick(item, &self.items) else {
                    return;
                };
                let mut body = json!({"api_code": 12, "entity_code": 110, "ExtID": ext});
                if let Some(m) = months {
                    body["RenewalTermMonths"] = json!(m);
                }
                self.post(body).await;
            }
            Step::RenewPlan { plan, months } => {
                let Some(ext) = pick(plan, &self.plans) else {
                    return;
                };
                let mut body = json!({"api_code": 12, "entity_code": 71, "ExtID": ext});
                if let Some(m) = months {
                    body["RenewalTermMonths"] = json!(m);
                }
                self.post(body).await;
            }
            Step::CancelPlan {
                plan,
                offset,
                credit,
            } => {
                let Some(ext) = pick(plan, &self.plans) else {
                    return;
                };
                let body = json!({
                    "api_code": 14, "entity_code": 71, "ExtID": ext,
                    "CancelDate": day(plus(today, *offset)), "CreditMode": u8::from(*credit),
                });
                if self.post(body).await && !credit {
                    // Every item of the plan may have been cancelled without credit.
                    let items = self.items_of(&ext).await;
                    self.without_credit.extend(items);
                }
            }
            Step::OneTime {
                plan,
                quantity,
                price,
                charge,
            } => {
                let Some(ext) = pick(plan, &self.plans) else {
                    return;
                };
                self.one_time += 1;
                let body = json!({
                    "api_code": 10, "entity_code": 75, "ExtID": format!("O{}", self.one_time),
                    "PlanExtID": ext, "ProductCode": "FEE", "ItemName": "Fee",
                    "Quantity": QUANTITIES[*quantity], "UnitPrice": ONE_TIME_PRICES[*price],
                    "ChargeDate": day(plus(today, *charge)),
                });
                self.post(body).await;
            }
            Step::Update {
                item,
                quantity,
                price,
            } => {
                let Some(ext) = pick(item, &self.items) else {
                    return;
                };
                let body = json!({
                    "api_code": 10, "entity_code": 110, "ExtID": ext,
                    "Quantity": QUANTITIES[*quantity], "UnitPrice": PRICES[*price],
                });
                self.post(body).await;
            }
            Step::ChangeDates { item, start } => {
                let Some(ext) = pick(item, &self.items) else {
                    return;
                };
                let body = json!({
                    "api_code": 15, "entity_code": 110, "ExtID": ext,
                    "StartDate": day(plus(today, *start)),
                });
                self.post(body).await;
            }
            Step::Delete { item } => {
                let Some(ext) = pick(item, &self.items) else {
                    return;
                };
                self.post(json!({"api_code": 11, "entity_code": 110, "ExtID": ext}))
                    .await;
            }
            Step::CancelInvoice { nth, rebill } => {
                // Ordered by what the invoices are, not by ID: PostgreSQL numbers the
                // invoices of two accounts committed at once in either order.
                let mut live: Vec<(String, String, String, String)> = self
                    .invoices()
                    .await
                    .iter()
                    .filter(|i| i["InvoiceStatus"] != json!(5))
                    .map(|i| {
                        (
                            i["InvoiceDate"].as_str().unwrap().to_owned(),
                            i["AccountExtID"].as_str().unwrap().to_owned(),
                            format!("{:?}", live_lines(std::slice::from_ref(i))),
                            i["ID"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect();
                live.sort();
                live.reverse();
                let live: Vec<String> = live.into_iter().map(|(_, _, _, id)| id).collect();
                let Some(id) = pick(nth, &live) else {
                    return;
                };
                let body = json!({
                    "api_code": 14, "entity_code": 119, "ID": id,
                    "Rebill": u8::from(*rebill), "CancelReason": "history",
                });
                if self.post(body).await && !rebill {
                    self.kept_settled.insert(id);
                }
            }
        }
    }

    /// Cancels, newest first, every invoice the last bill run made, with rebill.
    async fn cancel_last_run_with_rebill(&mut self) {
        let mut made: Vec<String> = self.last_run.clone();
        made.sort_by_key(|id| std::cmp::Reverse(id.parse::<i64>().unwrap()));
        for id in made {
            let body = json!({
                "api_code": 14, "entity_code": 119, "ID": id, "Rebill": 1,
                "CancelReason": "as if it never existed",
            });
            assert!(
                self.post(body.clone()).await,
                "{body} was refused: {:#?}",
                self.log
            );
        }
    }

    async fn items_of(&self, plan: &str) -> Vec<String> {
        let (_, reply) = self
            .app
            .get_as(
                &self.cred,
                &format!("api_code=3&entity_code=110&PlanExtID={plan}&PageSize=1000"),
            )
            .await;
        reply["DATA"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["ExtID"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Every invoice of the tenant with its lines, oldest first.
    async fn invoices(&self) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = "api_code=3&entity_code=119&IncludeLines=1&PageSize=1000".to_owned();
            if let Some(c) = &cursor {
                query.push_str(&format!("&Cursor={c}"));
            }
            let (_, reply) = self.app.get_as(&self.cred, &query).await;
            assert_eq!(reply["METHOD_STATUS"], json!(1), "{reply}");
            all.extend(reply["DATA"].as_array().unwrap().iter().cloned());
            match reply["NEXT_CURSOR"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return all,
            }
        }
    }

    fn report(&self) -> String {
        self.log.join("\n")
    }
}

fn pick<T: Clone>(index: &Index, list: &[T]) -> Option<T> {
    (!list.is_empty()).then(|| index.get(list).clone())
}

// ---------------------------------------------------------------------------
// What a played history billed, and the checks.

/// A line of a live invoice, as compared between histories.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Line {
    item: String,
    period_start: String,
    line_type: i64,
    service_start: String,
    service_end: String,
    amount: Decimal,
    /// The minor unit of the invoice's currency.
    unit: Decimal,
}

fn live_lines(invoices: &[Value]) -> Vec<Line> {
    let mut lines: Vec<Line> = invoices
        .iter()
        .filter(|i| i["InvoiceStatus"] != json!(5))
        .flat_map(|i| {
            let currency = Currency::from_str(i["Currency"].as_str().unwrap()).unwrap();
            let unit = Decimal::new(1, currency.minor_unit());
            i["Lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |l| (unit, l))
        })
        .map(|(unit, l)| Line {
            unit,
            item: l["ItemExtID"].as_str().unwrap_or_default().to_owned(),
            period_start: l["PeriodStart"].as_str().unwrap_or_default().to_owned(),
            line_type: l["LineType"].as_i64().unwrap(),
            service_start: l["ServiceStart"].as_str().unwrap().to_owned(),
            service_end: l["ServiceEnd"].as_str().unwrap().to_owned(),
            amount: decimal(&l["Amount"]),
        })
        .collect();
    lines.sort();
    lines
}

/// Per recurring item and period start: the sum of its live lines and their count.
fn period_sums(lines: &[Line]) -> BTreeMap<(String, String), (Decimal, usize)> {
    let mut sums: BTreeMap<(String, String), (Decimal, usize)> = BTreeMap::new();
    for line in lines.iter().filter(|l| l.line_type != 2) {
        let entry = sums
            .entry((line.item.clone(), line.period_start.clone()))
            .or_default();
        entry.0 += line.amount;
        entry.1 += 1;
    }
    sums
}

type Checked = Result<(), TestCaseError>;

fn fail(player: &Player<'_>, what: String) -> TestCaseError {
    TestCaseError::fail(format!("{what}\nrequests:\n{}", player.report()))
}

/// Invariants 2 and 3, credit conservation, and invariant 1 with completeness and
/// the items' own dates, after the history's last bill run on `player.today`.
async fn check_invariants(player: &mut Player<'_>) -> Checked {
    let invoices = player.invoices().await;
    for line in live_lines(&invoices) {
        count(format!("line type {}", line.line_type));
    }
    count("history".into());
    // Invariant 3: running the last run again adds nothing.
    player.bill_run().await;
    let again = player.invoices().await;
    if again.len() != invoices.len() {
        return Err(fail(
            player,
            format!(
                "the last bill run, run again, made {} more invoices: {:#}",
                again.len() - invoices.len(),
                Value::Array(again[invoices.len()..].to_vec())
            ),
        ));
    }
    // Invariant 2.
    for invoice in &invoices {
        let lines: Decimal = invoice["Lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| decimal(&l["Amount"]))
            .sum();
        let subtotal = decimal(&invoice["Subtotal"]);
        let total = decimal(&invoice["Total"]);
        if lines != subtotal || total != subtotal + decimal(&invoice["TaxTotal"]) {
            return Err(fail(player, format!("totals do not add up: {invoice:#}")));
        }
    }
    check_credit(player, &invoices).await?;
    check_periods(player, &invoices).await?;
    check_insights(player).await
}

/// A `/v1` read as the history's tenant.
async fn rest_get(player: &Player<'_>, path: &str) -> Value {
    let (status, _, body) = player
        .app
        .rest_as(&player.cred, "GET", path, None, &[])
        .await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// The exact figure of `currency` in a list of per-currency entries (0 when absent).
fn exact_of(list: &Value, currency: &str, field: &str) -> Decimal {
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["currency"] == currency)
        .map_or(Decimal::ZERO, |c| decimal(&c[field]))
}

/// Insights (issue 15) on the same book. MRR today recomputed from scratch from
/// the records the REST face shows (items in force, their terms today, their
/// plan's currency and renewal, their account's status) is the figure
/// `/v1/insights/mrr` reports; every month's movements add up exactly
/// (start + new + reactivation + expansion − contraction − churn = end); a month
/// ends where the next starts; and each month's end is the MRR reported for its
/// last day.
async fn check_insights(player: &Player<'_>) -> Checked {
    let today = player.today;
    let accounts = rest_get(player, "/v1/accounts?limit=1000").await;
    let plans = rest_get(player, "/v1/plans?limit=1000").await;
    let items = rest_get(player, "/v1/recurring-items?limit=1000").await;
    let billable: BTreeSet<i64> = accounts["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["account_status"] != 2)
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    let plan_of: BTreeMap<i64, &Value> = plans["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_i64().unwrap(), p))
        .collect();
    let mut expected: BTreeMap<String, Decimal> = BTreeMap::new();
    for item in items["data"].as_array().unwrap() {
        let plan = plan_of[&item["plan_id"].as_i64().unwrap()];
        let start = Date::from_str(item["start_date"].as_str().unwrap()).unwrap();
        let end = item["end_date"]
            .as_str()
            .map(|d| Date::from_str(d).unwrap());
        let cancelled = item["cancel_date"].is_string();
        let stops = cancelled || plan["auto_renew"] != true;
        let in_force = start <= today && !(stops && end.is_some_and(|end| end <= today));
        if !in_force || !billable.contains(&item["account_id"].as_i64().unwrap()) {
            continue;
        }
        let count = Decimal::from(item["billing_period_count"].as_u64().unwrap());
        let (times, months) = match item["billing_period"].as_i64().unwrap() {
            1 => (1, 1),
            2 => (1, 3),
            3 => (1, 6),
            4 => (1, 12),
            5 => (52, 12),
            _ => (365, 12),
        };
        let value = decimal(&item["quantity"])
            * decimal(&item["unit_price"])
            * (Decimal::ONE_HUNDRED - decimal(&item["discount_percent"]))
            * Decimal::from(times)
            / (Decimal::ONE_HUNDRED * Decimal::from(months) * count);
        // Kept to 12 places, half-up (docs/INSIGHTS.md).
        let value =
            value.round_dp_with_strategy(12, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        *expected
            .entry(plan["currency"].as_str().unwrap().to_owned())
            .or_default() += value;
    }
    let reported = rest_get(player, &format!("/v1/insights/mrr?date={}", day(today))).await;
    for (currency, value) in &expected {
        let got = exact_of(&reported["currencies"], currency, "mrr_exact");
        if got != *value {
            return Err(fail(
                player,
                format!(
                    "MRR in {currency} on {today}: {got} reported, {value} from the records: {reported:#}"
                ),
            ));
        }
    }
    count("insights checked".into());

    let from = today.first_of_month().checked_sub(6.months()).unwrap();
    let to = today.first_of_month().checked_add(2.months()).unwrap();
    let month = |d: Date| format!("{:04}-{:02}", d.year(), d.month());
    let report = rest_get(
        player,
        &format!(
            "/v1/insights/mrr-movements?from={}&to={}",
            month(from),
            month(to)
        ),
    )
    .await;
    let mut ends: BTreeMap<String, Decimal> = BTreeMap::new();
    for m in report["months"].as_array().unwrap() {
        let at_end = rest_get(
            player,
            &format!("/v1/insights/mrr?date={}", m["end_day"].as_str().unwrap()),
        )
        .await;
        for c in m["currencies"].as_array().unwrap() {
            let currency = c["currency"].as_str().unwrap().to_owned();
            let n = |k: &str| decimal(&c["exact"][k]);
            let sum = n("start") + n("new") + n("reactivation") + n("expansion")
                - n("contraction")
                - n("churn");
            let previous = ends.get(&currency).copied().unwrap_or(n("start"));
            let reported_end = exact_of(&at_end["currencies"], &currency, "mrr_exact");
            if sum != n("end") || previous != n("start") || reported_end != n("end") {
                return Err(fail(
                    player,
                    format!(
                        "movements of {} in {currency} do not add up (previous end {previous}, MRR on its last day {reported_end}): {c:#}",
                        m["month"]
                    ),
                ));
            }
            ends.insert(currency, n("end"));
        }
    }
    Ok(())
}

/// Σ CreditAdded − Σ CreditApplied over an account's live invoices is its balance.
async fn check_credit(player: &Player<'_>, invoices: &[Value]) -> Checked {
    for account in &player.accounts {
        let (_, reply) = player
            .app
            .get_as(
                &player.cred,
                &format!("api_code=3&entity_code=69&ExtID={account}"),
            )
            .await;
        let balance = decimal(&reply["DATA"][0]["CreditBalance"]);
        let moved: Decimal = invoices
            .iter()
            .filter(|i| i["AccountExtID"] == json!(account) && i["InvoiceStatus"] != json!(5))
            .map(|i| decimal(&i["CreditAdded"]) - decimal(&i["CreditApplied"]))
            .sum();
        if balance != moved || balance < Decimal::ZERO {
            return Err(fail(
                player,
                format!("account {account}: CreditBalance {balance}, invoices moved {moved}"),
            ));
        }
    }
    Ok(())
}

/// Invariant 1: every billed period of an item sums to its cost under the item's
/// final terms timeline (within a minor unit per line), and exactly the periods due
/// by today under the item's own dates are billed (so nothing is billed past an end
/// that only 12/110 could have moved). Items cancelled without
/// credit, and items with lines on invoices cancelled with `Rebill` 0, keep billed
/// days their timeline no longer has, by design: they are left out.
async fn check_periods(player: &Player<'_>, invoices: &[Value]) -> Checked {
    let app = &player.app.app;
    let tenant = app.tenant_by_app_key(&player.cred.app_key).await.unwrap();
    let settings = &tenant.settings;
    let lines = live_lines(invoices);
    let sums = period_sums(&lines);
    let kept: BTreeSet<String> = invoices
        .iter()
        .filter(|i| player.kept_settled.contains(i["ID"].as_str().unwrap()))
        .flat_map(|i| i["Lines"].as_array().unwrap().iter())
        .filter_map(|l| l["ItemExtID"].as_str().map(str::to_owned))
        .collect();
    for ext in &player.items {
        if player.without_credit.contains(ext) || kept.contains(ext) {
            continue;
        }
        let item = app
            .get_recurring_item(&tenant, &RecordKey::ExtId(ext.clone()), true)
            .await
            .unwrap();
        let own: BTreeMap<&String, &(Decimal, usize)> = sums
            .iter()
            .filter(|((i, _), _)| i == ext)
            .map(|((_, start), sum)| (start, sum))
            .collect();
        if item.deleted_at.is_some() {
            if !own.is_empty() {
                return Err(fail(player, format!("deleted item {ext} was billed")));
            }
            continue;
        }
        let plan = app
            .get_plan(&tenant, &RecordKey::Id(item.plan_id), true)
            .await
            .unwrap();
        let currency: Currency = plan.fields.currency;
        let unit = Decimal::new(1, currency.minor_unit());
        let grid = item.grid().unwrap();
        let timeline = item.timeline().unwrap();
        let start = item.fields.start_date;
        let end = item.fields.end_date;
        let until = match item.fields.timing {
            BillingTiming::InAdvance => plus(player.today, 1),
            BillingTiming::InArrears => player.today,
        };
        let due: Vec<Span> = grid
            .periods(start, end, until)
            .unwrap()
            .into_iter()
            .filter(|piece| {
                item.fields.timing == BillingTiming::InAdvance || piece.span().end() <= player.today
            })
            .map(|piece| piece.period())
            .collect();
        let due_starts: BTreeSet<String> = due.iter().map(|p| day(p.start())).collect();
        let billed_starts: BTreeSet<String> = own.keys().map(|s| (*s).clone()).collect();
        // A period billed past the item's end is one a cancellation credited whole.
        if !due_starts.is_subset(&billed_starts) {
            return Err(fail(
                player,
                format!(
                    "item {ext}: periods due by {} start {due_starts:?}, billed {billed_starts:?}",
                    player.today
                ),
            ));
        }
        let mut changes: Vec<Date> = item.changes.iter().map(|c| c.effective_date).collect();
        changes.sort();
        let mut periods = due;
        for start_text in billed_starts.difference(&due_starts) {
            let billed_start = Date::from_str(start_text).unwrap();
            periods.push(grid.period_containing(billed_start).unwrap());
        }
        for period in periods {
            // An in-arrears period cut short by an end that a renewal then moved is
            // billed its rest when the period ends, not before.
            if item.fields.timing == BillingTiming::InArrears && period.end() > player.today {
                continue;
            }
            let from = start.max(period.start());
            let to = end.map_or(period.end(), |e| e.min(period.end()));
            let span = if from < to {
                Span::new(from, to).unwrap()
            } else {
                Span::new(from, from).unwrap()
            };
            let mut cuts: Vec<Date> = changes
                .iter()
                .copied()
                .filter(|d| *d > span.start() && *d < span.end())
                .collect();
            cuts.insert(0, span.start());
            cuts.push(span.end());
            cuts.dedup();
            let mut cost = Decimal::ZERO;
            for pair in cuts.windows(2) {
                let terms = timeline.terms_at(pair[0]);
                let days = Decimal::from(Span::new(pair[0], pair[1]).unwrap().days());
                let fraction = days / Decimal::from(period.days());
                cost += terms.quantity()
                    * terms.unit_price()
                    * (Decimal::ONE_HUNDRED - terms.discount_percent())
                    / Decimal::ONE_HUNDRED
                    * fraction;
            }
            let (billed, count) = own[&day(period.start())];
            if (billed - cost).abs() > unit * Decimal::from(*count as u64) {
                return Err(fail(
                    player,
                    format!(
                        "item {ext}, period {period}: lines sum to {billed} ({count} lines), its terms cost {cost} ({:?} rounding, policy {:?})",
                        settings.rounding, settings.proration_policy
                    ),
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The properties.

type Property = for<'a> fn(&'a TestApp, Scenario) -> Pin<Box<dyn Future<Output = Checked> + 'a>>;

/// A history, and for the rebill property the bill run after which its invoices
/// are cancelled and billed again.
#[derive(Clone, Debug)]
struct Scenario {
    history: History,
    /// Days between the static history's bill runs.
    runs: Vec<i64>,
    redo: Index,
}

fn scenario(dynamic: bool) -> impl Strategy<Value = Scenario> {
    (
        history(dynamic, if dynamic { 40 } else { 12 }),
        prop::collection::vec(1i64..=60, 1..=8),
        any::<Index>(),
    )
        .prop_map(|(history, runs, redo)| Scenario {
            history,
            runs,
            redo,
        })
}

/// Runs `property` on `backend` for `DYNABILL_HISTORIES` scenarios; a failure is
/// shrunk to a few steps and reported with the requests it made.
fn run_property(backend: Backend, dynamic: bool, property: Property) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(app) = runtime.block_on(spawn_with_test_clock_alone(backend)) else {
        return;
    };
    let mut runner = TestRunner::new(Config {
        cases: histories(),
        failure_persistence: None,
        max_shrink_iters: 400,
        ..Config::default()
    });
    let result = runner.run(&scenario(dynamic), |s| runtime.block_on(property(&app, s)));
    runtime.block_on(app.stop());
    if std::env::var("DYNABILL_HISTORY_STATS").is_ok() {
        eprintln!("{backend:?} {:#?}", STATS.lock().unwrap());
    }
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Plays a dynamic history, then bills a day past every change it made.
async fn play_dynamic<'a>(app: &'a TestApp, s: &Scenario) -> Player<'a> {
    let mut player = Player::new(app, &s.history).await;
    for step in &s.history.steps {
        player.play(step).await;
    }
    player.advance_past_every_change().await;
    player.bill_run().await;
    player
}

fn random_histories_keep_the_billing_invariants(
    app: &TestApp,
    s: Scenario,
) -> Pin<Box<dyn Future<Output = Checked> + '_>> {
    Box::pin(async move {
        let mut player = play_dynamic(app, &s).await;
        check_invariants(&mut player).await
    })
}

fn rebilling_a_run_is_as_if_it_never_happened(
    app: &TestApp,
    s: Scenario,
) -> Pin<Box<dyn Future<Output = Checked> + '_>> {
    Box::pin(async move {
        // Both histories are played in step; the redone one cancels the chosen run's
        // invoices with rebill and runs it again, and from then on both must show the
        // same lines on their live invoices.
        let mut plain = Player::new(app, &s.history).await;
        let mut redone = Player::new(app, &s.history).await;
        let runs = s
            .history
            .steps
            .iter()
            .filter(|step| matches!(step, Step::Advance { run: true, .. }))
            .count()
            + 1;
        let chosen = s.redo.index(runs);
        let mut seen = 0;
        let mut steps: Vec<Option<&Step>> = s.history.steps.iter().map(Some).collect();
        steps.push(None);
        for step in steps {
            match step {
                Some(step) => {
                    plain.play(step).await;
                    redone.play(step).await;
                }
                None => {
                    plain.advance_past_every_change().await;
                    plain.bill_run().await;
                    redone.set_today(plain.today).await;
                    redone.bill_run().await;
                }
            }
            let is_run = step.is_none_or(|step| matches!(step, Step::Advance { run: true, .. }));
            if is_run {
                if seen == chosen {
                    redone.cancel_last_run_with_rebill().await;
                    redone.bill_run().await;
                }
                seen += 1;
            }
            if seen > chosen {
                same_lines(&plain, &redone).await?;
            }
        }
        check_invariants(&mut redone).await
    })
}

/// The two players' live invoices carry the same lines.
async fn same_lines(plain: &Player<'_>, redone: &Player<'_>) -> Checked {
    let want = live_lines(&plain.invoices().await);
    let got = live_lines(&redone.invoices().await);
    if want == got {
        return Ok(());
    }
    let only = |a: &[Line], b: &[Line]| -> Vec<Line> {
        a.iter().filter(|l| !b.contains(l)).cloned().collect()
    };
    Err(fail(
        redone,
        format!(
            "after cancelling a run's invoices with rebill and running it again, lines differ:\n only without: {:#?}\n only with: {:#?}\nrequests without:\n{}",
            only(&want, &got),
            only(&got, &want),
            plain.report()
        ),
    ))
}

fn billing_in_one_run_or_many_gives_the_same_periods(
    app: &TestApp,
    s: Scenario,
) -> Pin<Box<dyn Future<Output = Checked> + '_>> {
    Box::pin(async move {
        let mut many = Player::new(app, &s.history).await;
        let mut one = Player::new(app, &s.history).await;
        for step in &s.history.steps {
            many.play(step).await;
            one.play(step).await;
        }
        for days in &s.runs {
            let next = plus(many.today, *days);
            many.set_today(next).await;
            many.bill_run().await;
        }
        many.advance_past_every_change().await;
        many.bill_run().await;
        one.set_today(many.today).await;
        one.bill_run().await;
        let many_lines = live_lines(&many.invoices().await);
        let one_lines = live_lines(&one.invoices().await);
        let (a, b) = (period_sums(&many_lines), period_sums(&one_lines));
        let keys: BTreeSet<_> = a.keys().chain(b.keys()).collect();
        for key in keys {
            let (x, nx) = a.get(key).copied().unwrap_or_default();
            let (y, ny) = b.get(key).copied().unwrap_or_default();
            let unit = many_lines
                .iter()
                .find(|l| l.item == key.0)
                .map_or(Decimal::ONE, |l| l.unit);
            if (x - y).abs() > unit * Decimal::from((nx + ny) as u64) {
                return Err(fail(
                    &many,
                    format!(
                        "item {} period {}: {x} in {nx} lines over runs {:?}, {y} in {ny} lines in one run",
                        key.0, key.1, s.runs
                    ),
                ));
            }
        }
        let one_time = |lines: &[Line]| -> Vec<Line> {
            lines.iter().filter(|l| l.line_type == 2).cloned().collect()
        };
        if one_time(&many_lines) != one_time(&one_lines) {
            return Err(fail(
                &many,
                "one-time lines differ between one run and many".into(),
            ));
        }
        check_invariants(&mut many).await?;
        check_invariants(&mut one).await
    })
}

macro_rules! properties {
    ($($name:ident: $dynamic:expr),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::run_property(crate::helpers::Backend::Sqlite, $dynamic, super::$name);
            }

            #[test]
            fn postgres() {
                super::run_property(crate::helpers::Backend::Postgres, $dynamic, super::$name);
            }
        }
    )*};
}

properties!(
    random_histories_keep_the_billing_invariants: true,
    rebilling_a_run_is_as_if_it_never_happened: true,
    billing_in_one_run_or_many_gives_the_same_periods: false,
);
