//! The worked examples of BILLING.md §1, §2 and §9, number for number.

use dynabill_core::calendar::{
    AdjustmentKind, BillingDay, BillingPeriod, Cadence, Grid, Piece, Pricing, ProrationPolicy,
    Span, Terms, TermsChange, TermsTimeline, cancellation_credit, fraction, proration_lines,
};
use dynabill_core::money::{Currency, Rounding};
use jiff::civil::Date;
use rust_decimal::{Decimal, dec};

fn d(text: &str) -> Date {
    text.parse().expect("test dates are ISO dates")
}

fn span(start: &str, end: &str) -> Span {
    Span::new(d(start), d(end)).expect("test spans are ordered")
}

fn grid(period: BillingPeriod, start: &str, billing_day: Option<u32>) -> Grid {
    let billing_day = billing_day.map(|day| BillingDay::new(day).expect("valid billing day"));
    Grid::new(Cadence::from(period), d(start), billing_day)
}

fn usd_half_up() -> Pricing {
    Pricing {
        policy: ProrationPolicy::ActualDays,
        currency: Currency::USD,
        rounding: Rounding::HalfUp,
    }
}

/// A piece of `grid` as billed: the span and the full grid period that contains it.
fn billed(grid: Grid, start: &str, end: &str) -> Piece {
    let span = span(start, end);
    let period = grid.period_containing(span.start()).unwrap();
    Piece::new(span, period).unwrap()
}

struct GridCase {
    name: &'static str,
    period: BillingPeriod,
    start: &'static str,
    billing_day: Option<u32>,
    first_k: i64,
    boundaries: &'static [&'static str],
}

#[test]
fn the_grids_of_section_1_fall_where_the_rules_say() {
    let cases = [
        GridCase {
            name: "quarterly, BillingDay 1, start 2012-05-12",
            period: BillingPeriod::Quarterly,
            start: "2012-05-12",
            billing_day: Some(1),
            first_k: 0,
            boundaries: &["2012-05-01", "2012-08-01", "2012-11-01"],
        },
        GridCase {
            name: "annual, BillingDay 1, start 2025-04-15",
            period: BillingPeriod::Annual,
            start: "2025-04-15",
            billing_day: Some(1),
            first_k: 0,
            boundaries: &["2025-04-01", "2026-04-01"],
        },
        GridCase {
            name: "monthly, BillingDay 15, start May 12",
            period: BillingPeriod::Monthly,
            start: "2024-05-12",
            billing_day: Some(15),
            first_k: -1,
            boundaries: &["2024-04-15", "2024-05-15", "2024-06-15"],
        },
        GridCase {
            name: "monthly, anchor 31 from the start day, 2024 (example 2)",
            period: BillingPeriod::Monthly,
            start: "2024-01-31",
            billing_day: None,
            first_k: 0,
            boundaries: &[
                "2024-01-31",
                "2024-02-29",
                "2024-03-31",
                "2024-04-30",
                "2024-05-31",
            ],
        },
    ];
    for case in cases {
        let grid = grid(case.period, case.start, case.billing_day);
        for (offset, expected) in case.boundaries.iter().enumerate() {
            let k = case.first_k + offset as i64;
            assert_eq!(
                grid.boundary(k).unwrap(),
                d(expected),
                "{} B({k})",
                case.name
            );
        }
    }
}

#[test]
fn a_start_off_the_grid_makes_a_leading_partial_up_to_the_next_boundary() {
    let grid = grid(BillingPeriod::Quarterly, "2012-05-12", Some(1));
    let pieces = grid.pieces(span("2012-05-12", "2012-11-01")).unwrap();

    assert_eq!(pieces[0].span(), span("2012-05-12", "2012-08-01"));
    assert_eq!(pieces[0].period(), span("2012-05-01", "2012-08-01"));
    assert!(pieces[0].is_leading_partial());
    assert_eq!(pieces[1].span(), span("2012-08-01", "2012-11-01"));
    assert!(pieces[1].is_full());
    assert_eq!(pieces.len(), 2);
}

