//! Recurring revenue (issue 15): the monthly value of an item's terms, and how an
//! account's monthly recurring revenue moved between two days.
//!
//! Amounts are exact decimals, never rounded here: a total is rounded once, to its
//! currency's minor unit, when it is shown.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::calendar::{BillingPeriod, Cadence, Terms};

/// The decimal places a monthly value is kept to: far below any currency's minor
/// unit, and fixed, so that sums of monthly values are exact.
pub const MRR_SCALE: u32 = 12;

/// `Quantity × UnitPrice × (1 − DiscountPercent/100)` billed every `cadence`,
/// normalised to a month: Monthly ÷ n, Quarterly ÷ 3n, Semi-annual ÷ 6n, Annual
/// ÷ 12n, Weekly × 52 ÷ 12n, Daily × 365 ÷ 12n (n the `BillingPeriodCount`).
///
/// One division, last, then rounded half-up to [`MRR_SCALE`] decimal places: a
/// quotient without a finite decimal (a third of a quarter) is kept to 10⁻¹² of a
/// currency unit, and at that fixed scale every sum and difference of monthly
/// values is exact, so the movements invariant holds to the last digit. `None`
/// if the product does not fit a decimal.
pub fn monthly_value(terms: Terms, cadence: Cadence) -> Option<Decimal> {
    let (times, months) = match cadence.period() {
        BillingPeriod::Monthly => (1, 1),
        BillingPeriod::Quarterly => (1, 3),
        BillingPeriod::SemiAnnual => (1, 6),
        BillingPeriod::Annual => (1, 12),
        BillingPeriod::Weekly => (52, 12),
        BillingPeriod::Daily => (365, 12),
    };
    let kept = Decimal::ONE_HUNDRED.checked_sub(terms.discount_percent())?;
    let numerator = terms
        .quantity()
        .checked_mul(terms.unit_price())?
        .checked_mul(kept)?
        .checked_mul(Decimal::from(times))?;
    let denominator = Decimal::ONE_HUNDRED
        .checked_mul(Decimal::from(months))?
        .checked_mul(Decimal::from(cadence.count()))?;
    let value = numerator.checked_div(denominator)?;
    Some(
        value
            .round_dp_with_strategy(MRR_SCALE, RoundingStrategy::MidpointAwayFromZero)
            .normalize(),
    )
}

/// How an account's MRR in one currency moved between two days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MovementKind {
    /// From nothing to something, for the first time.
    New,
    /// From nothing to something, having had MRR before.
    Reactivation,
    /// Up, from something.
    Expansion,
    /// Down, still above nothing.
    Contraction,
    /// Down to nothing.
    Churn,
}

impl MovementKind {
    pub const ALL: [MovementKind; 5] = [
        MovementKind::New,
        MovementKind::Reactivation,
        MovementKind::Expansion,
        MovementKind::Contraction,
        MovementKind::Churn,
    ];

    /// Its stable name (`new`, `reactivation`, `expansion`, `contraction`, `churn`).
    pub fn name(self) -> &'static str {
        match self {
            MovementKind::New => "new",
            MovementKind::Reactivation => "reactivation",
            MovementKind::Expansion => "expansion",
            MovementKind::Contraction => "contraction",
            MovementKind::Churn => "churn",
        }
    }

    /// Whether the movement adds to MRR (else it takes away).
    pub fn adds(self) -> bool {
        matches!(
            self,
            MovementKind::New | MovementKind::Reactivation | MovementKind::Expansion
        )
    }
}

/// One account's movement: its kind and its amount (positive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Movement {
    pub kind: MovementKind,
    pub amount: Decimal,
}

