//! dynabill-core: the billing rules, pure. No I/O, no async, no clock, no serde, no SQL.
//!
//! Today's date is always an argument. Every amount is an exact `Decimal`, every
//! rounding names its mode and scale.

pub mod billing;
pub mod calendar;
pub mod domain;
pub mod insights;
pub mod items;
pub mod money;
pub mod tax;

pub use rust_decimal::Decimal;