struct FractionCase {
    name: &'static str,
    period: BillingPeriod,
    grid_start: &'static str,
    billing_day: Option<u32>,
    piece: (&'static str, &'static str),
    full_period: (&'static str, &'static str),
    fraction: Decimal,
    terms: (Decimal, Decimal),
    amount: Decimal,
}

#[test]
fn section_2_and_9_fractions_and_amounts_are_exact() {
    let cases = [
        FractionCase {
            name: "example 1: leading partial [Jan 15, Feb 1) of a BillingDay 1 item",
            period: BillingPeriod::Monthly,
            grid_start: "2024-01-15",
            billing_day: Some(1),
            piece: ("2024-01-15", "2024-02-01"),
            full_period: ("2024-01-01", "2024-02-01"),
            fraction: dec!(0.548387097),
            terms: (dec!(1), dec!(100.00)),
            amount: dec!(54.84),
        },
        FractionCase {
            name: "example 1: the next bill run bills the full February",
            period: BillingPeriod::Monthly,
            grid_start: "2024-01-15",
            billing_day: Some(1),
            piece: ("2024-02-01", "2024-03-01"),
            full_period: ("2024-02-01", "2024-03-01"),
            fraction: dec!(1),
            terms: (dec!(1), dec!(100.00)),
            amount: dec!(100.00),
        },
        FractionCase {
            name: "section 2: trailing partial [Jun 1, Jun 15) is divided by 30",
            period: BillingPeriod::Monthly,
            grid_start: "2024-01-01",
            billing_day: Some(1),
            piece: ("2024-06-01", "2024-06-15"),
            full_period: ("2024-06-01", "2024-07-01"),
            fraction: dec!(0.466666667),
            terms: (dec!(1), dec!(100.00)),
            amount: dec!(46.67),
        },
        FractionCase {
            name: "example 3: the rest of March from the 10th",
            period: BillingPeriod::Monthly,
            grid_start: "2024-03-01",
            billing_day: None,
            piece: ("2024-03-10", "2024-04-01"),
            full_period: ("2024-03-01", "2024-04-01"),
            fraction: dec!(0.709677419),
            terms: (dec!(15), dec!(10.00)),
            amount: dec!(106.45),
        },
        FractionCase {
            name: "example 4: 167 of 365 days of an annual period",
            period: BillingPeriod::Annual,
            grid_start: "2024-03-01",
            billing_day: None,
            piece: ("2024-09-15", "2025-03-01"),
            full_period: ("2024-03-01", "2025-03-01"),
            fraction: dec!(0.457534247),
            terms: (dec!(1), dec!(1200.00)),
            amount: dec!(549.04),
        },
    ];
    for case in cases {
        let grid = grid(case.period, case.grid_start, case.billing_day);
        let piece = span(case.piece.0, case.piece.1);
        let period = grid.period_containing(piece.start()).unwrap();
        assert_eq!(
            period,
            span(case.full_period.0, case.full_period.1),
            "{}",
            case.name
        );

        let fraction =
            fraction(piece, period, ProrationPolicy::ActualDays, grid.cadence()).unwrap();
        assert_eq!(fraction, case.fraction, "{}", case.name);
        let amount = Terms::new(case.terms.0, case.terms.1)
            .prorated_amount(fraction, Currency::USD, Rounding::HalfUp)
            .unwrap();
        assert_eq!(amount, case.amount, "{}", case.name);
    }
}

#[test]
fn example_1_bills_a_leading_partial_then_full_months() {
    let grid = grid(BillingPeriod::Monthly, "2024-01-15", Some(1));
    let timeline = TermsTimeline::new(Terms::new(dec!(1), dec!(100.00)));

    let cost = timeline
        .cost(span("2024-01-15", "2024-03-01"), grid, usd_half_up())
        .unwrap();

    let amounts: Vec<Decimal> = cost.lines.iter().map(|line| line.amount).collect();
    assert_eq!(amounts, [dec!(54.84), dec!(100.00)]);
    assert_eq!(cost.lines[0].fraction, dec!(0.548387097));
    assert_eq!(cost.total, dec!(154.84));
}

