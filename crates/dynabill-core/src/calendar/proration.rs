//! Proration: the fraction of a full period a span is worth, and a line's amount (BILLING.md §2).

use jiff::civil::Date;
use rust_decimal::Decimal;

use super::CalendarError;
use super::cadence::{Cadence, PeriodLength};
use super::span::Span;
use crate::money::{Currency, Rounding, round_fraction};

/// How a partial span is measured against its full period (tenant setting `ProrationPolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ProrationPolicy {
    /// 1: `days(span) / days(P)`.
    #[default]
    ActualDays,
    /// 2: the span's 30/360 US day count over 30 days per month of the period.
    Thirty360,
}

impl ProrationPolicy {
    /// Reads the wire code: 1 actual days, 2 30/360.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(Self::ActualDays),
            2 => Some(Self::Thirty360),
            _ => None,
        }
    }

    pub fn code(self) -> i64 {
        match self {
            Self::ActualDays => 1,
            Self::Thirty360 => 2,
        }
    }
}

/// The tenant settings that turn terms and a fraction into a line amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pricing {
    pub policy: ProrationPolicy,
    pub currency: Currency,
    pub rounding: Rounding,
}

/// The fraction of `period` that `span` is worth, rounded to 9 places half-up.
///
/// A full period is exactly 1 under either policy (30/360 would count `[Jan 31, Feb 28)` as
/// 28 of 30). Weekly and daily cadences always count actual days.
pub fn fraction(
    span: Span,
    period: Span,
    policy: ProrationPolicy,
    cadence: Cadence,
) -> Result<Decimal, CalendarError> {
    if period.is_empty() || !period.encloses(span) {
        return Err(CalendarError::NotInPeriod { span, period });
    }
    if span == period {
        return Ok(Decimal::ONE);
    }
    let (days, period_days) = match (policy, cadence.length()) {
        (ProrationPolicy::Thirty360, PeriodLength::Months(months)) => (
            days_30_360(span.start(), span.end()),
            30 * i64::from(months),
        ),
        (ProrationPolicy::ActualDays, _) | (ProrationPolicy::Thirty360, PeriodLength::Days(_)) => {
            (span.days(), period.days())
        }
    };
    let exact = Decimal::from(days)
        .checked_div(Decimal::from(period_days))
        .ok_or(CalendarError::AmountOverflow)?;
    Ok(round_fraction(exact))
}

/// Days from `start` to `end` by the 30/360 US convention (with both February end-of-month
/// rules), as `360 × years + 30 × months + days` after the day adjustments.
pub fn days_30_360(start: Date, end: Date) -> i64 {
    let start_is_february_end = is_last_day_of_february(start);
    let mut start_day = i64::from(start.day());
    let mut end_day = i64::from(end.day());
    // The rules apply in this order; each later one sees the days the earlier ones set.
    if start_is_february_end && is_last_day_of_february(end) {
        end_day = 30;
    }
    if start_is_february_end {
        start_day = 30;
    }
    if end_day == 31 && start_day >= 30 {
        end_day = 30;
    }
    if start_day == 31 {
        start_day = 30;
    }
    let years = i64::from(end.year()) - i64::from(start.year());
    let months = i64::from(end.month()) - i64::from(start.month());
    360 * years + 30 * months + (end_day - start_day)
}

fn is_last_day_of_february(date: Date) -> bool {
    date.month() == 2 && date.day() == date.days_in_month()
}

/// An item's commercial terms: quantity, unit price and discount percent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Terms {
    quantity: Decimal,
    unit_price: Decimal,
    discount_percent: Decimal,
}

impl Terms {
    /// Undiscounted terms.
    pub fn new(quantity: Decimal, unit_price: Decimal) -> Self {
        Self {
            quantity,
            unit_price,
            discount_percent: Decimal::ZERO,
        }
    }

    /// The same terms with `DiscountPercent` set; refuses anything outside 0..=100.
    pub fn with_discount_percent(self, percent: Decimal) -> Result<Self, CalendarError> {
        Ok(Self {
            discount_percent: checked_discount(percent)?,
            ..self
        })
    }

    pub fn quantity(self) -> Decimal {
        self.quantity
    }

    pub fn unit_price(self) -> Decimal {
        self.unit_price
    }

    pub fn discount_percent(self) -> Decimal {
        self.discount_percent
    }

    pub(crate) fn with_quantity(self, quantity: Decimal) -> Self {
        Self { quantity, ..self }
    }

    pub(crate) fn with_unit_price(self, unit_price: Decimal) -> Self {
        Self { unit_price, ..self }
    }

    pub(crate) fn with_checked_discount(self, discount_percent: Decimal) -> Self {
        Self {
            discount_percent,
            ..self
        }
    }

    /// `quantity × unit_price × fraction × (100 − DiscountPercent) / 100`, rounded once, at the
    /// end, to the currency's minor unit under `rounding`.
    pub fn prorated_amount(
        self,
        fraction: Decimal,
        currency: Currency,
        rounding: Rounding,
    ) -> Result<Decimal, CalendarError> {
        let hundred = Decimal::ONE_HUNDRED;
        let exact = self
            .quantity
            .checked_mul(self.unit_price)
            .and_then(|gross| gross.checked_mul(fraction))
            .and_then(|gross| gross.checked_mul(hundred - self.discount_percent))
            .and_then(|net| net.checked_div(hundred))
            .ok_or(CalendarError::AmountOverflow)?;
        Ok(rounding.to_minor_unit(exact, currency))
    }

    /// A one-time item's amount: never prorated, so the fraction is 1.
    pub fn one_time_amount(
        self,
        currency: Currency,
        rounding: Rounding,
    ) -> Result<Decimal, CalendarError> {
        self.prorated_amount(Decimal::ONE, currency, rounding)
    }
}

pub(crate) fn checked_discount(percent: Decimal) -> Result<Decimal, CalendarError> {
    if percent < Decimal::ZERO || percent > Decimal::ONE_HUNDRED {
        return Err(CalendarError::DiscountOutOfRange { percent });
    }
    Ok(percent)
}
