//! Bill runs as scenario tables: an item, its history between runs, and the lines each run
//! must bill (BILLING.md §3, §4 and the worked examples of §9). A new case is a new row.

use dynabill_core::billing::{
    BillableItem, BillingError, ChangeEvent, ChangeKind, EntryKey, LedgerEntry, bill_item,
    billed_through,
};
use dynabill_core::calendar::{
    BillingDay, BillingPeriod, Cadence, Grid, Pricing, ProrationPolicy, Span,
};
use dynabill_core::domain::{BillingTiming, PlanId, RecurringItemId};
use dynabill_core::money::{Currency, Rounding};
use jiff::civil::Date;
use rust_decimal::{Decimal, dec};

const ITEM: RecurringItemId = RecurringItemId(7);

fn d(text: &str) -> Date {
    text.parse().expect("test dates are ISO dates")
}

fn amount(text: &str) -> Decimal {
    text.parse().expect("test amounts are decimals")
}

fn usd_half_up() -> Pricing {
    Pricing {
        policy: ProrationPolicy::ActualDays,
        currency: Currency::USD,
        rounding: Rounding::HalfUp,
    }
}

/// The item of a scenario as created: cadence, dates, timing and its first terms.
struct ItemSpec {
    period: BillingPeriod,
    start: &'static str,
    end: Option<&'static str>,
    billing_day: Option<u32>,
    timing: BillingTiming,
    quantity: &'static str,
    unit_price: &'static str,
}

impl ItemSpec {
    fn monthly(start: &'static str) -> Self {
        Self {
            period: BillingPeriod::Monthly,
            start,
            end: None,
            billing_day: None,
            timing: BillingTiming::InAdvance,
            quantity: "1",
            unit_price: "100.00",
        }
    }

    fn period(self, period: BillingPeriod) -> Self {
        Self { period, ..self }
    }

    fn ending(self, end: &'static str) -> Self {
        Self {
            end: Some(end),
            ..self
        }
    }

    fn billing_day(self, day: u32) -> Self {
        Self {
            billing_day: Some(day),
            ..self
        }
    }

    fn in_arrears(self) -> Self {
        Self {
            timing: BillingTiming::InArrears,
            ..self
        }
    }

    fn terms(self, quantity: &'static str, unit_price: &'static str) -> Self {
        Self {
            quantity,
            unit_price,
            ..self
        }
    }

    fn create(&self) -> BillableItem {
        let start = d(self.start);
        let billing_day = self
            .billing_day
            .map(|day| BillingDay::new(day).expect("valid billing day"));
        BillableItem {
            id: ITEM,
            plan: PlanId(3),
            grid: Grid::new(Cadence::from(self.period), start, billing_day),
            timing: self.timing,
            start,
            end: self.end.map(d),
            changes: vec![ChangeEvent {
                seq: 1,
                effective: start,
                kind: ChangeKind::TermsSet {
                    quantity: Some(amount(self.quantity)),
                    unit_price: Some(amount(self.unit_price)),
                    discount_percent: None,
                },
            }],
        }
    }
}

