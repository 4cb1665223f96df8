//! Recurring-item dates that follow from the billing calendar: when an item is
//! next billed, where "cancel at the end of the current period" lands, and how a
//! renewal moves the end of the term.

use jiff::ToSpan;
use jiff::civil::Date;

use crate::calendar::{CalendarError, Grid};
use crate::domain::BillingTiming;

/// The date on which the next bill run will bill this item: the start of its
/// first unbilled period when billed in advance, that period's end when billed in
/// arrears; `None` once everything up to the item's end is billed.
pub fn next_billing_date(
    grid: Grid,
    timing: BillingTiming,
    start: Date,
    end: Option<Date>,
    charged_through: Option<Date>,
) -> Result<Option<Date>, CalendarError> {
    let next = charged_through.unwrap_or(start).max(start);
    if end.is_some_and(|end| next >= end) {
        return Ok(None);
    }
    match timing {
        BillingTiming::InAdvance => Ok(Some(next)),
        BillingTiming::InArrears => {
            let period_end = grid.period_containing(next)?.end();
            Ok(Some(end.map_or(period_end, |end| end.min(period_end))))
        }
    }
}

/// Where `CancelAt` 2 ("at the end of the current billed period") ends an item:
/// its charged-through date; for an item never billed, the end of the period that
/// contains the later of today and its start (BILLING.md §4).
pub fn end_of_current_period(
    grid: Grid,
    start: Date,
    charged_through: Option<Date>,
    today: Date,
) -> Result<Date, CalendarError> {
    if let Some(charged) = charged_through {
        return Ok(charged);
    }
    Ok(grid.period_containing(today.max(start))?.end())
}

/// The end of a term renewed for `months` more months from `end` (the day is kept,
/// or clamped to the last day of a shorter month).
pub fn renewed_end(end: Date, months: u32) -> Result<Date, CalendarError> {
    end.checked_add(i64::from(months).months())
        .map_err(|_| CalendarError::DateOutOfRange)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{BillingDay, BillingPeriod, Cadence};
    use jiff::civil::date;

    fn monthly(start: Date, day: Option<u32>) -> Grid {
        Grid::new(
            Cadence::from(BillingPeriod::Monthly),
            start,
            day.map(|d| BillingDay::new(d).unwrap()),
        )
    }

    #[test]
    fn an_unbilled_item_in_advance_is_next_billed_at_its_start() {
        let grid = monthly(date(2024, 1, 15), Some(1));
        let next = next_billing_date(
            grid,
            BillingTiming::InAdvance,
            date(2024, 1, 15),
            None,
            None,
        )
        .unwrap();
        assert_eq!(next, Some(date(2024, 1, 15)));
        let next = next_billing_date(
            grid,
            BillingTiming::InAdvance,
            date(2024, 1, 15),
            None,
            Some(date(2024, 2, 1)),
        )
        .unwrap();
        assert_eq!(next, Some(date(2024, 2, 1)));
    }

    #[test]
    fn an_item_in_arrears_is_next_billed_at_its_period_end_or_its_own_end() {
        let grid = monthly(date(2024, 1, 15), Some(1));
        let next = next_billing_date(
            grid,
            BillingTiming::InArrears,
            date(2024, 1, 15),
            None,
            None,
        )
        .unwrap();
        assert_eq!(next, Some(date(2024, 2, 1)));
        let end = Some(date(2024, 3, 10));
        let next = next_billing_date(
            grid,
            BillingTiming::InArrears,
            date(2024, 1, 15),
            end,
            Some(date(2024, 3, 1)),
        )
        .unwrap();
        assert_eq!(
            next,
            Some(date(2024, 3, 10)),
            "the final partial ends at the item's end"
        );
    }

    #[test]
    fn a_fully_billed_item_has_no_next_billing_date() {
        let grid = monthly(date(2024, 1, 1), None);
        let end = Some(date(2024, 3, 1));
        let next = next_billing_date(
            grid,
            BillingTiming::InAdvance,
            date(2024, 1, 1),
            end,
            Some(date(2024, 3, 1)),
        )
        .unwrap();
        assert_eq!(next, None);
    }

    #[test]
    fn cancel_at_period_end_uses_charged_through_or_the_period_of_today() {
        let grid = monthly(date(2024, 1, 15), Some(1));
        let at = end_of_current_period(
            grid,
            date(2024, 1, 15),
            Some(date(2024, 4, 1)),
            date(2024, 3, 20),
        )
        .unwrap();
        assert_eq!(at, date(2024, 4, 1));
        let at = end_of_current_period(grid, date(2024, 1, 15), None, date(2024, 3, 20)).unwrap();
        assert_eq!(at, date(2024, 4, 1));
        // Not started yet: the end of its first period.
        let at = end_of_current_period(grid, date(2024, 1, 15), None, date(2023, 12, 1)).unwrap();
        assert_eq!(at, date(2024, 2, 1));
    }

    #[test]
    fn renewal_adds_whole_months_clamping_short_months() {
        assert_eq!(
            renewed_end(date(2024, 1, 15), 12).unwrap(),
            date(2025, 1, 15)
        );
        assert_eq!(
            renewed_end(date(2024, 1, 31), 1).unwrap(),
            date(2024, 2, 29)
        );
        assert!(renewed_end(date(9999, 1, 1), 12).is_err());
    }
}
