//! Property tests of BILLING.md §8 invariants 1 and 5 over random grids, spans and timelines.

use dynabill_core::calendar::{
    BillingDay, BillingPeriod, Cadence, Grid, PeriodLength, Piece, Pricing, ProrationPolicy, Span,
    Terms, TermsChange, TermsTimeline, fraction, proration_lines,
};
use dynabill_core::money::{Currency, Rounding};
use jiff::civil::Date;
use proptest::prelude::*;
use rust_decimal::Decimal;

/// The dates the product accepts: 1900-01-01 ..= 2999-12-31.
fn product_date() -> impl Strategy<Value = Date> {
    (1900i16..=2999, 1i8..=12, 1i8..=31).prop_map(|(year, month, day)| {
        let first = Date::new(year, month, 1).expect("valid month");
        Date::new(year, month, day.min(first.days_in_month())).expect("clamped day")
    })
}

/// Small counts most of the time, any count up to 1000 some of the time.
fn cadence() -> impl Strategy<Value = Cadence> {
    let count = prop_oneof![3 => 1u32..=3, 1 => 1u32..=1000];
    (1i64..=6, count).prop_map(|(code, count)| {
        let period = BillingPeriod::from_code(code).expect("codes 1..=6");
        Cadence::new(period, count).expect("count in range")
    })
}

/// A grid from a random cadence, item start and (sometimes) plan billing day.
fn grid() -> impl Strategy<Value = (Grid, Date, Option<BillingDay>)> {
    (cadence(), product_date(), proptest::option::of(1u32..=31)).prop_map(
        |(cadence, start, day)| {
            let billing_day = day.map(|day| BillingDay::new(day).expect("1..=31"));
            (Grid::new(cadence, start, billing_day), start, billing_day)
        },
    )
}

/// A span starting anywhere in the product's range (before or after the item start).
fn span_of_days(max_days: i64) -> impl Strategy<Value = Span> {
    (product_date(), 0..=max_days).prop_map(|(start, days)| {
        let end = start
            .checked_add(jiff::Span::new().days(days))
            .expect("in range");
        Span::new(start, end).expect("ordered")
    })
}

fn terms() -> impl Strategy<Value = Terms> {
    // Quantity × price stays below 50,000 so 9-place fractions stay far below a minor unit.
    (1i64..=5_000, 0i64..=100_000, 0i64..=100).prop_map(|(quantity, price, discount)| {
        Terms::new(Decimal::new(quantity, 2), Decimal::new(price, 2))
            .with_discount_percent(Decimal::from(discount))
            .expect("0..=100")
    })
}

fn pricing() -> impl Strategy<Value = Pricing> {
    (
        prop_oneof![Just("USD"), Just("JPY"), Just("KWD")],
        prop_oneof![Just(Rounding::HalfUp), Just(Rounding::HalfEven)],
    )
        .prop_map(|(code, rounding)| Pricing {
            // Split and timeline sums are exact only when day fractions add up: actual days.
            policy: ProrationPolicy::ActualDays,
            currency: code.parse().expect("known currency"),
            rounding,
        })
}

/// A change as drawn: day offset from a base date, then quantity and price in hundredths and
/// discount percent, each named or not.
type DrawnChange = (i64, Option<i64>, Option<i64>, Option<i64>);

/// Changes at day offsets from a date, each naming a random subset of the fields.
fn changes(max_offset: i64) -> impl Strategy<Value = Vec<DrawnChange>> {
    proptest::collection::vec(
        (
            -5..=max_offset,
            proptest::option::of(1i64..=5_000),
            proptest::option::of(0i64..=100_000),
            proptest::option::of(0i64..=100),
        ),
        0..6,
    )
}

fn timeline(initial: Terms, base: Date, changes: &[DrawnChange]) -> TermsTimeline {
    let mut timeline = TermsTimeline::new(initial);
    for &(offset, quantity, price, discount) in changes {
        let date = base
            .checked_add(jiff::Span::new().days(offset))
            .expect("in range");
        let mut change = TermsChange::new(date);
        if let Some(quantity) = quantity {
            change = change.with_quantity(Decimal::new(quantity, 2));
        }
        if let Some(price) = price {
            change = change.with_unit_price(Decimal::new(price, 2));
        }
        if let Some(discount) = discount {
            change = change
                .with_discount_percent(Decimal::from(discount))
                .expect("0..=100");
        }
        timeline.push(change);
    }
    timeline
}

/// Half the time `date` itself, else a day either side of (or on) the grid boundary at or
/// before it: off-by-one mistakes live next to boundaries, where uniform dates rarely land.
fn near_boundary(grid: Grid, date: Date, nudge: Option<i64>) -> Date {
    let Some(nudge) = nudge else {
        return date;
    };
    let boundary = grid.boundary(grid.index_of(date).unwrap()).unwrap();
    boundary.checked_add(jiff::Span::new().days(nudge)).unwrap()
}

fn nudge() -> impl Strategy<Value = Option<i64>> {
    proptest::option::of(-1i64..=1)
}

