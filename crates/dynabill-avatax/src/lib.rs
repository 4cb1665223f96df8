//! An Avalara AvaTax REST v2 client implementing the `dynabill_app` tax-engine port.
//!
//! [`AvaTaxClient`] creates, commits and voids sales invoices with AvaTax and
//! turns its answers into per-line, per-jurisdiction taxes. Failures split as the
//! port wants: `Unavailable` (unreachable, timed out, 5xx, 408, 429, unreadable
//! answer: retry later) or `Refused` (any other 4xx, bad settings: fix first).
//! The license key only ever leaves in the `Authorization` header.

mod client;
mod error;
mod wire;

pub use client::{AvaTaxClient, ClientBuildError, tls_config};
