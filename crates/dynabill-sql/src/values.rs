//! The stored forms of values both backends share: timestamps as integer
//! microseconds, dates as `YYYY-MM-DD` text, amounts as decimal text, codes as
//! integers; [`Value`], one value ready to bind; and the parsers that read stored
//! values back (a value that does not parse is corruption: `StoreError::Other`).

use std::str::FromStr;

use anyhow::anyhow;
use dynabill_app::store::StoreError;
use dynabill_core::domain::{
    AccountId, InvoiceId, OneTimeItemId, PlanId, RecurringItemId, TaxRateId, TenantId,
};
use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;

pub fn micros(ts: Timestamp) -> i64 {
    ts.as_microsecond()
}

pub fn from_micros(us: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_microsecond(us)
        .map_err(|e| StoreError::Other(anyhow!("bad timestamp {us}: {e}")))
}

pub fn date_text(date: Date) -> String {
    date.to_string()
}

pub(crate) fn parse_date(text: &str) -> Result<Date, StoreError> {
    Date::from_str(text).map_err(|e| StoreError::Other(anyhow!("bad stored date {text:?}: {e}")))
}

pub(crate) fn parse_opt_date(text: Option<&str>) -> Result<Option<Date>, StoreError> {
    text.map(parse_date).transpose()
}

pub(crate) fn parse_decimal(text: &str) -> Result<Decimal, StoreError> {
    Decimal::from_str(text)
        .map_err(|e| StoreError::Other(anyhow!("bad stored amount {text:?}: {e}")))
}

/// Parses a stored value that the application wrote itself; failure means corruption.
pub(crate) fn stored<T: FromStr>(what: &str, text: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text.parse::<T>()
        .map_err(|e| StoreError::Other(anyhow!("bad stored {what} {text:?}: {e}")))
}

pub(crate) fn coded<T>(what: &str, code: i64, from: fn(i64) -> Option<T>) -> Result<T, StoreError> {
    from(code).ok_or_else(|| StoreError::Other(anyhow!("bad stored {what} code {code}")))
}

pub(crate) fn small<T: TryFrom<i64>>(what: &str, value: i64) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Other(anyhow!("stored {what} {value} out of range")))
}

/// One value to bind. Dates and amounts travel as text (see [`crate::Shape`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
    OptBool(Option<bool>),
    Bytes(Vec<u8>),
}

/// An amount as stored: decimal text.
pub(crate) fn amount(d: Decimal) -> Value {
    Value::Text(d.to_string())
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Value {
        Value::OptText(v)
    }
}

impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Value {
        Value::OptText(v.map(str::to_owned))
    }
}

impl From<&Option<String>> for Value {
    fn from(v: &Option<String>) -> Value {
        Value::OptText(v.clone())
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Value {
        Value::OptInt(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        Value::Bytes(v.to_vec())
    }
}

impl From<Timestamp> for Value {
    fn from(v: Timestamp) -> Value {
        Value::Int(micros(v))
    }
}

macro_rules! id_values {
    ($($id:ident),*) => {$(
        impl From<$id> for Value {
            fn from(v: $id) -> Value {
                Value::Int(v.0)
            }
        }
    )*};
}

id_values!(
    TenantId,
    AccountId,
    PlanId,
    RecurringItemId,
    OneTimeItemId,
    InvoiceId,
    TaxRateId
);
