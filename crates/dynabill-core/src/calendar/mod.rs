//! Billing calendar: cadences, grids of periods, spans, proration, terms timelines and adjustments.
//!
//! Everything here is pure date and decimal arithmetic (BILLING.md §1, §2, §4). Spans are
//! half-open `[start, end)`; a grid's boundaries are computed from their index, never by
//! stepping, so an anchor of 31 snaps back to 31 after February. Nothing here panics on a
//! date jiff can represent: arithmetic that would leave jiff's calendar is a
//! [`CalendarError::DateOutOfRange`], an amount that would overflow a `Decimal` is a
//! [`CalendarError::AmountOverflow`].

mod adjust;
mod cadence;
mod grid;
mod proration;
mod span;
mod timeline;

pub use adjust::{
    AdjustmentKind, AdjustmentLine, ProrationLines, ProrationMode, cancellation_credit,
    proration_lines,
};
pub use cadence::{BillingDay, BillingPeriod, Cadence, PeriodLength};
pub use grid::{Grid, Piece};
pub use proration::{Pricing, ProrationPolicy, Terms, days_30_360, fraction};
pub use span::Span;
pub use timeline::{Cost, CostLine, Stretch, TermsChange, TermsTimeline, Transition};

use jiff::civil::Date;
use rust_decimal::Decimal;

/// Why a calendar computation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("billing period count {count} is not within 1..=1000")]
    CountOutOfRange { count: u32 },
    #[error("billing day {day} is not within 1..=31")]
    BillingDayOutOfRange { day: u32 },
    #[error("discount percent {percent} is not within 0..=100")]
    DiscountOutOfRange { percent: Decimal },
    #[error("span ends on {end}, before it starts on {start}")]
    EndBeforeStart { start: Date, end: Date },
    #[error("date arithmetic left the supported calendar")]
    DateOutOfRange,
    #[error("span {span} is not inside the non-empty period {period}")]
    NotInPeriod { span: Span, period: Span },
    #[error("date {date} is not inside {span}")]
    DateOutsideSpan { date: Date, span: Span },
    #[error("amount overflowed the decimal range")]
    AmountOverflow,
}
