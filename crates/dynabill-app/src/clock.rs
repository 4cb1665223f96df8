//! Where "now" comes from: the system clock in production, a settable one in tests.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;

    /// Today's calendar date in a tenant's time zone.
    fn today(&self, time_zone: &TimeZone) -> Date {
        self.now().to_zoned(time_zone.clone()).date()
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
