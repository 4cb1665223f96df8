//! Property tests of BILLING.md §8 invariants 1 to 4 for bill runs, simulated against an
//! in-memory ledger: random items, random runs, random changes recorded between them.

use std::collections::{BTreeMap, BTreeSet};

use dynabill_core::billing::{
    BillableItem, ChangeEvent, ChangeKind, EntryKey, InvoiceLine, InvoiceTotals, LedgerEntry,
    LineSource, LineType, apply_credit, bill_item, group_lines,
};
use dynabill_core::calendar::{
    BillingDay, BillingPeriod, Cadence, Grid, Piece, Pricing, ProrationPolicy, Span, Terms,
    TermsChange, TermsTimeline,
};
use dynabill_core::domain::{
    BillingTiming, InvoiceGrouping, OneTimeItemId, PlanId, RecurringItemId,
};
use dynabill_core::money::{Currency, Rounding};
use jiff::ToSpan;
use jiff::civil::{Date, date};
use proptest::prelude::*;
use rust_decimal::Decimal;

const ITEM: RecurringItemId = RecurringItemId(42);

fn plus_days(day: Date, days: i64) -> Date {
    day.checked_add(days.days())
        .expect("test dates stay in range")
}

/// An item as created: grid, dates, timing and first terms (quantity, price in cents, discount).
#[derive(Clone, Debug)]
struct Created {
    cadence: Cadence,
    billing_day: Option<u32>,
    start: Date,
    end: Option<Date>,
    timing: BillingTiming,
    quantity: i64,
    unit_price: i64,
    discount: i64,
}

fn created() -> impl Strategy<Value = Created> {
    let period = prop_oneof![
        4 => Just(BillingPeriod::Monthly),
        2 => Just(BillingPeriod::Quarterly),
        1 => Just(BillingPeriod::Annual),
        2 => Just(BillingPeriod::Weekly),
        1 => Just(BillingPeriod::Daily),
    ];
    (
        period,
        1u32..=2,
        proptest::option::of(1u32..=31),
        0i64..=400,
        // Mostly items with an end: their renewals reopen periods the old end cut short.
        proptest::option::weighted(0.7, 1i64..=400),
        prop_oneof![
            Just(BillingTiming::InAdvance),
            Just(BillingTiming::InArrears)
        ],
        (
            1i64..=20,
            0i64..=100_000,
            prop_oneof![3 => Just(0i64), 1 => 1i64..=50],
        ),
    )
        .prop_map(
            |(
                period,
                count,
                billing_day,
                offset,
                length,
                timing,
                (quantity, unit_price, discount),
            )| {
                let start = plus_days(date(2024, 1, 1), offset);
                Created {
                    cadence: Cadence::new(period, count).expect("count in range"),
                    billing_day,
                    start,
                    end: length.map(|days| plus_days(start, days)),
                    timing,
                    quantity,
                    unit_price,
                    discount,
                }
            },
        )
}

fn pricing() -> impl Strategy<Value = Pricing> {
    (
        prop_oneof![Just("USD"), Just("JPY"), Just("KWD")],
        prop_oneof![Just(Rounding::HalfUp), Just(Rounding::HalfEven)],
    )
        .prop_map(|(code, rounding)| Pricing {
            // Sums of stretches equal the whole only when day fractions add up: actual days.
            policy: ProrationPolicy::ActualDays,
            currency: code.parse().expect("known currency"),
            rounding,
        })
}

impl Created {
    fn item(&self) -> BillableItem {
        let billing_day = self
            .billing_day
            .map(|d| BillingDay::new(d).expect("1..=31"));
        BillableItem {
            id: ITEM,
            plan: PlanId(1),
            grid: Grid::new(self.cadence, self.start, billing_day),
            timing: self.timing,
            start: self.start,
            end: self.end,
            changes: vec![ChangeEvent {
                seq: 1,
                effective: self.start,
                kind: ChangeKind::TermsSet {
                    quantity: Some(Decimal::from(self.quantity)),
                    unit_price: Some(Decimal::new(self.unit_price, 2)),
                    discount_percent: Some(Decimal::from(self.discount)),
                },
            }],
        }
    }
}