/// One expected line: `LineType`, service `[start, end)` and amount.
type Expect = (i64, &'static str, &'static str, &'static str);

/// What happens between and at bill runs, in order.
enum Step {
    /// A bill run on `date` and exactly the lines it must bill, in order.
    Run(&'static str, &'static [Expect]),
    /// Upsell effective on a date: new quantity and/or unit price.
    Upsell(&'static str, Option<&'static str>, Option<&'static str>),
    /// Cancel on a date, with or without credit.
    Cancel(&'static str, bool),
    /// Renew to a new end, optionally with a new unit price from the old end.
    Renew(&'static str, Option<&'static str>),
}

struct Scenario {
    name: &'static str,
    item: ItemSpec,
    steps: &'static [Step],
}

/// Plays a scenario: records each change with the next seq, bills each run against the ledger
/// so far, and checks that every run, run again, bills nothing.
fn play(scenario: &Scenario) -> (BillableItem, Vec<LedgerEntry>) {
    let name = scenario.name;
    let mut item = scenario.item.create();
    let mut ledger: Vec<LedgerEntry> = Vec::new();
    for step in scenario.steps {
        let seq = item.changes.last().map_or(1, |c| c.seq + 1);
        match step {
            Step::Run(date, expected) => {
                let bill = bill_item(&item, &ledger, d(date), usd_half_up())
                    .unwrap_or_else(|e| panic!("{name}: run {date} failed: {e}"));
                let billed: Vec<(i64, Date, Date, Decimal)> = bill
                    .lines
                    .iter()
                    .map(|l| {
                        (
                            l.line_type.code(),
                            l.service.start(),
                            l.service.end(),
                            l.amount,
                        )
                    })
                    .collect();
                let expected: Vec<(i64, Date, Date, Decimal)> = expected
                    .iter()
                    .map(|&(t, s, e, a)| (t, d(s), d(e), amount(a)))
                    .collect();
                assert_eq!(billed, expected, "{name}: lines of the run on {date}");
                ledger.extend(bill.entries);
                let again = bill_item(&item, &ledger, d(date), usd_half_up()).unwrap();
                assert!(
                    again.is_empty(),
                    "{name}: the run on {date}, repeated, billed {again:?}"
                );
            }
            Step::Upsell(effective, quantity, unit_price) => item.changes.push(ChangeEvent {
                seq,
                effective: d(effective),
                kind: ChangeKind::TermsSet {
                    quantity: quantity.map(amount),
                    unit_price: unit_price.map(amount),
                    discount_percent: None,
                },
            }),
            Step::Cancel(date, credit) => {
                item.end = Some(d(date));
                item.changes.push(ChangeEvent {
                    seq,
                    effective: d(date),
                    kind: ChangeKind::Cancellation { credit: *credit },
                });
            }
            Step::Renew(end, unit_price) => {
                let old_end = item.end.expect("only an item with an end renews");
                item.end = Some(d(end));
                let kind = match unit_price {
                    Some(price) => ChangeKind::TermsSet {
                        quantity: None,
                        unit_price: Some(amount(price)),
                        discount_percent: None,
                    },
                    None => ChangeKind::Other,
                };
                item.changes.push(ChangeEvent {
                    seq,
                    effective: old_end,
                    kind,
                });
            }
        }
    }
    (item, ledger)
}

fn play_all(scenarios: &[Scenario]) {
    for scenario in scenarios {
        play(scenario);
    }
}

#[test]
fn the_worked_examples_of_section_9_bill_number_for_number() {
    play_all(&[
        Scenario {
            name: "example 1: a leading partial, then the full month",
            item: ItemSpec::monthly("2024-01-15").billing_day(1),
            steps: &[
                Step::Run("2024-01-15", &[(1, "2024-01-15", "2024-02-01", "54.84")]),
                Step::Run("2024-02-01", &[(1, "2024-02-01", "2024-03-01", "100.00")]),
            ],
        },
        Scenario {
            name: "example 2: an anchor of 31 clamps in February and snaps back",
            item: ItemSpec::monthly("2024-01-31"),
            steps: &[Step::Run(
                "2024-04-30",
                &[
                    (1, "2024-01-31", "2024-02-29", "100.00"),
                    (1, "2024-02-29", "2024-03-31", "100.00"),
                    (1, "2024-03-31", "2024-04-30", "100.00"),
                    (1, "2024-04-30", "2024-05-31", "100.00"),
                ],
            )],
        },
        Scenario {
            name: "example 3: an upsell to 15 from March 10th",
            item: ItemSpec::monthly("2024-03-01").terms("10", "10.00"),
            steps: &[
                Step::Run("2024-03-01", &[(1, "2024-03-01", "2024-04-01", "100.00")]),
                Step::Upsell("2024-03-10", Some("15"), None),
                Step::Run(
                    "2024-03-10",
                    &[
                        (4, "2024-03-10", "2024-04-01", "-70.97"),
                        (3, "2024-03-10", "2024-04-01", "106.45"),
                    ],
                ),
            ],
        },
        Scenario {
            name: "example 4: an annual item cancelled with credit",
            item: ItemSpec::monthly("2024-03-01")
                .period(BillingPeriod::Annual)
                .terms("1", "1200.00"),
            steps: &[
                Step::Run("2024-03-01", &[(1, "2024-03-01", "2025-03-01", "1200.00")]),
                Step::Cancel("2024-09-15", true),
                Step::Run("2024-09-15", &[(5, "2024-09-15", "2025-03-01", "-549.04")]),
            ],
        },
        Scenario {
            name: "example 5: two upsells in one month, billed by one run",
            item: ItemSpec::monthly("2024-04-01").terms("1", "30.00"),
            steps: &[
                Step::Run("2024-04-01", &[(1, "2024-04-01", "2024-05-01", "30.00")]),
                Step::Upsell("2024-04-11", Some("2"), None),
                Step::Upsell("2024-04-21", Some("3"), None),
                Step::Run(
                    "2024-04-21",
                    &[
                        (4, "2024-04-11", "2024-05-01", "-20.00"),
                        (3, "2024-04-11", "2024-05-01", "40.00"),
                        (4, "2024-04-21", "2024-05-01", "-20.00"),
                        (3, "2024-04-21", "2024-05-01", "30.00"),
                    ],
                ),
            ],
        },
        Scenario {
            name: "example 5: the same upsells, each billed by its own run",
            item: ItemSpec::monthly("2024-04-01").terms("1", "30.00"),
            steps: &[
                Step::Run("2024-04-01", &[(1, "2024-04-01", "2024-05-01", "30.00")]),
                Step::Upsell("2024-04-11", Some("2"), None),
                Step::Run(
                    "2024-04-11",
                    &[
                        (4, "2024-04-11", "2024-05-01", "-20.00"),
                        (3, "2024-04-11", "2024-05-01", "40.00"),
                    ],
                ),
                Step::Upsell("2024-04-21", Some("3"), None),
                Step::Run(
                    "2024-04-21",
                    &[
                        (4, "2024-04-21", "2024-05-01", "-20.00"),
                        (3, "2024-04-21", "2024-05-01", "30.00"),
                    ],
                ),
            ],
        },
        Scenario {
            name: "example 5: the later upsell made first still combines in date order",
            item: ItemSpec::monthly("2024-04-01").terms("1", "30.00"),
            steps: &[
                Step::Run("2024-04-01", &[(1, "2024-04-01", "2024-05-01", "30.00")]),
                Step::Upsell("2024-04-21", Some("3"), None),
                Step::Upsell("2024-04-11", Some("2"), None),
                Step::Run(
                    "2024-04-21",
                    &[
                        (4, "2024-04-11", "2024-05-01", "-20.00"),
                        (3, "2024-04-11", "2024-05-01", "40.00"),
                        (4, "2024-04-21", "2024-05-01", "-20.00"),
                        (3, "2024-04-21", "2024-05-01", "30.00"),
                    ],
                ),
            ],
        },
    ]);
}

#[test]
fn fresh_periods_are_billed_when_due_in_advance_or_in_arrears() {
    play_all(&[
        Scenario {
            name: "in arrears: nothing until the period ends",
            item: ItemSpec::monthly("2024-01-15").billing_day(1).in_arrears(),
            steps: &[
                Step::Run("2024-01-15", &[]),
                Step::Run("2024-01-31", &[]),
                Step::Run("2024-02-01", &[(1, "2024-01-15", "2024-02-01", "54.84")]),
                Step::Run("2024-02-29", &[]),
                Step::Run("2024-03-01", &[(1, "2024-02-01", "2024-03-01", "100.00")]),
            ],
        },
        Scenario {
            name: "in arrears: the final partial of an ended item is billed at its end",
            item: ItemSpec::monthly("2024-01-01")
                .ending("2024-03-15")
                .in_arrears(),
            steps: &[
                Step::Run(
                    "2024-03-01",
                    &[
                        (1, "2024-01-01", "2024-02-01", "100.00"),
                        (1, "2024-02-01", "2024-03-01", "100.00"),
                    ],
                ),
                Step::Run("2024-03-14", &[]),
                Step::Run("2024-03-15", &[(1, "2024-03-01", "2024-03-15", "45.16")]),
                Step::Run("2024-06-01", &[]),
            ],
        },
        Scenario {
            name: "in advance: a run that is behind bills every missed period, one line each",
            item: ItemSpec::monthly("2024-01-01"),
            steps: &[Step::Run(
                "2024-04-15",
                &[
                    (1, "2024-01-01", "2024-02-01", "100.00"),
                    (1, "2024-02-01", "2024-03-01", "100.00"),
                    (1, "2024-03-01", "2024-04-01", "100.00"),
                    (1, "2024-04-01", "2024-05-01", "100.00"),
                ],
            )],
        },
        Scenario {
            name: "in advance: nothing before the item starts, and nothing past its end",
            item: ItemSpec::monthly("2024-01-01").ending("2024-02-15"),
            steps: &[
                Step::Run("2023-12-31", &[]),
                Step::Run(
                    "2024-03-01",
                    &[
                        (1, "2024-01-01", "2024-02-01", "100.00"),
                        (1, "2024-02-01", "2024-02-15", "48.28"),
                    ],
                ),
                Step::Run("2025-01-01", &[]),
            ],
        },
        Scenario {
            name: "weekly: catch-up of whole weeks and a trailing partial",
            item: ItemSpec::monthly("2024-01-03")
                .period(BillingPeriod::Weekly)
                .ending("2024-01-20")
                .terms("1", "70.00"),
            steps: &[Step::Run(
                "2024-01-20",
                &[
                    (1, "2024-01-03", "2024-01-10", "70.00"),
                    (1, "2024-01-10", "2024-01-17", "70.00"),
                    (1, "2024-01-17", "2024-01-20", "30.00"),
                ],
            )],
        },
        Scenario {
            name: "a free item still shows its period at 0.00, and its upsells add nothing",
            item: ItemSpec::monthly("2024-01-15")
                .billing_day(1)
                .terms("1", "0"),
            steps: &[
                Step::Run("2024-01-15", &[(1, "2024-01-15", "2024-02-01", "0.00")]),
                Step::Upsell("2024-01-20", Some("2"), None),
                Step::Run("2024-01-20", &[]),
            ],
        },
    ]);
}

#[test]
fn changes_known_when_a_period_is_billed_split_it_into_stretches() {
    play_all(&[
        Scenario {
            name: "in advance with a future-dated upsell: two stretches, no adjustment later",
            item: ItemSpec::monthly("2024-01-01"),
            steps: &[
                Step::Upsell("2024-01-20", Some("2"), None),
                Step::Run(
                    "2024-01-01",
                    &[
                        (1, "2024-01-01", "2024-01-20", "61.29"),
                        (1, "2024-01-20", "2024-02-01", "77.42"),
                    ],
                ),
                Step::Run("2024-01-20", &[]),
                Step::Run("2024-02-01", &[(1, "2024-02-01", "2024-03-01", "200.00")]),
            ],
        },
        Scenario {
            name: "in arrears upsold mid-period: the period is billed in two stretches",
            item: ItemSpec::monthly("2024-01-01").in_arrears(),
            steps: &[
                Step::Upsell("2024-01-20", Some("2"), None),
                Step::Run("2024-01-25", &[]),
                Step::Run(
                    "2024-02-01",
                    &[
                        (1, "2024-01-01", "2024-01-20", "61.29"),
                        (1, "2024-01-20", "2024-02-01", "77.42"),
                    ],
                ),
            ],
        },
    ]);
}

#[test]
fn changes_to_billed_periods_are_adjusted_once_their_date_is_reached() {
    play_all(&[
        Scenario {
            name: "a backdated price change across two billed months adjusts each",
            item: ItemSpec::monthly("2024-01-01"),
            steps: &[
                Step::Run("2024-01-01", &[(1, "2024-01-01", "2024-02-01", "100.00")]),
                Step::Run("2024-02-01", &[(1, "2024-02-01", "2024-03-01", "100.00")]),
                Step::Upsell("2024-01-16", None, Some("150.00")),
                Step::Run(
                    "2024-02-10",
                    &[
                        (4, "2024-01-16", "2024-02-01", "-51.61"),
                        (3, "2024-01-16", "2024-02-01", "77.42"),
                        (4, "2024-02-01", "2024-03-01", "-100.00"),
                        (3, "2024-02-01", "2024-03-01", "150.00"),
                    ],
                ),
                Step::Run("2024-03-01", &[(1, "2024-03-01", "2024-04-01", "150.00")]),
            ],
        },
        Scenario {
            name: "a future-dated upsell of a billed month waits for its date",
            item: ItemSpec::monthly("2024-01-01"),
            steps: &[
                Step::Run("2024-01-01", &[(1, "2024-01-01", "2024-02-01", "100.00")]),
                Step::Upsell("2024-01-20", Some("2"), None),
                Step::Run("2024-01-19", &[]),
                Step::Run(
                    "2024-01-20",
                    &[
                        (4, "2024-01-20", "2024-02-01", "-38.71"),
                        (3, "2024-01-20", "2024-02-01", "77.42"),
                    ],
                ),
                Step::Run("2024-02-01", &[(1, "2024-02-01", "2024-03-01", "200.00")]),
            ],
        },
        Scenario {
            name: "a quantity-only upsell keeps the price an earlier upsell set",
            item: ItemSpec::monthly("2024-06-01").terms("1", "30.00"),
            steps: &[
                Step::Upsell("2024-06-01", None, Some("60.00")),
                Step::Run("2024-06-01", &[(1, "2024-06-01", "2024-07-01", "60.00")]),
                Step::Upsell("2024-06-16", Some("2"), None),
                Step::Run(
                    "2024-06-16",
                    &[
                        (4, "2024-06-16", "2024-07-01", "-30.00"),
                        (3, "2024-06-16", "2024-07-01", "60.00"),
                    ],
                ),
            ],
        },
    ]);
}

#[test]
fn cancellations_credit_billed_days_only_when_asked() {
    play_all(&[
        Scenario {
            name: "cancelled at the end of the billed term without credit: nothing more",
            item: ItemSpec::monthly("2024-01-01"),
            steps: &[
                Step::Run("2024-01-01", &[(1, "2024-01-01", "2024-02-01", "100.00")]),
                Step::Cancel("2024-02-01", false),
                Step::Run("2024-02-01", &[]),
                Step::Run("2024-03-01", &[]),
            ],
        },
        Scenario {
            name: "cancelled mid-period without credit: the billed month stands",
            item: ItemSpec::monthly("2024-01-01"),
            steps: &[
                Step::Run("2024-01-01", &[(1, "2024-01-01", "2024-02-01", "100.00")]),
                Step::Cancel("2024-01-10", false),
                Step::Run("2024-01-10", &[]),
                Step::Run("2024-02-01", &[]),
            ],
        },
        Scenario {
            name: "a backdated cancellation with credit takes back every billed day after it",
            item: ItemSpec::monthly("2024-01-01"),
            steps: &[
                Step::Run(
                    "2024-03-01",
                    &[
                        (1, "2024-01-01", "2024-02-01", "100.00"),
                        (1, "2024-02-01", "2024-03-01", "100.00"),
                        (1, "2024-03-01", "2024-04-01", "100.00"),
                    ],
                ),
                Step::Cancel("2024-02-10", true),
                Step::Run(
                    "2024-03-05",
                    &[
                        (5, "2024-02-10", "2024-03-01", "-68.97"),
                        (5, "2024-03-01", "2024-04-01", "-100.00"),
                    ],
                ),
            ],
        },
        Scenario {
            name: "a future cancellation with credit waits for its date",
            item: ItemSpec::monthly("2024-01-01")
                .period(BillingPeriod::Annual)
                .terms("1", "1200.00"),
            steps: &[
                Step::Run("2024-01-01", &[(1, "2024-01-01", "2025-01-01", "1200.00")]),
                Step::Cancel("2024-07-01", true),
                Step::Run("2024-06-30", &[]),
                Step::Run("2024-07-01", &[(5, "2024-07-01", "2025-01-01", "-603.28")]),
            ],
        },
        Scenario {
            name: "credit follows the terms billed, stretch by stretch",
            item: ItemSpec::monthly("2024-04-01").terms("1", "30.00"),
            steps: &[
                Step::Upsell("2024-04-21", Some("3"), None),
                Step::Run(
                    "2024-04-01",
                    &[
                        (1, "2024-04-01", "2024-04-21", "20.00"),
                        (1, "2024-04-21", "2024-05-01", "30.00"),
                    ],
                ),
                Step::Cancel("2024-04-11", true),
                Step::Run(
                    "2024-04-11",
                    &[
                        (5, "2024-04-11", "2024-04-21", "-10.00"),
                        (5, "2024-04-21", "2024-05-01", "-30.00"),
                    ],
                ),
            ],
        },
        Scenario {
            name: "in arrears: a cancellation bills the final partial, never a credit",
            item: ItemSpec::monthly("2024-01-01").in_arrears(),
            steps: &[
                Step::Run("2024-02-01", &[(1, "2024-01-01", "2024-02-01", "100.00")]),
                Step::Cancel("2024-02-10", true),
                Step::Run("2024-02-10", &[(1, "2024-02-01", "2024-02-10", "31.03")]),
                Step::Run("2024-03-01", &[]),
            ],
        },
    ]);
}

#[test]
fn a_renewal_bills_the_rest_of_a_period_the_old_end_cut_short() {
    play_all(&[
        Scenario {
            name: "in advance, renewed at a new price from the old end",
            item: ItemSpec::monthly("2024-01-01").ending("2024-03-15"),
            steps: &[
                Step::Run(
                    "2024-03-01",
                    &[
                        (1, "2024-01-01", "2024-02-01", "100.00"),
                        (1, "2024-02-01", "2024-03-01", "100.00"),
                        (1, "2024-03-01", "2024-03-15", "45.16"),
                    ],
                ),
                Step::Renew("2024-06-15", Some("120.00")),
                Step::Run("2024-03-10", &[(3, "2024-03-15", "2024-04-01", "65.81")]),
                Step::Run("2024-04-01", &[(1, "2024-04-01", "2024-05-01", "120.00")]),
            ],
        },
        Scenario {
            name: "in arrears, the remainder waits for the period's end",
            item: ItemSpec::monthly("2024-01-01")
                .ending("2024-03-15")
                .in_arrears(),
            steps: &[
                Step::Run(
                    "2024-03-15",
                    &[
                        (1, "2024-01-01", "2024-02-01", "100.00"),
                        (1, "2024-02-01", "2024-03-01", "100.00"),
                        (1, "2024-03-01", "2024-03-15", "45.16"),
                    ],
                ),
                Step::Renew("2024-06-15", None),
                Step::Run("2024-03-20", &[]),
                Step::Run("2024-04-01", &[(3, "2024-03-15", "2024-04-01", "54.84")]),
            ],
        },
        Scenario {
            name: "a renewal and a future upsell inside the cut period, between two runs",
            item: ItemSpec::monthly("2024-01-01").ending("2024-01-20"),
            steps: &[
                Step::Run("2024-01-01", &[(1, "2024-01-01", "2024-01-20", "61.29")]),
                Step::Renew("2024-12-31", None),
                Step::Upsell("2024-01-10", Some("2"), None),
                Step::Run("2024-01-05", &[(3, "2024-01-20", "2024-02-01", "77.42")]),
                Step::Run(
                    "2024-01-10",
                    &[
                        (4, "2024-01-10", "2024-01-20", "-32.26"),
                        (3, "2024-01-10", "2024-01-20", "64.52"),
                    ],
                ),
            ],
        },
    ]);
}

#[test]
fn a_remainder_is_recorded_under_its_own_negative_key_and_moves_charged_through() {
    let (_, ledger) = play(&Scenario {
        name: "renewed after a mid-period end",
        item: ItemSpec::monthly("2024-01-01").ending("2024-01-20"),
        steps: &[
            Step::Run("2024-01-01", &[(1, "2024-01-01", "2024-01-20", "61.29")]),
            Step::Renew("2024-12-31", None),
            Step::Upsell("2024-01-10", Some("2"), None),
            Step::Run(
                "2024-01-10",
                &[
                    (3, "2024-01-20", "2024-02-01", "77.42"),
                    (4, "2024-01-10", "2024-01-20", "-32.26"),
                    (3, "2024-01-10", "2024-01-20", "64.52"),
                ],
            ),
        ],
    });
    let keys: Vec<(Date, Date, EntryKey, i64)> = ledger
        .iter()
        .map(|e| (e.period_start, e.period_end, e.entry, e.entry.code()))
        .collect();
    assert_eq!(
        keys,
        vec![
            (d("2024-01-01"), d("2024-01-20"), EntryKey::Base, 0),
            (d("2024-01-01"), d("2024-02-01"), EntryKey::Remainder(3), -3),
            (d("2024-01-01"), d("2024-02-01"), EntryKey::Settled(3), 3),
        ]
    );
    assert_eq!(billed_through(&ledger), Some(d("2024-02-01")));
}

#[test]
fn descriptive_changes_and_cancellations_without_credit_leave_no_ledger_entry() {
    let mut item = ItemSpec::monthly("2024-01-01").create();
    let bill = bill_item(&item, &[], d("2024-01-01"), usd_half_up()).unwrap();
    let ledger = bill.entries;
    item.changes.push(ChangeEvent {
        seq: 2,
        effective: d("2024-01-01"),
        kind: ChangeKind::Other,
    });
    item.changes.push(ChangeEvent {
        seq: 3,
        effective: d("2024-01-05"),
        kind: ChangeKind::TermsSet {
            quantity: None,
            unit_price: None,
            discount_percent: None,
        },
    });
    item.end = Some(d("2024-01-10"));
    item.changes.push(ChangeEvent {
        seq: 4,
        effective: d("2024-01-10"),
        kind: ChangeKind::Cancellation { credit: false },
    });
    let bill = bill_item(&item, &ledger, d("2024-01-31"), usd_half_up()).unwrap();
    assert!(bill.is_empty(), "inert changes billed {bill:?}");
}

#[test]
fn an_upsell_that_changes_nothing_in_a_period_is_settled_without_lines() {
    let mut item = ItemSpec::monthly("2024-01-01").create();
    let ledger = bill_item(&item, &[], d("2024-01-01"), usd_half_up())
        .unwrap()
        .entries;
    item.changes.push(ChangeEvent {
        seq: 2,
        effective: d("2024-01-10"),
        kind: ChangeKind::TermsSet {
            quantity: Some(dec!(1)),
            unit_price: None,
            discount_percent: None,
        },
    });
    let bill = bill_item(&item, &ledger, d("2024-01-10"), usd_half_up()).unwrap();
    assert!(bill.lines.is_empty());
    assert_eq!(bill.entries.len(), 1);
    assert_eq!(bill.entries[0].entry, EntryKey::Settled(2));
    assert_eq!(bill.entries[0].period_start, d("2024-01-01"));
}

#[test]
fn worked_example_lines_carry_their_fraction_and_full_period() {
    let pricing = usd_half_up();
    let item = ItemSpec::monthly("2024-01-15").billing_day(1).create();
    let line = bill_item(&item, &[], d("2024-01-15"), pricing)
        .unwrap()
        .lines[0];
    assert_eq!(line.fraction, dec!(0.548387097));
    assert_eq!(
        line.period,
        Span::new(d("2024-01-01"), d("2024-02-01")).unwrap()
    );

    let mut item = ItemSpec::monthly("2024-03-01")
        .terms("10", "10.00")
        .create();
    let ledger = bill_item(&item, &[], d("2024-03-01"), pricing)
        .unwrap()
        .entries;
    item.changes.push(ChangeEvent {
        seq: 2,
        effective: d("2024-03-10"),
        kind: ChangeKind::TermsSet {
            quantity: Some(dec!(15)),
            unit_price: None,
            discount_percent: None,
        },
    });
    let lines = bill_item(&item, &ledger, d("2024-03-10"), pricing)
        .unwrap()
        .lines;
    assert!(lines.iter().all(|l| l.fraction == dec!(0.709677419)));
    assert_eq!(
        lines[0].terms.quantity(),
        dec!(10),
        "the credit takes back the old terms"
    );
    assert_eq!(
        lines[1].terms.quantity(),
        dec!(15),
        "the charge bills the new ones"
    );

    let mut item = ItemSpec::monthly("2024-03-01")
        .period(BillingPeriod::Annual)
        .terms("1", "1200.00")
        .create();
    let ledger = bill_item(&item, &[], d("2024-03-01"), pricing)
        .unwrap()
        .entries;
    item.end = Some(d("2024-09-15"));
    item.changes.push(ChangeEvent {
        seq: 2,
        effective: d("2024-09-15"),
        kind: ChangeKind::Cancellation { credit: true },
    });
    let lines = bill_item(&item, &ledger, d("2024-09-15"), pricing)
        .unwrap()
        .lines;
    assert_eq!(lines[0].fraction, dec!(0.457534247));
}

#[test]
fn a_discount_applies_before_rounding() {
    let mut item = ItemSpec::monthly("2024-01-15").billing_day(1).create();
    item.changes[0].kind = ChangeKind::TermsSet {
        quantity: Some(dec!(1)),
        unit_price: Some(dec!(100.00)),
        discount_percent: Some(dec!(10)),
    };
    let line = bill_item(&item, &[], d("2024-01-15"), usd_half_up())
        .unwrap()
        .lines[0];
    // 100 × 0.548387097 × 0.9 = 49.35483873: rounded once, after the discount.
    assert_eq!(line.amount, dec!(49.35));
}

#[test]
fn inconsistent_inputs_are_refused() {
    let pricing = usd_half_up();
    let mut item = ItemSpec::monthly("2024-01-01").create();
    let ledger = bill_item(&item, &[], d("2024-01-01"), pricing)
        .unwrap()
        .entries;

    let mut foreign = ledger.clone();
    foreign[0].item = RecurringItemId(99);
    assert!(matches!(
        bill_item(&item, &foreign, d("2024-02-01"), pricing),
        Err(BillingError::ForeignLedgerEntry { .. })
    ));

    let twice = [ledger[0], ledger[0]];
    assert!(matches!(
        bill_item(&item, &twice, d("2024-02-01"), pricing),
        Err(BillingError::DuplicateLedgerEntry { entry: 0, .. })
    ));

    item.changes.push(ChangeEvent {
        seq: 1,
        effective: d("2024-01-10"),
        kind: ChangeKind::Other,
    });
    assert_eq!(
        bill_item(&item, &ledger, d("2024-02-01"), pricing),
        Err(BillingError::SeqNotIncreasing {
            previous: 1,
            seq: 1
        })
    );
    item.changes.truncate(1);
    item.changes[0].seq = 0;
    assert_eq!(
        bill_item(&item, &[], d("2024-02-01"), pricing),
        Err(BillingError::SeqNotPositive { seq: 0 })
    );
}

#[test]
fn ledger_keys_round_trip_through_their_stored_code() {
    for key in [
        EntryKey::Base,
        EntryKey::Settled(1),
        EntryKey::Settled(i64::MAX),
        EntryKey::Remainder(1),
        EntryKey::Remainder(i64::MAX),
    ] {
        assert_eq!(EntryKey::from_code(key.code()), Some(key));
    }
    assert_eq!(EntryKey::from_code(i64::MIN), None);
}