#[test]
fn example_2_an_anchor_of_31_snaps_back_to_31_after_february() {
    let grid = grid(BillingPeriod::Monthly, "2024-01-31", None);

    let pieces = grid
        .periods(d("2024-01-31"), None, d("2024-05-01"))
        .unwrap();

    let spans: Vec<Span> = pieces.iter().map(|piece| piece.span()).collect();
    assert_eq!(
        spans,
        [
            span("2024-01-31", "2024-02-29"),
            span("2024-02-29", "2024-03-31"),
            span("2024-03-31", "2024-04-30"),
            span("2024-04-30", "2024-05-31"),
        ]
    );
    assert!(pieces.iter().all(|piece| piece.is_full()));
}

#[test]
fn example_3_an_upsell_credits_the_old_quantity_and_charges_the_new() {
    let grid = grid(BillingPeriod::Monthly, "2024-03-01", None);
    let march = billed(grid, "2024-03-01", "2024-04-01");

    let lines = proration_lines(
        march,
        d("2024-03-10"),
        Terms::new(dec!(10), dec!(10.00)),
        Terms::new(dec!(15), dec!(10.00)),
        grid.cadence(),
        usd_half_up(),
    )
    .unwrap();

    assert_eq!(lines.credit.kind, AdjustmentKind::ProrationCredit);
    assert_eq!(lines.credit.kind.line_type(), 4);
    assert_eq!(lines.credit.fraction, dec!(0.709677419));
    assert_eq!(lines.credit.amount, dec!(-70.97));
    assert_eq!(lines.charge.kind.line_type(), 3);
    assert_eq!(lines.charge.fraction, dec!(0.709677419));
    assert_eq!(lines.charge.amount, dec!(106.45));
    assert_eq!(lines.charge.span, span("2024-03-10", "2024-04-01"));
    assert_eq!(lines.charge.span.last_day(), Some(d("2024-03-31")));
}

#[test]
fn example_4_cancelling_an_annual_item_credits_the_unused_days() {
    let grid = grid(BillingPeriod::Annual, "2024-03-01", None);
    let year = billed(grid, "2024-03-01", "2025-03-01");

    let credit = cancellation_credit(
        year,
        d("2024-09-15"),
        Terms::new(dec!(1), dec!(1200.00)),
        grid.cadence(),
        usd_half_up(),
    )
    .unwrap();

    assert_eq!(credit.kind.line_type(), 5);
    assert_eq!(credit.span.days(), 167);
    assert_eq!(credit.fraction, dec!(0.457534247));
    assert_eq!(credit.amount, dec!(-549.04));
}

#[test]
fn example_5_successive_upsells_credit_the_terms_in_force_before_each() {
    let grid = grid(BillingPeriod::Monthly, "2024-04-01", None);
    let april = billed(grid, "2024-04-01", "2024-05-01");
    let timeline = TermsTimeline::new(Terms::new(dec!(1), dec!(30.00)))
        .with_change(TermsChange::new(d("2024-04-11")).with_quantity(dec!(2)))
        .with_change(TermsChange::new(d("2024-04-21")).with_quantity(dec!(3)));
    let billed_in_advance = Terms::new(dec!(1), dec!(30.00))
        .prorated_amount(dec!(1), Currency::USD, Rounding::HalfUp)
        .unwrap();

    let mut amounts = Vec::new();
    for change in timeline.transitions_within(april.span()) {
        let lines = proration_lines(
            april,
            change.effective,
            change.before,
            change.after,
            grid.cadence(),
            usd_half_up(),
        )
        .unwrap();
        amounts.push((lines.credit.amount, lines.charge.amount));
    }

    assert_eq!(
        amounts,
        [(dec!(-20.00), dec!(40.00)), (dec!(-20.00), dec!(30.00))]
    );
    let sum: Decimal = billed_in_advance
        + amounts
            .iter()
            .map(|(credit, charge)| credit + charge)
            .sum::<Decimal>();
    assert_eq!(sum, dec!(60.00));

    let cost = timeline.cost(april.span(), grid, usd_half_up()).unwrap();
    let stretch_amounts: Vec<Decimal> = cost.lines.iter().map(|line| line.amount).collect();
    assert_eq!(stretch_amounts, [dec!(10.00), dec!(20.00), dec!(30.00)]);
    assert_eq!(cost.total, sum);
}
