//! How often an item bills: the billing period, its multiplier, and the plan's billing day.

use super::CalendarError;

/// The unit of a recurring item's period (wire field `BillingPeriod`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BillingPeriod {
    Monthly,
    Quarterly,
    SemiAnnual,
    Annual,
    Weekly,
    Daily,
}

impl BillingPeriod {
    /// Reads the wire code: 1 Monthly, 2 Quarterly, 3 Semi-annual, 4 Annual, 5 Weekly, 6 Daily.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(Self::Monthly),
            2 => Some(Self::Quarterly),
            3 => Some(Self::SemiAnnual),
            4 => Some(Self::Annual),
            5 => Some(Self::Weekly),
            6 => Some(Self::Daily),
            _ => None,
        }
    }

    /// The wire code, the inverse of [`BillingPeriod::from_code`].
    pub fn code(self) -> i64 {
        match self {
            Self::Monthly => 1,
            Self::Quarterly => 2,
            Self::SemiAnnual => 3,
            Self::Annual => 4,
            Self::Weekly => 5,
            Self::Daily => 6,
        }
    }

    fn unit_length(self) -> PeriodLength {
        match self {
            Self::Monthly => PeriodLength::Months(1),
            Self::Quarterly => PeriodLength::Months(3),
            Self::SemiAnnual => PeriodLength::Months(6),
            Self::Annual => PeriodLength::Months(12),
            Self::Weekly => PeriodLength::Days(7),
            Self::Daily => PeriodLength::Days(1),
        }
    }
}

/// The length of one full period: whole months (anchored on a day of the month) or whole days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeriodLength {
    Months(u32),
    Days(u32),
}

/// A billing period with its multiplier (`BillingPeriodCount`), e.g. every two months.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cadence {
    period: BillingPeriod,
    count: u32,
}

impl Cadence {
    /// The largest `BillingPeriodCount` the product accepts.
    pub const MAX_COUNT: u32 = 1000;

    /// A cadence of `count` periods; refuses 0 and anything above [`Cadence::MAX_COUNT`].
    pub fn new(period: BillingPeriod, count: u32) -> Result<Self, CalendarError> {
        if count == 0 || count > Self::MAX_COUNT {
            return Err(CalendarError::CountOutOfRange { count });
        }
        Ok(Self { period, count })
    }

    pub fn period(self) -> BillingPeriod {
        self.period
    }

    pub fn count(self) -> u32 {
        self.count
    }

    /// The full period's length: the unit's months or days times the count.
    pub fn length(self) -> PeriodLength {
        // count <= 1000 keeps both products far below u32::MAX (12_000 months, 7_000 days).
        match self.period.unit_length() {
            PeriodLength::Months(months) => PeriodLength::Months(months * self.count),
            PeriodLength::Days(days) => PeriodLength::Days(days * self.count),
        }
    }

    /// Months in a full period, or `None` for weekly and daily cadences.
    pub fn months(self) -> Option<u32> {
        match self.length() {
            PeriodLength::Months(months) => Some(months),
            PeriodLength::Days(_) => None,
        }
    }
}

impl From<BillingPeriod> for Cadence {
    /// One period per cycle, the default `BillingPeriodCount`.
    fn from(period: BillingPeriod) -> Self {
        Self { period, count: 1 }
    }
}

/// A plan's `BillingDay`: the day of the month its month-based items bill on (1..=31).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BillingDay(u8);

impl BillingDay {
    /// Refuses anything outside 1..=31; short months clamp the day later, in the grid.
    pub fn new(day: u32) -> Result<Self, CalendarError> {
        match u8::try_from(day) {
            Ok(d @ 1..=31) => Ok(Self(d)),
            _ => Err(CalendarError::BillingDayOutOfRange { day }),
        }
    }

    pub fn get(self) -> u32 {
        u32::from(self.0)
    }

    pub(crate) fn day_of_month(self) -> i8 {
        // 1..=31 always fits.
        self.0 as i8
    }
}