/// What happens between bill runs, as drawn.
#[derive(Clone, Debug)]
enum Op {
    /// Moves the run date forward by this many days and bills.
    Run(i64),
    /// Moves the run date to this many days after the item's end (if later) and bills, so that
    /// a renewal afterwards reopens the period the end cut short.
    RunPastEnd(i64),
    /// Upsell effective this many days from the run date (backdated when negative).
    Upsell {
        offset: i64,
        quantity: Option<i64>,
        unit_price: Option<i64>,
    },
    /// Cancel this many days from the run date.
    Cancel { offset: i64, credit: bool },
    /// Renew for this many more days, maybe at a new price.
    Renew { days: i64, unit_price: Option<i64> },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0i64..=75).prop_map(Op::Run),
        1 => (0i64..=20).prop_map(Op::RunPastEnd),
        3 => (-120i64..=90, proptest::option::of(1i64..=20), proptest::option::of(0i64..=100_000))
            .prop_map(|(offset, quantity, unit_price)| Op::Upsell { offset, quantity, unit_price }),
        1 => (-90i64..=60, any::<bool>()).prop_map(|(offset, credit)| Op::Cancel { offset, credit }),
        2 => (1i64..=200, proptest::option::of(0i64..=100_000))
            .prop_map(|(days, unit_price)| Op::Renew { days, unit_price }),
    ]
}

/// An item's history as the app would record it: no change after a cancellation, upsells inside
/// the item's dates, cancellations between its start and end, renewals of items with an end.
struct History {
    item: BillableItem,
    cancelled: bool,
}

impl History {
    fn new(created: &Created) -> Self {
        Self {
            item: created.item(),
            cancelled: false,
        }
    }

    fn record(&mut self, kind: ChangeKind, effective: Date) {
        let seq = self.item.changes.last().map_or(1, |c| c.seq + 1);
        self.item.changes.push(ChangeEvent {
            seq,
            effective,
            kind,
        });
    }

    /// Applies a change op relative to `today`; runs are the caller's business.
    fn apply(&mut self, op: &Op, today: Date) {
        if self.cancelled {
            return;
        }
        match *op {
            Op::Run(_) | Op::RunPastEnd(_) => {}
            Op::Upsell {
                offset,
                quantity,
                unit_price,
            } => {
                let effective = plus_days(today, offset).max(self.item.start);
                if self.item.end.is_some_and(|end| effective >= end) {
                    return;
                }
                let quantity = match (quantity, unit_price) {
                    (None, None) => Some(2),
                    _ => quantity,
                };
                self.record(
                    ChangeKind::TermsSet {
                        quantity: quantity.map(Decimal::from),
                        unit_price: unit_price.map(|p| Decimal::new(p, 2)),
                        discount_percent: None,
                    },
                    effective,
                );
            }
            Op::Cancel { offset, credit } => {
                let mut date = plus_days(today, offset).max(self.item.start);
                if let Some(end) = self.item.end {
                    date = date.min(end);
                }
                self.item.end = Some(date);
                self.cancelled = true;
                self.record(ChangeKind::Cancellation { credit }, date);
            }
            Op::Renew { days, unit_price } => {
                let Some(old_end) = self.item.end else {
                    return;
                };
                self.item.end = Some(plus_days(old_end, days));
                let kind = match unit_price {
                    Some(price) => ChangeKind::TermsSet {
                        quantity: None,
                        unit_price: Some(Decimal::new(price, 2)),
                        discount_percent: None,
                    },
                    None => ChangeKind::Other,
                };
                self.record(kind, old_end);
            }
        }
    }

    fn last_date(&self) -> Date {
        let mut last = self.item.end.unwrap_or(self.item.start);
        for change in &self.item.changes {
            last = last.max(change.effective);
        }
        last
    }
}

/// Bills `item` on `run_date` against `ledger`, checks invariant 3 (again adds nothing, no key
/// billed twice), and records the new entries.
fn run(
    item: &BillableItem,
    ledger: &mut Vec<LedgerEntry>,
    run_date: Date,
    pricing: Pricing,
) -> Result<Vec<InvoiceLine>, TestCaseError> {
    let bill = bill_item(item, ledger, run_date, pricing)
        .map_err(|e| TestCaseError::fail(format!("run on {run_date} failed: {e}")))?;
    let mut keys: BTreeSet<(Date, EntryKey)> =
        ledger.iter().map(|e| (e.period_start, e.entry)).collect();
    for entry in &bill.entries {
        prop_assert!(
            keys.insert((entry.period_start, entry.entry)),
            "run on {} wrote {:?} twice",
            run_date,
            entry
        );
    }
    ledger.extend(bill.entries.iter().copied());
    let again = bill_item(item, ledger, run_date, pricing)
        .map_err(|e| TestCaseError::fail(format!("repeated run failed: {e}")))?;
    prop_assert!(
        again.is_empty(),
        "run on {} repeated billed {:?}",
        run_date,
        again
    );
    Ok(bill.lines)
}

