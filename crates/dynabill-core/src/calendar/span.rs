//! Half-open date spans `[start, end)` and the day arithmetic under them.

use std::fmt;

use jiff::SignedDuration;
use jiff::civil::Date;

use super::CalendarError;

const SECONDS_PER_DAY: i64 = 86_400;

/// The dates from `start` (included) to `end` (excluded); `start == end` is the empty span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    start: Date,
    end: Date,
}

impl Span {
    /// Refuses a span that ends before it starts.
    pub fn new(start: Date, end: Date) -> Result<Self, CalendarError> {
        if end < start {
            return Err(CalendarError::EndBeforeStart { start, end });
        }
        Ok(Self { start, end })
    }

    /// For callers that already know `start <= end` (a cut point taken from inside a span).
    pub(crate) fn ordered(start: Date, end: Date) -> Self {
        debug_assert!(start <= end, "span {start} .. {end} is out of order");
        Self { start, end }
    }

    pub fn start(self) -> Date {
        self.start
    }

    /// The first date after the span (exclusive end).
    pub fn end(self) -> Date {
        self.end
    }

    /// Number of days in the span.
    pub fn days(self) -> i64 {
        days_between(self.start, self.end)
    }

    pub fn is_empty(self) -> bool {
        self.start == self.end
    }

    pub fn contains(self, date: Date) -> bool {
        self.start <= date && date < self.end
    }

    /// Whether every date of `other` is in this span (an empty `other` inside its bounds counts).
    pub fn encloses(self, other: Span) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// The dates both spans hold, or `None` when they share none.
    pub fn intersection(self, other: Span) -> Option<Span> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start < end).then_some(Span { start, end })
    }

    /// The inclusive last day (`end - 1`), as invoices print `ServiceEnd`; `None` when empty.
    pub fn last_day(self) -> Option<Date> {
        if self.is_empty() {
            return None;
        }
        // end > start, so the day before end is a representable date.
        self.end.yesterday().ok()
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

/// Days from `from` to `to`, negative when `to` is earlier.
pub(crate) fn days_between(from: Date, to: Date) -> i64 {
    // Civil dates have no time zone, so the duration is a whole number of 24-hour days.
    to.duration_since(from).as_secs() / SECONDS_PER_DAY
}

/// `date` moved by `days` (either direction), or an error past jiff's calendar.
pub(crate) fn add_days(date: Date, days: i64) -> Result<Date, CalendarError> {
    let seconds = days
        .checked_mul(SECONDS_PER_DAY)
        .ok_or(CalendarError::DateOutOfRange)?;
    date.checked_add(SignedDuration::from_secs(seconds))
        .map_err(|_| CalendarError::DateOutOfRange)
}
