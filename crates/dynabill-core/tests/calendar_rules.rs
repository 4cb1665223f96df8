//! Table tests of the billing calendar beyond the worked examples: every cadence, month ends
//! through leap and common years, partials, 30/360, rounding modes, discounts, timelines.

use dynabill_core::calendar::{
    AdjustmentKind, BillingDay, BillingPeriod, Cadence, CalendarError, Grid, PeriodLength, Piece,
    Pricing, ProrationMode, ProrationPolicy, Span, Terms, TermsChange, TermsTimeline,
    cancellation_credit, days_30_360, fraction, proration_lines,
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

fn cadence(period: BillingPeriod, count: u32) -> Cadence {
    Cadence::new(period, count).expect("test cadences are valid")
}

fn grid(cadence: Cadence, start: &str, billing_day: Option<u32>) -> Grid {
    let billing_day = billing_day.map(|day| BillingDay::new(day).expect("valid billing day"));
    Grid::new(cadence, d(start), billing_day)
}

fn pricing(policy: ProrationPolicy, currency: &str, rounding: Rounding) -> Pricing {
    Pricing {
        policy,
        currency: currency.parse().expect("known currency"),
        rounding,
    }
}

fn usd_half_up() -> Pricing {
    pricing(ProrationPolicy::ActualDays, "USD", Rounding::HalfUp)
}

// ---------------------------------------------------------------- codes and cadences

#[test]
fn billing_period_codes_round_trip_and_unknown_codes_are_refused() {
    let table = [
        (1, BillingPeriod::Monthly),
        (2, BillingPeriod::Quarterly),
        (3, BillingPeriod::SemiAnnual),
        (4, BillingPeriod::Annual),
        (5, BillingPeriod::Weekly),
        (6, BillingPeriod::Daily),
    ];
    for (code, period) in table {
        assert_eq!(BillingPeriod::from_code(code), Some(period));
        assert_eq!(period.code(), code);
    }
    for unknown in [0, 7, -1, i64::MAX] {
        assert_eq!(BillingPeriod::from_code(unknown), None);
    }
}

#[test]
fn proration_policy_and_mode_codes_round_trip_with_their_defaults() {
    assert_eq!(ProrationPolicy::default(), ProrationPolicy::ActualDays);
    assert_eq!(
        ProrationPolicy::from_code(1),
        Some(ProrationPolicy::ActualDays)
    );
    assert_eq!(
        ProrationPolicy::from_code(2),
        Some(ProrationPolicy::Thirty360)
    );
    assert_eq!(ProrationPolicy::from_code(0), None);
    assert_eq!(ProrationPolicy::Thirty360.code(), 2);

    assert_eq!(ProrationMode::default(), ProrationMode::ByDay);
    assert_eq!(ProrationMode::from_code(0), Some(ProrationMode::NextPeriod));
    assert_eq!(ProrationMode::from_code(1), Some(ProrationMode::ByDay));
    assert_eq!(ProrationMode::from_code(2), None);
    assert_eq!(ProrationMode::NextPeriod.code(), 0);
}

#[test]
fn a_cadence_multiplies_its_unit_by_the_count() {
    let table = [
        (BillingPeriod::Monthly, 1, PeriodLength::Months(1)),
        (BillingPeriod::Monthly, 2, PeriodLength::Months(2)),
        (BillingPeriod::Quarterly, 3, PeriodLength::Months(9)),
        (BillingPeriod::SemiAnnual, 1, PeriodLength::Months(6)),
        (BillingPeriod::Annual, 1000, PeriodLength::Months(12_000)),
        (BillingPeriod::Weekly, 2, PeriodLength::Days(14)),
        (BillingPeriod::Daily, 3, PeriodLength::Days(3)),
    ];
    for (period, count, length) in table {
        assert_eq!(
            cadence(period, count).length(),
            length,
            "{period:?} × {count}"
        );
    }
    assert_eq!(Cadence::from(BillingPeriod::Weekly).count(), 1);
    assert_eq!(cadence(BillingPeriod::Daily, 5).months(), None);
}

#[test]
fn cadence_counts_outside_one_to_a_thousand_are_refused() {
    for count in [0, 1001, u32::MAX] {
        assert_eq!(
            Cadence::new(BillingPeriod::Monthly, count),
            Err(CalendarError::CountOutOfRange { count })
        );
    }
    assert!(Cadence::new(BillingPeriod::Monthly, 1000).is_ok());
}

#[test]
fn billing_days_outside_one_to_thirty_one_are_refused() {
    for day in [0, 32, 256, u32::MAX] {
        assert_eq!(
            BillingDay::new(day),
            Err(CalendarError::BillingDayOutOfRange { day })
        );
    }
    assert_eq!(BillingDay::new(31).unwrap().get(), 31);
}

// ---------------------------------------------------------------- spans

#[test]
fn spans_are_half_open_and_print_their_inclusive_last_day() {
    let march = span("2024-03-01", "2024-04-01");
    assert_eq!(march.days(), 31);
    assert!(march.contains(d("2024-03-01")));
    assert!(march.contains(d("2024-03-31")));
    assert!(!march.contains(d("2024-04-01")));
    assert_eq!(march.last_day(), Some(d("2024-03-31")));
    assert_eq!(march.to_string(), "[2024-03-01, 2024-04-01)");

    let empty = span("2024-03-01", "2024-03-01");
    assert_eq!(empty.days(), 0);
    assert!(!empty.contains(d("2024-03-01")));
    assert_eq!(empty.last_day(), None);
}

#[test]
fn a_span_that_ends_before_it_starts_is_refused() {
    assert_eq!(
        Span::new(d("2024-03-02"), d("2024-03-01")),
        Err(CalendarError::EndBeforeStart {
            start: d("2024-03-02"),
            end: d("2024-03-01"),
        })
    );
}

#[test]
fn spans_intersect_on_the_dates_they_share() {
    let table = [
        (
            ("2024-01-01", "2024-02-01"),
            ("2024-01-15", "2024-03-01"),
            Some(("2024-01-15", "2024-02-01")),
        ),
        (
            ("2024-01-01", "2024-12-31"),
            ("2024-03-01", "2024-04-01"),
            Some(("2024-03-01", "2024-04-01")),
        ),
        (
            ("2024-01-01", "2024-02-01"),
            ("2024-02-01", "2024-03-01"),
            None,
        ),
        (
            ("2024-01-01", "2024-02-01"),
            ("2025-01-01", "2025-02-01"),
            None,
        ),
    ];
    for (a, b, expected) in table {
        let (a, b) = (span(a.0, a.1), span(b.0, b.1));
        let expected = expected.map(|(start, end)| span(start, end));
        assert_eq!(a.intersection(b), expected, "{a} ∩ {b}");
        assert_eq!(b.intersection(a), expected, "{b} ∩ {a}");
    }
}

// ---------------------------------------------------------------- grids

struct GridCase {
    name: &'static str,
    cadence: Cadence,
    start: &'static str,
    billing_day: Option<u32>,
    first_k: i64,
    boundaries: &'static [&'static str],
}