/// The movement from MRR `start` to MRR `end` (neither negative), or `None` when
/// it did not move. `had_mrr_before` says whether the account had MRR at any time
/// before the start: it tells a reactivation from a new account.
pub fn movement(start: Decimal, end: Decimal, had_mrr_before: bool) -> Option<Movement> {
    let kind = if start == end {
        return None;
    } else if start.is_zero() {
        if had_mrr_before {
            MovementKind::Reactivation
        } else {
            MovementKind::New
        }
    } else if end.is_zero() {
        MovementKind::Churn
    } else if end > start {
        MovementKind::Expansion
    } else {
        MovementKind::Contraction
    };
    Some(Movement {
        kind,
        amount: (end - start).abs(),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal::dec;

    use super::*;

    fn cadence(period: BillingPeriod, count: u32) -> Cadence {
        Cadence::new(period, count).unwrap()
    }

    fn terms(quantity: Decimal, price: Decimal, discount: Decimal) -> Terms {
        Terms::new(quantity, price)
            .with_discount_percent(discount)
            .unwrap()
    }

    #[test]
    fn each_period_is_normalised_to_a_month() {
        let t = terms(dec!(3), dec!(40), dec!(25)); // 3 × 40 × 0.75 = 90 a period
        let cases = [
            (BillingPeriod::Monthly, 1, dec!(90)),
            (BillingPeriod::Monthly, 2, dec!(45)),
            (BillingPeriod::Quarterly, 1, dec!(30)),
            (BillingPeriod::Quarterly, 2, dec!(15)),
            (BillingPeriod::SemiAnnual, 1, dec!(15)),
            (BillingPeriod::Annual, 1, dec!(7.5)),
            (BillingPeriod::Annual, 3, dec!(2.5)),
            (BillingPeriod::Weekly, 1, dec!(390)), // 90 × 52 / 12
            (BillingPeriod::Weekly, 2, dec!(195)),
            (BillingPeriod::Daily, 1, dec!(2737.5)), // 90 × 365 / 12
            (BillingPeriod::Daily, 5, dec!(547.5)),
        ];
        for (period, count, expected) in cases {
            assert_eq!(
                monthly_value(t, cadence(period, count)),
                Some(expected),
                "{period:?} x{count}"
            );
        }
    }

    #[test]
    fn a_quotient_without_a_finite_decimal_is_kept_to_twelve_places() {
        let third = monthly_value(
            terms(dec!(1), dec!(100), dec!(0)),
            cadence(BillingPeriod::Quarterly, 1),
        )
        .unwrap();
        assert_eq!(third, dec!(33.333333333333));
        let two_thirds = monthly_value(
            terms(dec!(2), dec!(100), dec!(0)),
            cadence(BillingPeriod::Quarterly, 1),
        )
        .unwrap();
        assert_eq!(two_thirds, dec!(66.666666666667), "half-up");
        // At a fixed scale, differences are exact: what moved plus where it
        // started is where it ended, to the last digit.
        assert_eq!(third + (two_thirds - third), two_thirds);
    }

    #[test]
    fn a_product_beyond_a_decimal_is_refused_not_wrapped() {
        let huge = Decimal::MAX / dec!(10);
        assert_eq!(
            monthly_value(terms(huge, huge, dec!(0)), cadence(BillingPeriod::Daily, 1)),
            None
        );
    }

    #[test]
    fn movements_are_told_apart_by_start_end_and_history() {
        let m = |s, e, before| movement(s, e, before).map(|m| (m.kind, m.amount));
        assert_eq!(
            m(dec!(0), dec!(10), false),
            Some((MovementKind::New, dec!(10)))
        );
        assert_eq!(
            m(dec!(0), dec!(10), true),
            Some((MovementKind::Reactivation, dec!(10)))
        );
        assert_eq!(
            m(dec!(10), dec!(15), true),
            Some((MovementKind::Expansion, dec!(5)))
        );
        assert_eq!(
            m(dec!(15), dec!(10), true),
            Some((MovementKind::Contraction, dec!(5)))
        );
        assert_eq!(
            m(dec!(15), dec!(0), true),
            Some((MovementKind::Churn, dec!(15)))
        );
        assert_eq!(m(dec!(15), dec!(15), true), None);
        assert_eq!(m(dec!(0), dec!(0), false), None);
    }

    /// docs/INSIGHTS.md's worked example of a month's movements.
    #[test]
    fn the_documented_month_adds_up() {
        let accounts = [
            (dec!(100), dec!(150), true),
            (dec!(80), dec!(0), true),
            (dec!(0), dec!(60), true),
        ];
        let kinds: Vec<_> = accounts
            .iter()
            .map(|(s, e, before)| movement(*s, *e, *before).unwrap())
            .map(|m| (m.kind, m.amount))
            .collect();
        assert_eq!(
            kinds,
            [
                (MovementKind::Expansion, dec!(50)),
                (MovementKind::Churn, dec!(80)),
                (MovementKind::Reactivation, dec!(60)),
            ]
        );
        assert_eq!(dec!(180) + dec!(60) + dec!(50) - dec!(80), dec!(210));
    }

    fn amount() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            Just(Decimal::ZERO),
            (1i64..1_000_000).prop_map(|c| Decimal::new(c, 2))
        ]
    }

    proptest! {
        /// For any accounts' starting and ending MRR: start + new + reactivation +
        /// expansion − contraction − churn = end, exactly.
        #[test]
        fn movements_add_up_to_the_change(
            accounts in prop::collection::vec((amount(), amount(), any::<bool>()), 0..40)
        ) {
            let start: Decimal = accounts.iter().map(|(s, _, _)| *s).sum();
            let end: Decimal = accounts.iter().map(|(_, e, _)| *e).sum();
            let mut moved = start;
            for (s, e, before) in &accounts {
                if let Some(m) = movement(*s, *e, *before || !s.is_zero()) {
                    prop_assert!(m.amount > Decimal::ZERO);
                    if m.kind.adds() { moved += m.amount } else { moved -= m.amount }
                }
            }
            prop_assert_eq!(moved, end);
        }

        /// A month's value times the months of a monthly-counted period is the
        /// period's amount (to far below a cent), for every count.
        #[test]
        fn a_period_is_its_months_of_value(
            cents in 0i64..10_000_000,
            quantity in 1i64..500,
            discount in 0i64..=100,
            count in 1u32..=24,
            period in prop_oneof![
                Just(BillingPeriod::Monthly),
                Just(BillingPeriod::Quarterly),
                Just(BillingPeriod::SemiAnnual),
                Just(BillingPeriod::Annual),
            ],
        ) {
            let t = terms(Decimal::from(quantity), Decimal::new(cents, 2), Decimal::from(discount));
            let c = cadence(period, count);
            let per_period = Decimal::from(quantity) * Decimal::new(cents, 2)
                * (Decimal::ONE_HUNDRED - Decimal::from(discount)) / Decimal::ONE_HUNDRED;
            let months = Decimal::from(c.months().unwrap());
            let value = monthly_value(t, c).unwrap();
            // Each month is within half a unit of the 12th place of its exact share.
            prop_assert!((value * months - per_period).abs() <= months * Decimal::new(5, 13));
        }
    }
}