/// The terms timeline of the whole history, built the plain way: the first change naming a
/// field gives the initial terms, every later one is pushed in the order made.
fn final_timeline(item: &BillableItem) -> TermsTimeline {
    let mut timeline: Option<TermsTimeline> = None;
    for change in &item.changes {
        let ChangeKind::TermsSet {
            quantity,
            unit_price,
            discount_percent,
        } = change.kind
        else {
            continue;
        };
        match timeline.as_mut() {
            None => {
                let initial =
                    Terms::new(quantity.unwrap_or_default(), unit_price.unwrap_or_default())
                        .with_discount_percent(discount_percent.unwrap_or_default())
                        .expect("drawn discounts are valid");
                timeline = Some(TermsTimeline::new(initial));
            }
            Some(timeline) => {
                let mut step = TermsChange::new(change.effective);
                if let Some(q) = quantity {
                    step = step.with_quantity(q);
                }
                if let Some(p) = unit_price {
                    step = step.with_unit_price(p);
                }
                timeline.push(step);
            }
        }
    }
    timeline.expect("every item is created with terms")
}

/// The pieces of the item's current dates that a run on `run_date` must have billed.
fn due_pieces(item: &BillableItem, run_date: Date) -> Vec<Piece> {
    match item.timing {
        BillingTiming::InAdvance => item
            .grid
            .periods(item.start, item.end, plus_days(run_date, 1))
            .unwrap(),
        BillingTiming::InArrears => item
            .grid
            .periods(item.start, item.end, run_date)
            .unwrap()
            .into_iter()
            .filter(|p| p.span().end() <= run_date)
            .collect(),
    }
}

