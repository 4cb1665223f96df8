//! Wire shapes of records: the field names and value forms of SPEC §4, one module
//! per entity, and here the value forms they share.

mod accounts;
mod invoices;
mod items;
mod plans;

pub use accounts::AccountOut;
pub use invoices::{InvoiceOut, PendingTaxLineOut};
pub use items::{OneTimeItemOut, RecurringItemOut, change_name};
pub use plans::PlanOut;

use dynabill_core::money::{Currency, Rounding};
use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

/// An amount as a JSON number with exactly the currency's minor-unit digits.
pub struct Amount(pub(crate) Decimal);

impl Amount {
    pub fn in_currency(value: Decimal, currency: Currency) -> Amount {
        let mut v = Rounding::HalfUp.to_minor_unit(value, currency);
        v.rescale(currency.minor_unit());
        Amount(v)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let number: serde_json::Number = self
            .0
            .to_string()
            .parse()
            .map_err(serde::ser::Error::custom)?;
        number.serialize(s)
    }
}

pub(crate) fn stamp(ts: Timestamp) -> String {
    // RFC 3339 in UTC with a fixed precision, so that strings sort like instants.
    format!("{ts:.6}")
}

pub(crate) fn day(date: Date) -> String {
    date.to_string()
}

/// A quantity, price or percentage as a JSON number, without trailing zeros.
pub struct Num(pub(crate) Decimal);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let number: serde_json::Number = self
            .0
            .normalize()
            .to_string()
            .parse()
            .map_err(serde::ser::Error::custom)?;
        number.serialize(s)
    }
}

/// A decimal as a JSON number exactly as stored (tax amounts keep the scale they
/// were computed or sent with: `1.50` from a rate table, `0.00625` from a service).
pub struct Exact(pub(crate) Decimal);

impl Serialize for Exact {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let number: serde_json::Number = self
            .0
            .to_string()
            .parse()
            .map_err(serde::ser::Error::custom)?;
        number.serialize(s)
    }
}