/// A day offset in `0..=days`, chosen by `index`.
fn offset_within(index: prop::sample::Index, days: i64) -> i64 {
    let choices = usize::try_from(days + 1).expect("non-negative day count");
    i64::try_from(index.index(choices)).expect("fits")
}

fn minor_unit(currency: Currency) -> Decimal {
    Decimal::new(1, currency.minor_unit())
}

/// Whether `date` is a boundary of the grid an item starting on `start` gets, checked from
/// the rule itself rather than from the grid's own arithmetic.
fn on_grid(cadence: Cadence, start: Date, billing_day: Option<BillingDay>, date: Date) -> bool {
    match cadence.length() {
        PeriodLength::Months(months) => {
            let month_of = |d: Date| i64::from(d.year()) * 12 + i64::from(d.month());
            let anchor = billing_day.map_or(i64::from(start.day()), |day| i64::from(day.get()));
            let clamped = anchor.min(i64::from(date.days_in_month()));
            (month_of(date) - month_of(start)).rem_euclid(i64::from(months)) == 0
                && i64::from(date.day()) == clamped
        }
        PeriodLength::Days(days) => {
            let elapsed = date.duration_since(start).as_hours() / 24;
            elapsed.rem_euclid(i64::from(days)) == 0
        }
    }
}

fn period_length_holds(cadence: Cadence, period: Span) -> bool {
    match cadence.length() {
        PeriodLength::Months(months) => {
            let (start, end) = (period.start(), period.end());
            let elapsed = (i64::from(end.year()) - i64::from(start.year())) * 12
                + i64::from(end.month())
                - i64::from(start.month());
            elapsed == i64::from(months)
        }
        PeriodLength::Days(days) => period.days() == i64::from(days),
    }
}