/// Invariant 1 once every change has taken effect: every due piece is billed, and the lines of
/// every billed piece add up to what the final timeline says it costs, within rounding.
fn check_costs(
    item: &BillableItem,
    ledger: &[LedgerEntry],
    lines: &[InvoiceLine],
    run_date: Date,
    pricing: Pricing,
) -> Result<(), TestCaseError> {
    let timeline = final_timeline(item);
    let credited_from = item.changes.iter().find_map(|c| match c.kind {
        ChangeKind::Cancellation { credit: true } => Some(c.effective),
        _ => None,
    });
    let cancelled_from = item.changes.iter().find_map(|c| match c.kind {
        ChangeKind::Cancellation { .. } => Some(c.effective),
        _ => None,
    });
    let mut billed_to: BTreeMap<Date, Date> = BTreeMap::new();
    for entry in ledger {
        if matches!(entry.entry, EntryKey::Base | EntryKey::Remainder(_)) {
            let end = billed_to
                .entry(entry.period_start)
                .or_insert(entry.period_end);
            *end = (*end).max(entry.period_end);
        }
    }
    let due = due_pieces(item, run_date);
    for piece in &due {
        let billed = billed_to.get(&piece.span().start());
        prop_assert!(billed.is_some(), "due piece {:?} never billed", piece);
        let billed_end = *billed.unwrap();
        if cancelled_from.is_none() {
            prop_assert_eq!(billed_end, piece.span().end(), "piece {:?}", piece);
        } else {
            prop_assert!(billed_end >= piece.span().end(), "piece {:?}", piece);
        }
    }
    let due_starts: BTreeSet<Date> = due.iter().map(|p| p.span().start()).collect();
    let unit = Decimal::new(1, pricing.currency.minor_unit());
    let fraction_slack = Decimal::new(1, 4);
    for (&start, &billed_end) in &billed_to {
        if !due_starts.contains(&start) {
            prop_assert!(
                cancelled_from.is_some_and(|cd| cd <= start),
                "piece from {} billed but not due",
                start
            );
        }
        let covered_end = match credited_from {
            Some(cd) => billed_end.min(cd.max(start)),
            None => billed_end,
        };
        let (expected, cost_lines) = if covered_end > start {
            let cost = timeline
                .cost(Span::new(start, covered_end).unwrap(), item.grid, pricing)
                .unwrap();
            (cost.total, cost.lines.len())
        } else {
            (Decimal::ZERO, 0)
        };
        let of_piece: Vec<&InvoiceLine> = lines
            .iter()
            .filter(|l| matches!(l.source, LineSource::Recurring { period_start, .. } if period_start == start))
            .collect();
        let billed: Decimal = of_piece.iter().map(|l| l.amount).sum();
        let rounded_lines = Decimal::from(of_piece.len() + cost_lines);
        let tolerance = rounded_lines * (unit / Decimal::TWO + fraction_slack);
        prop_assert!(
            (billed - expected).abs() <= tolerance,
            "piece from {}: lines sum to {} but the timeline says {} (lines {:?})",
            start,
            billed,
            expected,
            of_piece
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Invariants 1 and 3 over random runs with upsells, cancellations and renewals between them.
    #[test]
    fn every_billed_period_sums_to_its_timeline_cost_and_no_run_bills_twice(
        created in created(),
        pricing in pricing(),
        ops in proptest::collection::vec(op(), 1..16),
    ) {
        let mut history = History::new(&created);
        let mut ledger = Vec::new();
        let mut lines = Vec::new();
        let mut today = plus_days(created.start, -20);
        for op in &ops {
            match *op {
                Op::Run(days) => today = plus_days(today, days),
                Op::RunPastEnd(days) => {
                    let past_end = plus_days(history.item.end.unwrap_or(today), days);
                    today = today.max(past_end);
                }
                Op::Upsell { .. } | Op::Cancel { .. } | Op::Renew { .. } => {
                    history.apply(op, today);
                    continue;
                }
            }
            lines.extend(run(&history.item, &mut ledger, today, pricing)?);
        }
        let last_day = plus_days(history.last_date().max(today), 400);
        lines.extend(run(&history.item, &mut ledger, last_day, pricing)?);
        for line in &lines {
            prop_assert_eq!(line.line_type.is_credit(), line.amount.is_sign_negative() && !line.amount.is_zero(),
                "credits and only credits are negative: {:?}", line);
            prop_assert_eq!(line.currency, pricing.currency);
        }
        check_costs(&history.item, &ledger, &lines, last_day, pricing)?;
    }

    /// Invariant 4: with one history known throughout, any split of the run dates up to `D`
    /// bills the same lines as one run on `D`.
    #[test]
    fn billing_in_one_run_or_in_many_bills_the_same_lines(
        created in created(),
        pricing in pricing(),
        changes in proptest::collection::vec(op(), 0..8),
        last in 0i64..=500,
        splits in proptest::collection::vec(0i64..=500, 0..8),
    ) {
        let mut history = History::new(&created);
        for change in &changes {
            history.apply(change, plus_days(created.start, 60));
        }
        let item = &history.item;
        let last_day = plus_days(created.start, last - 30);
        let mut dates: Vec<Date> = splits
            .iter()
            .map(|&offset| plus_days(created.start, offset - 30))
            .filter(|&day| day <= last_day)
            .collect();
        dates.sort();
        dates.push(last_day);

        let mut one_ledger = Vec::new();
        let one = run(item, &mut one_ledger, last_day, pricing)?;
        let mut many_ledger = Vec::new();
        let mut many = Vec::new();
        for day in dates {
            many.extend(run(item, &mut many_ledger, day, pricing)?);
        }
        let key = |l: &InvoiceLine| (l.line_type.code(), l.service.start(), l.service.end(), l.amount);
        let mut one: Vec<_> = one.iter().map(key).collect();
        let mut many: Vec<_> = many.iter().map(key).collect();
        one.sort();
        many.sort();
        prop_assert_eq!(one, many);
        let entries = |ledger: &[LedgerEntry]| -> BTreeSet<(Date, Date, EntryKey)> {
            ledger.iter().map(|e| (e.period_start, e.period_end, e.entry)).collect()
        };
        prop_assert_eq!(entries(&one_ledger), entries(&many_ledger));
    }

    /// Invariant 2, and the credit balance of §5 conserved across a sequence of invoices.
    #[test]
    fn invoice_totals_add_up_and_credit_is_never_lost_or_invented(
        invoices in proptest::collection::vec(
            (
                proptest::collection::vec(-100_000i64..=100_000, 0..6),
                proptest::collection::vec(0i64..=1_000_000, 0..3),
            ),
            1..8,
        ),
        opening in 0i64..=50_000,
    ) {
        let usd = Currency::USD;
        let mut balance = Decimal::new(opening, 2);
        let mut totals_sum = Decimal::ZERO;
        let mut due_sum = Decimal::ZERO;
        for (amounts, taxes) in &invoices {
            let lines: Vec<InvoiceLine> = amounts.iter().map(|&cents| line(1, "USD", Decimal::new(cents, 2))).collect();
            let taxes: Vec<Decimal> = taxes.iter().map(|&t| Decimal::new(t, 5)).collect();
            let totals = InvoiceTotals::new(&lines, &taxes, usd, Rounding::HalfEven).unwrap();
            let subtotal: Decimal = lines.iter().map(|l| l.amount).sum();
            let tax: Decimal = taxes.iter().sum();
            prop_assert_eq!(totals.subtotal, subtotal);
            prop_assert_eq!(totals.tax_total, Rounding::HalfEven.to_minor_unit(tax, usd));
            prop_assert_eq!(totals.total, totals.subtotal + totals.tax_total);

            let moved = apply_credit(totals.total, balance).unwrap();
            prop_assert!(moved.amount_due >= Decimal::ZERO);
            prop_assert!(moved.balance_after >= Decimal::ZERO);
            prop_assert!(moved.credit_applied <= balance);
            prop_assert!(moved.credit_added.is_zero() || moved.credit_applied.is_zero());
            prop_assert_eq!(moved.amount_due + moved.credit_applied - moved.credit_added, totals.total);
            prop_assert_eq!(moved.balance_after, balance + moved.credit_added - moved.credit_applied);
            if totals.total > Decimal::ZERO && moved.amount_due > Decimal::ZERO {
                prop_assert!(moved.balance_after.is_zero(), "credit left unused while money is due");
            }
            balance = moved.balance_after;
            totals_sum += totals.total;
            due_sum += moved.amount_due;
        }
        // What was due is what was invoiced, less the credit the balance gave up, plus what it took in.
        prop_assert_eq!(due_sum, totals_sum - Decimal::new(opening, 2) + balance);
    }

    /// Grouping only partitions: every line lands in exactly one invoice of its currency (and
    /// plan, per plan), and invoices are as few as the grouping allows.
    #[test]
    fn grouping_partitions_the_lines_by_currency_and_plan(
        drawn in proptest::collection::vec((1i64..=3, prop_oneof![Just("USD"), Just("EUR")], -1000i64..=1000), 0..12),
        per_plan in any::<bool>(),
    ) {
        let grouping = if per_plan { InvoiceGrouping::PerPlan } else { InvoiceGrouping::PerAccount };
        let lines: Vec<InvoiceLine> = drawn.iter().map(|&(plan, currency, cents)| line(plan, currency, Decimal::new(cents, 2))).collect();
        let groups = group_lines(lines.clone(), grouping);
        let mut regrouped: Vec<InvoiceLine> = groups.iter().flat_map(|g| g.lines.iter().copied()).collect();
        let order = |l: &InvoiceLine| (l.plan, l.currency.code(), l.amount);
        let mut expected = lines.clone();
        regrouped.sort_by_key(order);
        expected.sort_by_key(order);
        prop_assert_eq!(regrouped, expected);
        for group in &groups {
            prop_assert!(!group.lines.is_empty());
            prop_assert!(group.lines.iter().all(|l| l.currency == group.currency));
            match grouping {
                InvoiceGrouping::PerPlan => prop_assert!(group.lines.iter().all(|l| Some(l.plan) == group.plan)),
                InvoiceGrouping::PerAccount => prop_assert_eq!(group.plan, None),
            }
        }
        let keys: BTreeSet<(&str, Option<PlanId>)> = lines
            .iter()
            .map(|l| (l.currency.code(), per_plan.then_some(l.plan)))
            .collect();
        prop_assert_eq!(groups.len(), keys.len());
    }
}

/// A one-time-looking line of `amount`, enough for totals and grouping.
fn line(plan: i64, currency: &str, amount: Decimal) -> InvoiceLine {
    let day = Span::new(date(2024, 5, 1), date(2024, 5, 2)).unwrap();
    InvoiceLine {
        line_type: LineType::OneTime,
        source: LineSource::OneTime {
            item: OneTimeItemId(amount.mantissa() as i64),
        },
        plan: PlanId(plan),
        currency: currency.parse().unwrap(),
        service: day,
        period: day,
        terms: Terms::new(Decimal::ONE, amount),
        fraction: Decimal::ONE,
        amount,
    }
}