#[test]
fn grid_boundaries_fall_on_the_clamped_anchor_for_every_cadence() {
    let cases = [
        GridCase {
            name: "monthly anchor 31 through leap 2024",
            cadence: cadence(BillingPeriod::Monthly, 1),
            start: "2024-01-31",
            billing_day: None,
            first_k: -1,
            boundaries: &[
                "2023-12-31",
                "2024-01-31",
                "2024-02-29",
                "2024-03-31",
                "2024-04-30",
                "2024-05-31",
                "2024-06-30",
                "2024-07-31",
                "2024-08-31",
                "2024-09-30",
                "2024-10-31",
                "2024-11-30",
                "2024-12-31",
                "2025-01-31",
            ],
        },
        GridCase {
            name: "monthly anchor 31 through common 2023",
            cadence: cadence(BillingPeriod::Monthly, 1),
            start: "2023-01-31",
            billing_day: None,
            first_k: 0,
            boundaries: &[
                "2023-01-31",
                "2023-02-28",
                "2023-03-31",
                "2023-04-30",
                "2023-05-31",
            ],
        },
        GridCase {
            name: "monthly BillingDay 30 in 2023 and 2024",
            cadence: cadence(BillingPeriod::Monthly, 12),
            start: "2023-02-10",
            billing_day: Some(30),
            first_k: 0,
            boundaries: &["2023-02-28", "2024-02-29", "2025-02-28"],
        },
        GridCase {
            name: "monthly anchor 29 in a common and a leap February",
            cadence: cadence(BillingPeriod::Monthly, 1),
            start: "2023-01-29",
            billing_day: None,
            first_k: 0,
            boundaries: &["2023-01-29", "2023-02-28", "2023-03-29"],
        },
        GridCase {
            name: "monthly anchor 31 before the start (negative k)",
            cadence: cadence(BillingPeriod::Monthly, 1),
            start: "2024-03-31",
            billing_day: None,
            first_k: -3,
            boundaries: &["2023-12-31", "2024-01-31", "2024-02-29", "2024-03-31"],
        },
        GridCase {
            name: "every two months, anchor 31",
            cadence: cadence(BillingPeriod::Monthly, 2),
            start: "2024-01-31",
            billing_day: None,
            first_k: 0,
            boundaries: &[
                "2024-01-31",
                "2024-03-31",
                "2024-05-31",
                "2024-07-31",
                "2024-09-30",
                "2024-11-30",
                "2025-01-31",
            ],
        },
        GridCase {
            name: "every three months is quarterly",
            cadence: cadence(BillingPeriod::Monthly, 3),
            start: "2012-05-12",
            billing_day: Some(1),
            first_k: 0,
            boundaries: &["2012-05-01", "2012-08-01", "2012-11-01", "2013-02-01"],
        },
        GridCase {
            name: "quarterly anchor 31",
            cadence: cadence(BillingPeriod::Quarterly, 1),
            start: "2023-08-31",
            billing_day: None,
            first_k: 0,
            boundaries: &["2023-08-31", "2023-11-30", "2024-02-29", "2024-05-31"],
        },
        GridCase {
            name: "quarterly × 2",
            cadence: cadence(BillingPeriod::Quarterly, 2),
            start: "2024-01-15",
            billing_day: None,
            first_k: -1,
            boundaries: &["2023-07-15", "2024-01-15", "2024-07-15", "2025-01-15"],
        },
        GridCase {
            name: "semi-annual anchor 31",
            cadence: cadence(BillingPeriod::SemiAnnual, 1),
            start: "2024-08-31",
            billing_day: None,
            first_k: 0,
            boundaries: &["2024-08-31", "2025-02-28", "2025-08-31", "2026-02-28"],
        },
        GridCase {
            name: "annual from a leap day",
            cadence: cadence(BillingPeriod::Annual, 1),
            start: "2024-02-29",
            billing_day: None,
            first_k: -1,
            boundaries: &[
                "2023-02-28",
                "2024-02-29",
                "2025-02-28",
                "2026-02-28",
                "2027-02-28",
                "2028-02-29",
            ],
        },
        GridCase {
            name: "annual × 3",
            cadence: cadence(BillingPeriod::Annual, 3),
            start: "2024-06-10",
            billing_day: None,
            first_k: 0,
            boundaries: &["2024-06-10", "2027-06-10", "2030-06-10"],
        },
        GridCase {
            name: "weekly, anchored on the start",
            cadence: cadence(BillingPeriod::Weekly, 1),
            start: "2024-01-03",
            billing_day: None,
            first_k: -1,
            boundaries: &["2023-12-27", "2024-01-03", "2024-01-10", "2024-01-17"],
        },
        GridCase {
            name: "weekly ignores the plan's BillingDay",
            cadence: cadence(BillingPeriod::Weekly, 2),
            start: "2024-02-26",
            billing_day: Some(1),
            first_k: 0,
            boundaries: &["2024-02-26", "2024-03-11", "2024-03-25"],
        },
        GridCase {
            name: "daily",
            cadence: cadence(BillingPeriod::Daily, 1),
            start: "2024-02-28",
            billing_day: None,
            first_k: 0,
            boundaries: &["2024-02-28", "2024-02-29", "2024-03-01"],
        },
        GridCase {
            name: "every three days",
            cadence: cadence(BillingPeriod::Daily, 3),
            start: "2024-02-28",
            billing_day: None,
            first_k: -1,
            boundaries: &["2024-02-25", "2024-02-28", "2024-03-02", "2024-03-05"],
        },
    ];
    for case in cases {
        let grid = grid(case.cadence, case.start, case.billing_day);
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
fn the_period_containing_a_date_runs_from_the_boundary_at_or_before_it() {
    let monthly_31 = grid(cadence(BillingPeriod::Monthly, 1), "2024-01-31", None);
    let monthly_15 = grid(cadence(BillingPeriod::Monthly, 1), "2024-05-12", Some(15));
    let weekly = grid(cadence(BillingPeriod::Weekly, 1), "2024-01-03", None);
    let table = [
        (monthly_31, "2024-02-29", ("2024-02-29", "2024-03-31")),
        (monthly_31, "2024-02-28", ("2024-01-31", "2024-02-29")),
        (monthly_31, "2024-03-30", ("2024-02-29", "2024-03-31")),
        (monthly_31, "1999-07-04", ("1999-06-30", "1999-07-31")),
        (monthly_15, "2024-05-12", ("2024-04-15", "2024-05-15")),
        (monthly_15, "2024-05-15", ("2024-05-15", "2024-06-15")),
        (weekly, "2024-01-02", ("2023-12-27", "2024-01-03")),
        (weekly, "2024-01-09", ("2024-01-03", "2024-01-10")),
    ];
    for (grid, date, expected) in table {
        assert_eq!(
            grid.period_containing(d(date)).unwrap(),
            span(expected.0, expected.1),
            "{date}"
        );
    }
}

#[test]
fn a_next_period_change_waits_for_the_first_boundary_strictly_after_its_date() {
    let grid = grid(cadence(BillingPeriod::Monthly, 1), "2024-01-15", Some(1));
    let table = [
        ("2024-03-10", "2024-04-01"),
        ("2024-03-01", "2024-04-01"),
        ("2024-03-31", "2024-04-01"),
    ];
    for (requested, effective) in table {
        assert_eq!(
            ProrationMode::NextPeriod
                .effective_date(grid, d(requested))
                .unwrap(),
            d(effective),
            "{requested}"
        );
        assert_eq!(
            ProrationMode::ByDay
                .effective_date(grid, d(requested))
                .unwrap(),
            d(requested)
        );
    }
}

#[test]
fn grid_arithmetic_beyond_the_calendar_is_an_error_not_a_panic() {
    let grids = [
        grid(cadence(BillingPeriod::Annual, 1000), "2999-12-31", None),
        grid(cadence(BillingPeriod::Weekly, 1000), "1900-01-01", None),
    ];
    for grid in grids {
        for k in [i64::MAX, i64::MIN, 10_000, -10_000] {
            assert_eq!(
                grid.boundary(k),
                Err(CalendarError::DateOutOfRange),
                "B({k})"
            );
        }
        assert_eq!(
            grid.period_containing(Date::MAX),
            Err(CalendarError::DateOutOfRange)
        );
        assert!(grid.period_containing(d("2999-12-31")).is_ok());
        assert!(grid.period_containing(d("1900-01-01")).is_ok());
    }
}

// ---------------------------------------------------------------- pieces

struct PiecesCase {
    name: &'static str,
    grid: Grid,
    span: (&'static str, &'static str),
    /// (piece start, piece end, period start, period end)
    pieces: &'static [(&'static str, &'static str, &'static str, &'static str)],
}

#[test]
fn a_span_is_cut_into_leading_full_and_trailing_pieces() {
    let cases = [
        PiecesCase {
            name: "BillingDay 1 alignment with a leading partial and a trailing partial at EndDate",
            grid: grid(cadence(BillingPeriod::Monthly, 1), "2024-01-15", Some(1)),
            span: ("2024-01-15", "2024-04-20"),
            pieces: &[
                ("2024-01-15", "2024-02-01", "2024-01-01", "2024-02-01"),
                ("2024-02-01", "2024-03-01", "2024-02-01", "2024-03-01"),
                ("2024-03-01", "2024-04-01", "2024-03-01", "2024-04-01"),
                ("2024-04-01", "2024-04-20", "2024-04-01", "2024-05-01"),
            ],
        },
        PiecesCase {
            name: "quarterly with both partials",
            grid: grid(cadence(BillingPeriod::Quarterly, 1), "2012-05-12", Some(1)),
            span: ("2012-05-12", "2013-01-20"),
            pieces: &[
                ("2012-05-12", "2012-08-01", "2012-05-01", "2012-08-01"),
                ("2012-08-01", "2012-11-01", "2012-08-01", "2012-11-01"),
                ("2012-11-01", "2013-01-20", "2012-11-01", "2013-02-01"),
            ],
        },
        PiecesCase {
            name: "one piece that is both leading and trailing",
            grid: grid(cadence(BillingPeriod::Monthly, 1), "2024-01-01", Some(1)),
            span: ("2024-01-10", "2024-01-20"),
            pieces: &[("2024-01-10", "2024-01-20", "2024-01-01", "2024-02-01")],
        },
        PiecesCase {
            name: "annual, BillingDay 1, through a leap year",
            grid: grid(cadence(BillingPeriod::Annual, 1), "2023-04-15", Some(1)),
            span: ("2023-04-15", "2025-01-01"),
            pieces: &[
                ("2023-04-15", "2024-04-01", "2023-04-01", "2024-04-01"),
                ("2024-04-01", "2025-01-01", "2024-04-01", "2025-04-01"),
            ],
        },
        PiecesCase {
            name: "weekly with a trailing partial",
            grid: grid(cadence(BillingPeriod::Weekly, 1), "2024-01-03", None),
            span: ("2024-01-03", "2024-01-20"),
            pieces: &[
                ("2024-01-03", "2024-01-10", "2024-01-03", "2024-01-10"),
                ("2024-01-10", "2024-01-17", "2024-01-10", "2024-01-17"),
                ("2024-01-17", "2024-01-20", "2024-01-17", "2024-01-24"),
            ],
        },
        PiecesCase {
            name: "every two months, anchor 31, from mid-period",
            grid: grid(cadence(BillingPeriod::Monthly, 2), "2024-01-31", None),
            span: ("2024-03-15", "2024-08-01"),
            pieces: &[
                ("2024-03-15", "2024-03-31", "2024-01-31", "2024-03-31"),
                ("2024-03-31", "2024-05-31", "2024-03-31", "2024-05-31"),
                ("2024-05-31", "2024-07-31", "2024-05-31", "2024-07-31"),
                ("2024-07-31", "2024-08-01", "2024-07-31", "2024-09-30"),
            ],
        },
        PiecesCase {
            name: "an empty span has no pieces",
            grid: grid(cadence(BillingPeriod::Monthly, 1), "2024-01-01", None),
            span: ("2024-01-10", "2024-01-10"),
            pieces: &[],
        },
    ];
    for case in cases {
        let pieces = case.grid.pieces(span(case.span.0, case.span.1)).unwrap();
        let actual: Vec<(Span, Span)> = pieces
            .iter()
            .map(|piece| (piece.span(), piece.period()))
            .collect();
        let expected: Vec<(Span, Span)> = case
            .pieces
            .iter()
            .map(|(s, e, ps, pe)| (span(s, e), span(ps, pe)))
            .collect();
        assert_eq!(actual, expected, "{}", case.name);
    }
}

#[test]
fn partials_are_recognisable_from_their_full_period() {
    let grid = grid(cadence(BillingPeriod::Monthly, 1), "2024-01-15", Some(1));
    let pieces = grid.pieces(span("2024-01-15", "2024-03-20")).unwrap();
    let shapes: Vec<(bool, bool, bool)> = pieces
        .iter()
        .map(|p| (p.is_leading_partial(), p.is_full(), p.is_trailing_partial()))
        .collect();
    assert_eq!(
        shapes,
        [
            (true, false, false),
            (false, true, false),
            (false, false, true)
        ]
    );
}

#[test]
fn an_open_ended_item_lists_whole_periods_that_start_before_the_limit() {
    let grid = grid(cadence(BillingPeriod::Monthly, 1), "2024-01-15", Some(1));

    let pieces = grid
        .periods(d("2024-01-15"), None, d("2024-03-02"))
        .unwrap();

    let spans: Vec<Span> = pieces.iter().map(|piece| piece.span()).collect();
    assert_eq!(
        spans,
        [
            span("2024-01-15", "2024-02-01"),
            span("2024-02-01", "2024-03-01"),
            span("2024-03-01", "2024-04-01"),
        ]
    );
    assert!(
        grid.periods(d("2024-01-15"), None, d("2024-01-15"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn an_end_date_cuts_the_last_period_even_when_the_limit_is_later() {
    let grid = grid(cadence(BillingPeriod::Monthly, 1), "2024-01-01", None);

    let pieces = grid
        .periods(d("2024-01-01"), Some(d("2024-02-10")), d("2024-12-31"))
        .unwrap();

    assert_eq!(pieces.len(), 2);
    assert_eq!(pieces[1].span(), span("2024-02-01", "2024-02-10"));
    assert!(pieces[1].is_trailing_partial());
    assert!(
        grid.periods(d("2024-02-10"), Some(d("2024-02-01")), d("2024-12-31"))
            .is_err()
    );
}

#[test]
fn a_piece_must_be_a_non_empty_part_of_its_period() {
    let period = span("2024-03-01", "2024-04-01");
    assert!(Piece::new(span("2024-03-10", "2024-04-01"), period).is_ok());
    assert!(Piece::new(span("2024-03-10", "2024-04-02"), period).is_err());
    assert!(Piece::new(span("2024-03-10", "2024-03-10"), period).is_err());
}

// ---------------------------------------------------------------- fractions

#[test]
fn days_30_360_follow_the_us_rule_with_both_february_end_of_month_adjustments() {
    let table = [
        ("2023-01-31", "2023-02-28", 28, "D1 31 becomes 30"),
        (
            "2023-02-28",
            "2023-03-31",
            30,
            "D1 last of Feb becomes 30, then D2 31 too",
        ),
        (
            "2024-02-28",
            "2024-03-31",
            33,
            "Feb 28 is not the end of a leap February",
        ),
        ("2024-02-29", "2024-03-31", 30, "the leap-year February end"),
        (
            "2023-02-28",
            "2024-02-29",
            360,
            "both February ends: D2 becomes 30",
        ),
        (
            "2024-02-29",
            "2025-02-28",
            360,
            "both February ends, the other way",
        ),
        ("2023-02-28", "2024-02-28", 358, "only D1 is a February end"),
        ("2024-02-29", "2024-03-01", 1, "one actual day"),
        ("2024-02-28", "2024-03-01", 3, "two actual days count three"),
        (
            "2023-01-30",
            "2023-03-31",
            60,
            "D2 31 becomes 30 when D1 is 30",
        ),
        (
            "2023-01-29",
            "2023-03-31",
            62,
            "D2 31 stays when D1 is below 30",
        ),
        ("2023-03-31", "2023-04-30", 30, "month end to month end"),
        ("2023-03-30", "2023-03-31", 0, "a day that counts nothing"),
        (
            "2023-03-01",
            "2023-03-31",
            30,
            "30 actual days count a full month",
        ),
        ("2024-01-15", "2024-02-01", 16, "a leading partial"),
        ("2024-06-15", "2024-06-15", 0, "the empty span"),
    ];
    for (start, end, days, why) in table {
        assert_eq!(
            days_30_360(d(start), d(end)),
            days,
            "{start} → {end}: {why}"
        );
    }
}

struct FractionCase {
    name: &'static str,
    grid: Grid,
    piece: (&'static str, &'static str),
    policy: ProrationPolicy,
    fraction: Decimal,
}

#[test]
fn fractions_follow_the_policy_and_the_full_period_that_contains_the_piece() {
    let monthly_1 = grid(cadence(BillingPeriod::Monthly, 1), "2024-01-01", Some(1));
    let quarterly_2023 = grid(cadence(BillingPeriod::Quarterly, 1), "2023-01-01", Some(1));
    let quarterly_2024 = grid(cadence(BillingPeriod::Quarterly, 1), "2024-01-01", Some(1));
    let annual_2024 = grid(cadence(BillingPeriod::Annual, 1), "2024-01-01", Some(1));
    let biennial = grid(cadence(BillingPeriod::Annual, 2), "2023-01-01", Some(1));
    let monthly_31 = grid(cadence(BillingPeriod::Monthly, 1), "2023-01-31", None);
    let weekly = grid(cadence(BillingPeriod::Weekly, 1), "2024-01-01", None);
    let every_3_days = grid(cadence(BillingPeriod::Daily, 3), "2024-01-01", None);
    let semi_annual = grid(cadence(BillingPeriod::SemiAnnual, 1), "2024-01-01", None);
    let actual = ProrationPolicy::ActualDays;
    let thirty = ProrationPolicy::Thirty360;
    let cases = [
        FractionCase {
            name: "actual: leading partial of a leap February",
            grid: monthly_1,
            piece: ("2024-02-10", "2024-03-01"),
            policy: actual,
            fraction: dec!(0.689655172), // 20/29
        },
        FractionCase {
            name: "actual: a quarter of 91 days",
            grid: quarterly_2024,
            piece: ("2024-02-15", "2024-04-01"),
            policy: actual,
            fraction: dec!(0.505494505), // 46/91
        },
        FractionCase {
            name: "actual: a semi-annual period of 182 days",
            grid: semi_annual,
            piece: ("2024-01-01", "2024-03-01"),
            policy: actual,
            fraction: dec!(0.329670330), // 60/182
        },
        FractionCase {
            name: "actual: a leap year of 366 days",
            grid: annual_2024,
            piece: ("2024-02-29", "2025-01-01"),
            policy: actual,
            fraction: dec!(0.838797814), // 307/366
        },
        FractionCase {
            name: "30/360: [Jan 15, Feb 1) is 16 of 30",
            grid: monthly_1,
            piece: ("2024-01-15", "2024-02-01"),
            policy: thirty,
            fraction: dec!(0.533333333),
        },
        FractionCase {
            name: "30/360: Jan 31 → Feb 28 in a quarter is 28 of 90",
            grid: quarterly_2023,
            piece: ("2023-01-31", "2023-02-28"),
            policy: thirty,
            fraction: dec!(0.311111111),
        },
        FractionCase {
            name: "30/360: Feb 28 → Mar 31 of a common year is 30 of 90",
            grid: quarterly_2023,
            piece: ("2023-02-28", "2023-03-31"),
            policy: thirty,
            fraction: dec!(0.333333333),
        },
        FractionCase {
            name: "30/360: Feb 28 → Mar 1 of a leap year is 3 of 90",
            grid: quarterly_2024,
            piece: ("2024-02-28", "2024-03-01"),
            policy: thirty,
            fraction: dec!(0.033333333),
        },
        FractionCase {
            name: "30/360: Feb 29 → Mar 1 is 1 of 90",
            grid: quarterly_2024,
            piece: ("2024-02-29", "2024-03-01"),
            policy: thirty,
            fraction: dec!(0.011111111),
        },
        FractionCase {
            name: "30/360: both February ends in a two-year period are 360 of 720",
            grid: biennial,
            piece: ("2023-02-28", "2024-02-29"),
            policy: thirty,
            fraction: dec!(0.5),
        },
        FractionCase {
            name: "30/360: leap day to year end is 301 of 360",
            grid: annual_2024,
            piece: ("2024-02-29", "2025-01-01"),
            policy: thirty,
            fraction: dec!(0.836111111),
        },
        FractionCase {
            name: "30/360: [Mar 1, Mar 31) counts the whole month",
            grid: monthly_1,
            piece: ("2024-03-01", "2024-03-31"),
            policy: thirty,
            fraction: dec!(1),
        },
        FractionCase {
            name: "30/360: the full period [Jan 31, Feb 28) is exactly 1, not 28/30",
            grid: monthly_31,
            piece: ("2023-01-31", "2023-02-28"),
            policy: thirty,
            fraction: dec!(1),
        },
        FractionCase {
            name: "30/360: the rest of [Jan 31, Feb 28) from Feb 1 is 27 of 30",
            grid: monthly_31,
            piece: ("2023-02-01", "2023-02-28"),
            policy: thirty,
            fraction: dec!(0.9),
        },
        FractionCase {
            name: "weekly counts actual days under 30/360",
            grid: weekly,
            piece: ("2024-01-03", "2024-01-08"),
            policy: thirty,
            fraction: dec!(0.714285714), // 5/7
        },
        FractionCase {
            name: "daily × 3 counts actual days under 30/360",
            grid: every_3_days,
            piece: ("2024-01-02", "2024-01-04"),
            policy: thirty,
            fraction: dec!(0.666666667), // 2/3
        },
        FractionCase {
            name: "a full quarter is exactly 1 under actual days",
            grid: quarterly_2024,
            piece: ("2024-01-01", "2024-04-01"),
            policy: actual,
            fraction: dec!(1),
        },
    ];
    for case in cases {
        let piece = span(case.piece.0, case.piece.1);
        let period = case.grid.period_containing(piece.start()).unwrap();
        let fraction = fraction(piece, period, case.policy, case.grid.cadence()).unwrap();
        assert_eq!(fraction, case.fraction, "{}", case.name);
    }
}

#[test]
fn a_fraction_of_a_span_outside_its_period_is_refused() {
    let monthly = cadence(BillingPeriod::Monthly, 1);
    let period = span("2024-03-01", "2024-04-01");
    let outside = span("2024-03-15", "2024-04-15");
    assert_eq!(
        fraction(outside, period, ProrationPolicy::ActualDays, monthly),
        Err(CalendarError::NotInPeriod {
            span: outside,
            period,
        })
    );
    let empty = span("2024-03-01", "2024-03-01");
    assert!(fraction(empty, empty, ProrationPolicy::ActualDays, monthly).is_err());
}

// ---------------------------------------------------------------- amounts

#[test]
fn a_tie_rounds_away_from_zero_half_up_and_to_even_half_even() {
    let terms = Terms::new(dec!(1), dec!(0.25));
    let usd = Currency::USD;
    // 0.25 × 15/30 = 0.125, a tie at the cent.
    let half = fraction(
        span("2024-04-16", "2024-05-01"),
        span("2024-04-01", "2024-05-01"),
        ProrationPolicy::ActualDays,
        cadence(BillingPeriod::Monthly, 1),
    )
    .unwrap();
    assert_eq!(half, dec!(0.5));

    let table = [
        (Rounding::HalfUp, dec!(0.13)),
        (Rounding::HalfEven, dec!(0.12)),
    ];
    for (rounding, expected) in table {
        assert_eq!(
            terms.prorated_amount(half, usd, rounding).unwrap(),
            expected,
            "{rounding:?}"
        );
    }
}

#[test]
fn a_credit_on_a_tie_rounds_symmetrically_to_its_charge() {
    let grid = grid(cadence(BillingPeriod::Monthly, 1), "2024-04-01", None);
    let april = Piece::new(
        span("2024-04-01", "2024-05-01"),
        span("2024-04-01", "2024-05-01"),
    )
    .unwrap();
    let table = [
        (Rounding::HalfUp, dec!(-0.13)),
        (Rounding::HalfEven, dec!(-0.12)),
    ];
    for (rounding, expected) in table {
        let credit = cancellation_credit(
            april,
            d("2024-04-16"),
            Terms::new(dec!(1), dec!(0.25)),
            grid.cadence(),
            pricing(ProrationPolicy::ActualDays, "USD", rounding),
        )
        .unwrap();
        assert_eq!(credit.amount, expected, "{rounding:?}");
    }
}

#[test]
fn amounts_round_to_the_currency_minor_unit() {
    let fraction = dec!(0.548387097);
    let table = [
        ("USD", dec!(100.00), dec!(54.84)),
        ("JPY", dec!(1000), dec!(548)),
        ("KWD", dec!(10.000), dec!(5.484)),
    ];
    for (currency, price, expected) in table {
        let amount = Terms::new(dec!(1), price)
            .prorated_amount(fraction, currency.parse().unwrap(), Rounding::HalfUp)
            .unwrap();
        assert_eq!(amount, expected, "{currency}");
    }
}

#[test]
fn the_discount_applies_before_rounding() {
    let table = [
        (
            dec!(1),
            dec!(100.00),
            dec!(0.548387097),
            dec!(15),
            dec!(46.61),
        ),
        // 0.026 × 50% = 0.013 → 0.01; rounding first would give 0.03 × 50% → 0.02.
        (dec!(1), dec!(0.026), dec!(1), dec!(50), dec!(0.01)),
        (dec!(3), dec!(19.99), dec!(1), dec!(10), dec!(53.97)),
        (dec!(2), dec!(50.00), dec!(1), dec!(100), dec!(0.00)),
        (dec!(2), dec!(50.00), dec!(1), dec!(0), dec!(100.00)),
        (dec!(1.5), dec!(9.99), dec!(0.5), dec!(12.5), dec!(6.56)), // 6.5559375
    ];
    for (quantity, price, fraction, discount, expected) in table {
        let terms = Terms::new(quantity, price)
            .with_discount_percent(discount)
            .unwrap();
        assert_eq!(
            terms
                .prorated_amount(fraction, Currency::USD, Rounding::HalfUp)
                .unwrap(),
            expected,
            "{quantity} × {price} × {fraction} less {discount}%"
        );
    }
}

#[test]
fn a_discount_outside_zero_to_a_hundred_percent_is_refused() {
    for percent in [dec!(-0.01), dec!(100.01)] {
        assert_eq!(
            Terms::new(dec!(1), dec!(1)).with_discount_percent(percent),
            Err(CalendarError::DiscountOutOfRange { percent })
        );
        assert!(
            TermsChange::new(d("2024-01-01"))
                .with_discount_percent(percent)
                .is_err()
        );
    }
}

#[test]
fn a_one_time_item_is_never_prorated() {
    let terms = Terms::new(dec!(3), dec!(19.99))
        .with_discount_percent(dec!(10))
        .unwrap();
    assert_eq!(
        terms
            .one_time_amount(Currency::USD, Rounding::HalfUp)
            .unwrap(),
        dec!(53.97)
    );
}

#[test]
fn an_amount_beyond_the_decimal_range_is_an_error_not_a_panic() {
    let terms = Terms::new(Decimal::MAX, Decimal::MAX);
    assert_eq!(
        terms.prorated_amount(dec!(1), Currency::USD, Rounding::HalfUp),
        Err(CalendarError::AmountOverflow)
    );
}

// ---------------------------------------------------------------- timelines

#[test]
fn a_change_keeps_the_fields_it_does_not_name() {
    let timeline = TermsTimeline::new(Terms::new(dec!(10), dec!(5.00)))
        .with_change(TermsChange::new(d("2024-03-01")).with_unit_price(dec!(6.00)))
        .with_change(TermsChange::new(d("2024-04-01")).with_quantity(dec!(12)))
        .with_change(
            TermsChange::new(d("2024-05-01"))
                .with_discount_percent(dec!(20))
                .unwrap(),
        );
    let table = [
        ("2024-02-29", dec!(10), dec!(5.00), dec!(0)),
        ("2024-03-01", dec!(10), dec!(6.00), dec!(0)),
        ("2024-04-01", dec!(12), dec!(6.00), dec!(0)),
        ("2024-06-01", dec!(12), dec!(6.00), dec!(20)),
    ];
    for (date, quantity, price, discount) in table {
        let terms = timeline.terms_at(d(date));
        assert_eq!(
            (
                terms.quantity(),
                terms.unit_price(),
                terms.discount_percent()
            ),
            (quantity, price, discount),
            "{date}"
        );
    }
}

#[test]
fn changes_combine_in_effective_date_order_then_in_the_order_they_were_made() {
    let timeline = TermsTimeline::new(Terms::new(dec!(1), dec!(10.00)))
        .with_change(TermsChange::new(d("2024-04-21")).with_quantity(dec!(3)))
        .with_change(TermsChange::new(d("2024-04-11")).with_quantity(dec!(2)))
        .with_change(TermsChange::new(d("2024-04-21")).with_quantity(dec!(5)));

    assert_eq!(timeline.terms_at(d("2024-04-15")).quantity(), dec!(2));
    assert_eq!(timeline.terms_at(d("2024-04-21")).quantity(), dec!(5));
    let order: Vec<(Date, Decimal, Decimal)> = timeline
        .transitions()
        .iter()
        .map(|t| (t.effective, t.before.quantity(), t.after.quantity()))
        .collect();
    assert_eq!(
        order,
        [
            (d("2024-04-11"), dec!(1), dec!(2)),
            (d("2024-04-21"), dec!(2), dec!(3)),
            (d("2024-04-21"), dec!(3), dec!(5)),
        ]
    );
}

#[test]
fn stretches_cut_a_span_only_where_the_terms_actually_change() {
    let timeline = TermsTimeline::new(Terms::new(dec!(1), dec!(10.00)))
        .with_change(TermsChange::new(d("2024-03-10")).with_quantity(dec!(1.0)))
        .with_change(TermsChange::new(d("2024-03-20")).with_quantity(dec!(4)))
        .with_change(TermsChange::new(d("2024-03-20")).with_quantity(dec!(1)))
        .with_change(TermsChange::new(d("2024-03-25")).with_quantity(dec!(2)))
        .with_change(TermsChange::new(d("2024-04-05")).with_quantity(dec!(7)));

    let stretches = timeline.stretches(span("2024-03-01", "2024-04-01"));

    let shape: Vec<(Span, Decimal)> = stretches
        .iter()
        .map(|s| (s.span, s.terms.quantity()))
        .collect();
    assert_eq!(
        shape,
        [
            (span("2024-03-01", "2024-03-25"), dec!(1)),
            (span("2024-03-25", "2024-04-01"), dec!(2)),
        ]
    );
    assert!(
        timeline
            .stretches(span("2024-03-01", "2024-03-01"))
            .is_empty()
    );
}

#[test]
fn a_cost_bills_one_line_per_stretch_inside_each_grid_period() {
    // Weekly in arrears, upsold mid-week: the week is billed as two lines.
    let grid = grid(cadence(BillingPeriod::Weekly, 1), "2024-01-01", None);
    let timeline = TermsTimeline::new(Terms::new(dec!(1), dec!(7.00)))
        .with_change(TermsChange::new(d("2024-01-04")).with_unit_price(dec!(14.00)));

    let cost = timeline
        .cost(span("2024-01-01", "2024-01-15"), grid, usd_half_up())
        .unwrap();

    let lines: Vec<(Span, Decimal, Decimal)> = cost
        .lines
        .iter()
        .map(|line| (line.span, line.fraction, line.amount))
        .collect();
    assert_eq!(
        lines,
        [
            (
                span("2024-01-01", "2024-01-04"),
                dec!(0.428571429),
                dec!(3.00)
            ),
            (
                span("2024-01-04", "2024-01-08"),
                dec!(0.571428571),
                dec!(8.00)
            ),
            (span("2024-01-08", "2024-01-15"), dec!(1), dec!(14.00)),
        ]
    );
    assert_eq!(cost.total, dec!(25.00));
    assert!(
        cost.lines
            .iter()
            .all(|line| line.period.encloses(line.span))
    );
}

#[test]
fn a_cost_under_30_360_uses_the_day_count_of_each_stretch() {
    let grid = grid(cadence(BillingPeriod::Monthly, 1), "2024-01-01", Some(1));
    let timeline = TermsTimeline::new(Terms::new(dec!(1), dec!(90.00)))
        .with_change(TermsChange::new(d("2024-02-20")).with_quantity(dec!(2)));

    let cost = timeline
        .cost(
            span("2024-01-15", "2024-03-01"),
            grid,
            pricing(ProrationPolicy::Thirty360, "USD", Rounding::HalfUp),
        )
        .unwrap();

    let lines: Vec<(Decimal, Decimal)> = cost
        .lines
        .iter()
        .map(|line| (line.fraction, line.amount))
        .collect();
    // [Jan 15, Feb 1): 16/30; [Feb 1, Feb 20): 19/30; [Feb 20, Mar 1): 30 + 1 − 20 = 11/30.
    assert_eq!(
        lines,
        [
            (dec!(0.533333333), dec!(48.00)),
            (dec!(0.633333333), dec!(57.00)),
            (dec!(0.366666667), dec!(66.00)),
        ]
    );
}

// ---------------------------------------------------------------- adjustments

#[test]
fn a_credit_on_a_leading_partial_divides_by_the_full_period_so_it_never_exceeds_the_bill() {
    let grid = grid(cadence(BillingPeriod::Monthly, 1), "2024-01-15", Some(1));
    let first = grid.pieces(span("2024-01-15", "2024-02-01")).unwrap()[0];
    let terms = Terms::new(dec!(1), dec!(100.00));

    let credit =
        cancellation_credit(first, d("2024-01-20"), terms, grid.cadence(), usd_half_up()).unwrap();
    let whole =
        cancellation_credit(first, d("2024-01-15"), terms, grid.cadence(), usd_half_up()).unwrap();

    assert_eq!(credit.fraction, dec!(0.387096774)); // 12/31
    assert_eq!(credit.amount, dec!(-38.71));
    assert_eq!(whole.amount, dec!(-54.84));
    assert_eq!(credit.kind, AdjustmentKind::CancellationCredit);
}

#[test]
fn an_adjustment_dated_outside_the_billed_piece_is_refused() {
    let grid = grid(cadence(BillingPeriod::Monthly, 1), "2024-03-01", None);
    let march = grid.pieces(span("2024-03-01", "2024-04-01")).unwrap()[0];
    let terms = Terms::new(dec!(1), dec!(10.00));
    for date in ["2024-04-01", "2024-02-29"] {
        assert_eq!(
            proration_lines(march, d(date), terms, terms, grid.cadence(), usd_half_up()),
            Err(CalendarError::DateOutsideSpan {
                date: d(date),
                span: march.span(),
            })
        );
    }
}

#[test]
fn a_price_only_upsell_under_30_360_credits_and_charges_the_same_day_count() {
    let grid = grid(cadence(BillingPeriod::Quarterly, 1), "2023-01-01", Some(1));
    let quarter = grid.pieces(span("2023-01-01", "2023-04-01")).unwrap()[0];

    let lines = proration_lines(
        quarter,
        d("2023-02-28"),
        Terms::new(dec!(1), dec!(90.00)),
        Terms::new(dec!(1), dec!(120.00)),
        grid.cadence(),
        pricing(ProrationPolicy::Thirty360, "USD", Rounding::HalfUp),
    )
    .unwrap();

    // Feb 28 (a February end, so day 30) to Apr 1: 30 + 30 + 1 − 30 = 31 of 90.
    assert_eq!(lines.credit.fraction, dec!(0.344444444));
    assert_eq!(lines.credit.amount, dec!(-31.00));
    assert_eq!(lines.charge.amount, dec!(41.33));
}