proptest! {
    /// Invariant 5: pieces tile the span, each inside its full period, and every period
    /// boundary is on the clamped anchor.
    #[test]
    fn pieces_tile_a_span_and_periods_start_and_end_on_the_grid(
        (grid, start, billing_day) in grid(),
        span in span_of_days(1_500),
        nudges in (nudge(), nudge()),
    ) {
        let cadence = grid.cadence();
        let span_start = near_boundary(grid, span.start(), nudges.0);
        let span_end = near_boundary(grid, span.end(), nudges.1).max(span_start);
        let span = Span::new(span_start, span_end).unwrap();
        let pieces = grid.pieces(span).unwrap();

        prop_assert_eq!(pieces.is_empty(), span.is_empty());
        let mut cursor = span.start();
        for (i, piece) in pieces.iter().enumerate() {
            prop_assert_eq!(piece.span().start(), cursor, "gap or overlap before piece {}", i);
            prop_assert!(!piece.span().is_empty());
            prop_assert!(piece.period().encloses(piece.span()));
            prop_assert!(on_grid(cadence, start, billing_day, piece.period().start()));
            prop_assert!(on_grid(cadence, start, billing_day, piece.period().end()));
            prop_assert!(period_length_holds(cadence, piece.period()));
            let interior = i > 0 && i + 1 < pieces.len();
            prop_assert!(!interior || piece.is_full());
            if let Some(next) = pieces.get(i + 1) {
                prop_assert_eq!(piece.period().end(), next.period().start());
                prop_assert_eq!(piece.span().end(), piece.period().end());
            }
            cursor = piece.span().end();
        }
        prop_assert_eq!(cursor, span.end());
        if let Some(first) = pieces.first() {
            let starts_on_grid = on_grid(cadence, start, billing_day, span.start());
            prop_assert_eq!(first.is_leading_partial(), !starts_on_grid);
        }
    }

    /// The period containing a date holds it, and the next boundary is strictly after it.
    #[test]
    fn every_date_lies_in_exactly_one_period_between_grid_boundaries(
        (grid, start, billing_day) in grid(),
        date in product_date(),
        nudge in nudge(),
    ) {
        let date = near_boundary(grid, date, nudge);
        let k = grid.index_of(date).unwrap();
        let period = grid.period(k).unwrap();
        prop_assert!(period.contains(date));
        prop_assert_eq!(grid.period_containing(date).unwrap(), period);
        prop_assert_eq!(grid.boundary(k).unwrap(), period.start());
        prop_assert!(on_grid(grid.cadence(), start, billing_day, period.start()));
        let next = grid.first_boundary_after(date).unwrap();
        prop_assert!(next > date);
        prop_assert_eq!(next, grid.boundary(k + 1).unwrap());
    }

    /// Fractions of any part of a period stay within [0, 1] under both policies.
    #[test]
    fn a_part_of_a_period_is_worth_between_nothing_and_the_whole_period(
        (grid, _, _) in grid(),
        date in product_date(),
        cut in (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
    ) {
        let period = grid.period_containing(date).unwrap();
        let days = period.days();
        let (a, b) = (offset_within(cut.0, days), offset_within(cut.1, days));
        let (a, b) = (a.min(b), a.max(b));
        let at = |offset: i64| period.start().checked_add(jiff::Span::new().days(offset)).unwrap();
        let part = Span::new(at(a), at(b)).unwrap();
        for policy in [ProrationPolicy::ActualDays, ProrationPolicy::Thirty360] {
            let fraction = fraction(part, period, policy, grid.cadence()).unwrap();
            prop_assert!(fraction >= Decimal::ZERO && fraction <= Decimal::ONE, "{} of {}: {}", part, period, fraction);
        }
    }

    /// The cost of a span equals the sum of the costs of its parts, within one minor unit per
    /// line billed for the parts.
    #[test]
    fn the_cost_of_a_span_is_the_sum_of_the_costs_of_any_split_of_it(
        (grid, _, _) in grid(),
        span in span_of_days(800),
        splits in proptest::collection::vec(any::<prop::sample::Index>(), 0..5),
        initial in terms(),
        changes in changes(800),
        pricing in pricing(),
    ) {
        let timeline = timeline(initial, span.start(), &changes);
        let whole = timeline.cost(span, grid, pricing).unwrap();

        let days = span.days();
        let mut cuts: Vec<i64> = splits.iter().map(|&s| offset_within(s, days)).collect();
        cuts.push(0);
        cuts.push(days);
        cuts.sort_unstable();
        cuts.dedup();
        let mut parts_total = Decimal::ZERO;
        let mut parts_lines = 0usize;
        for pair in cuts.windows(2) {
            let at = |offset: i64| span.start().checked_add(jiff::Span::new().days(offset)).unwrap();
            let part = Span::new(at(pair[0]), at(pair[1])).unwrap();
            let cost = timeline.cost(part, grid, pricing).unwrap();
            parts_total += cost.total;
            parts_lines += cost.lines.len();
        }

        let tolerance = minor_unit(pricing.currency) * Decimal::from(parts_lines);
        prop_assert!(
            (whole.total - parts_total).abs() <= tolerance,
            "whole {} vs parts {} (tolerance {})", whole.total, parts_total, tolerance
        );
    }

    /// Invariant 1: a billed piece plus the credit and charge of every change inside it sums
    /// to what the timeline says the piece costs, within one minor unit per line.
    #[test]
    fn a_periods_lines_sum_to_its_timeline_cost(
        (grid, _, _) in grid(),
        span in span_of_days(400).prop_filter("non-empty", |s| !s.is_empty()),
        choice in any::<prop::sample::Index>(),
        initial in terms(),
        changes in changes(400),
        pricing in pricing(),
    ) {
        let pieces = grid.pieces(span).unwrap();
        let billed: Piece = pieces[choice.index(pieces.len())];
        let timeline = timeline(initial, billed.span().start(), &changes);
        let transitions = timeline.transitions_within(billed.span());
        // Billed before any change inside the piece was known: the terms just before the first.
        let billed_terms = transitions
            .first()
            .map_or_else(|| timeline.terms_at(billed.span().start()), |t| t.before);
        let billed_fraction =
            fraction(billed.span(), billed.period(), pricing.policy, grid.cadence()).unwrap();

        let mut lines_total = billed_terms
            .prorated_amount(billed_fraction, pricing.currency, pricing.rounding)
            .unwrap();
        let mut line_count = 1u32;
        for transition in &transitions {
            let lines = proration_lines(
                billed,
                transition.effective,
                transition.before,
                transition.after,
                grid.cadence(),
                pricing,
            )
            .unwrap();
            prop_assert!(lines.credit.amount <= Decimal::ZERO && lines.charge.amount >= Decimal::ZERO);
            lines_total += lines.credit.amount + lines.charge.amount;
            line_count += 2;
        }

        let cost = timeline.cost(billed.span(), grid, pricing).unwrap();
        let tolerance = minor_unit(pricing.currency) * Decimal::from(line_count);
        prop_assert!(
            (cost.total - lines_total).abs() <= tolerance,
            "lines {} vs timeline {} (tolerance {})", lines_total, cost.total, tolerance
        );
    }

    /// Stretches tile their span, and each holds the terms in force on its every date.
    #[test]
    fn stretches_hold_the_terms_in_force_on_their_dates(
        span in span_of_days(200),
        initial in terms(),
        changes in changes(200),
        probe in any::<prop::sample::Index>(),
    ) {
        let timeline = timeline(initial, span.start(), &changes);
        let stretches = timeline.stretches(span);
        let mut cursor = span.start();
        for stretch in &stretches {
            prop_assert_eq!(stretch.span.start(), cursor);
            prop_assert_eq!(timeline.terms_at(stretch.span.start()), stretch.terms);
            let last = stretch.span.last_day().unwrap();
            prop_assert_eq!(timeline.terms_at(last), stretch.terms);
            cursor = stretch.span.end();
        }
        prop_assert_eq!(cursor, span.end());
        for pair in stretches.windows(2) {
            prop_assert_ne!(pair[0].terms, pair[1].terms);
        }
        if !span.is_empty() {
            let offset = offset_within(probe, span.days() - 1);
            let date = span.start().checked_add(jiff::Span::new().days(offset)).unwrap();
            let holder = stretches.iter().find(|s| s.span.contains(date)).unwrap();
            prop_assert_eq!(holder.terms, timeline.terms_at(date));
        }
    }
}
