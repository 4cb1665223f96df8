//! The grid of period boundaries an item bills on, and the pieces a span is cut into.

use jiff::civil::Date;

use super::CalendarError;
use super::cadence::{BillingDay, Cadence, PeriodLength};
use super::span::{Span, add_days, days_between};

/// An item's period boundaries `B(k)` for every integer `k`, `B(0)` at or before its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Grid {
    cadence: Cadence,
    shape: Shape,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Shape {
    /// `B(k)` is in month `origin + k × months` (months counted from year 0), on `anchor` clamped.
    Months {
        origin: i64,
        months: i64,
        anchor: i8,
    },
    /// `B(k)` is `origin + k × days`.
    Days { origin: Date, days: i64 },
}

impl Grid {
    /// The grid of an item starting on `start`: month-based cadences anchor on `billing_day`
    /// when the plan sets one, else on the start's day; weekly and daily ones on `start`.
    pub fn new(cadence: Cadence, start: Date, billing_day: Option<BillingDay>) -> Self {
        let shape = match cadence.length() {
            PeriodLength::Months(months) => Shape::Months {
                origin: month_index(start),
                months: i64::from(months),
                anchor: billing_day.map_or(start.day(), BillingDay::day_of_month),
            },
            PeriodLength::Days(days) => Shape::Days {
                origin: start,
                days: i64::from(days),
            },
        };
        Self { cadence, shape }
    }

    pub fn cadence(self) -> Cadence {
        self.cadence
    }

    /// The anchor day of a month-based grid (before clamping), `None` for weekly and daily.
    pub fn anchor_day(self) -> Option<u32> {
        match self.shape {
            Shape::Months { anchor, .. } => Some(anchor.unsigned_abs().into()),
            Shape::Days { .. } => None,
        }
    }

    /// Boundary `B(k)`, computed from `k` alone so a clamped day never leaks into later months.
    pub fn boundary(self, k: i64) -> Result<Date, CalendarError> {
        match self.shape {
            Shape::Months {
                origin,
                months,
                anchor,
            } => {
                let month = k
                    .checked_mul(months)
                    .and_then(|offset| origin.checked_add(offset))
                    .ok_or(CalendarError::DateOutOfRange)?;
                clamped_day_of_month(month, anchor)
            }
            Shape::Days { origin, days } => {
                let offset = k.checked_mul(days).ok_or(CalendarError::DateOutOfRange)?;
                add_days(origin, offset)
            }
        }
    }

    /// The `k` with `B(k) <= date < B(k + 1)`.
    pub fn index_of(self, date: Date) -> Result<i64, CalendarError> {
        match self.shape {
            Shape::Months { origin, months, .. } => {
                // B(k) lies in the month the quotient names, so it is either date's period or,
                // when the anchor falls later in that month than date, the one just after.
                let k = (month_index(date) - origin).div_euclid(months);
                if self.boundary(k)? <= date {
                    Ok(k)
                } else {
                    Ok(k - 1)
                }
            }
            Shape::Days { origin, days } => Ok(days_between(origin, date).div_euclid(days)),
        }
    }

    /// Full period `k`: `[B(k), B(k + 1))`.
    pub fn period(self, k: i64) -> Result<Span, CalendarError> {
        let next = k.checked_add(1).ok_or(CalendarError::DateOutOfRange)?;
        Span::new(self.boundary(k)?, self.boundary(next)?)
    }

    /// The full grid period that contains `date`.
    pub fn period_containing(self, date: Date) -> Result<Span, CalendarError> {
        self.period(self.index_of(date)?)
    }

    /// The first boundary strictly after `date` (where a `ProrationMode` 0 change takes effect).
    pub fn first_boundary_after(self, date: Date) -> Result<Date, CalendarError> {
        Ok(self.period_containing(date)?.end())
    }

    /// The pieces of `span` cut by the grid, in order, each with its full period.
    pub fn pieces(self, span: Span) -> Result<Vec<Piece>, CalendarError> {
        self.periods(span.start(), Some(span.end()), span.end())
    }

    /// The pieces of `[start, end)` (`end` `None`: open-ended) that start before `until`.
    ///
    /// `until` only selects pieces, it never cuts one: the last piece runs to its period's end
    /// (or to `end`), because the item goes on after `until`.
    pub fn periods(
        self,
        start: Date,
        end: Option<Date>,
        until: Date,
    ) -> Result<Vec<Piece>, CalendarError> {
        if let Some(end) = end {
            Span::new(start, end)?;
        }
        let mut pieces = Vec::new();
        let mut k = self.index_of(start)?;
        let mut cursor = start;
        while cursor < until && end.is_none_or(|end| cursor < end) {
            let period = self.period(k)?;
            let piece_end = end.map_or(period.end(), |end| end.min(period.end()));
            pieces.push(Piece {
                span: Span::new(cursor, piece_end)?,
                period,
            });
            cursor = period.end();
            k = k.checked_add(1).ok_or(CalendarError::DateOutOfRange)?;
        }
        Ok(pieces)
    }
}

/// A non-empty part of one full grid period: the whole of it, or a leading or trailing partial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Piece {
    span: Span,
    period: Span,
}

impl Piece {
    /// Refuses a span that is empty or not inside `period`.
    pub fn new(span: Span, period: Span) -> Result<Self, CalendarError> {
        if span.is_empty() || !period.encloses(span) {
            return Err(CalendarError::NotInPeriod { span, period });
        }
        Ok(Self { span, period })
    }

    /// The dates billed.
    pub fn span(self) -> Span {
        self.span
    }

    /// The full grid period `P` that contains the piece; proration divides by it.
    pub fn period(self) -> Span {
        self.period
    }

    pub fn is_full(self) -> bool {
        self.span == self.period
    }

    /// Starts after its period does (an item start or change off the grid).
    pub fn is_leading_partial(self) -> bool {
        self.span.start() > self.period.start()
    }

    /// Ends before its period does (an item end off the grid).
    pub fn is_trailing_partial(self) -> bool {
        self.span.end() < self.period.end()
    }
}

/// Months since January of year 0 (negative before), so month arithmetic is integer arithmetic.
fn month_index(date: Date) -> i64 {
    i64::from(date.year()) * 12 + i64::from(date.month()) - 1
}

/// The `anchor` day of month `index`, clamped to the month's length.
fn clamped_day_of_month(index: i64, anchor: i8) -> Result<Date, CalendarError> {
    let year = i16::try_from(index.div_euclid(12)).map_err(|_| CalendarError::DateOutOfRange)?;
    // rem_euclid(12) is 0..=11, so the month fits i8.
    let month = index.rem_euclid(12) as i8 + 1;
    let first = Date::new(year, month, 1).map_err(|_| CalendarError::DateOutOfRange)?;
    let day = anchor.min(first.days_in_month());
    Date::new(year, month, day).map_err(|_| CalendarError::DateOutOfRange)
}
