//! One module per entity: parse the parameters, call the use case, shape the reply.

pub mod accounts;
pub mod invoices;
pub mod one_time;
pub mod plans;
pub mod recurring;
pub mod taxes;

use dynabill_app::model::{Page, RecordKey};
use dynabill_core::domain::PlanId;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::cursor::ListScope;
use crate::envelope::{self, Reply};
use crate::error::DoorError;
use crate::fields::{EXT_ID, ID, MAX_TEXT};
use crate::params::Params;

/// The record a call names: `ID` wins over `ExtID` (SPEC §1).
pub fn record_key<I: From<i64>>(params: &Params) -> Result<Option<RecordKey<I>>, DoorError> {
    key(params, ID, EXT_ID)
}

/// Like [`record_key`], for operations that must name a record.
pub fn required_key<I: From<i64>>(params: &Params, doing: &str) -> Result<RecordKey<I>, DoorError> {
    record_key(params)?.ok_or_else(|| DoorError::missing("ID or ExtID", doing))
}

/// The record named by the ID parameter `id`, else by the `ExtID` parameter `ext_id`.
pub fn key<I: From<i64>>(
    params: &Params,
    id: &str,
    ext_id: &str,
) -> Result<Option<RecordKey<I>>, DoorError> {
    if let Some(id) = params.id(id)? {
        return Ok(Some(RecordKey::Id(id)));
    }
    Ok(params.text(ext_id, MAX_TEXT)?.map(RecordKey::ExtId))
}

/// A read reply from a page of records of the list `scope` mapped to their wire shape.
pub fn page_reply<'a, T, W: Serialize>(
    page: &'a Page<T>,
    scope: &ListScope,
    to_wire: impl Fn(&'a T) -> W,
) -> Reply {
    let data: Vec<W> = page.items.iter().map(to_wire).collect();
    envelope::page(&data, page.total, scope.next_cursor(page).as_deref())
}

/// The plan an item call names: `PlanID` wins over `PlanExtID`.
pub fn plan_key(params: &Params) -> Result<Option<RecordKey<PlanId>>, DoorError> {
    key(params, "PlanID", "PlanExtID")
}

/// A quantity: a decimal greater than zero.
pub fn quantity(params: &Params) -> Result<Option<rust_decimal::Decimal>, DoorError> {
    let q = params.decimal("Quantity", MAX_SCALE)?;
    if q.is_some_and(|q| q <= rust_decimal::Decimal::ZERO) {
        return Err(DoorError::invalid("Quantity", "must be greater than 0"));
    }
    Ok(q)
}

/// Longest renewal term: a century.
pub const MAX_RENEWAL_TERM_MONTHS: i64 = 1200;

/// How a renewal (12/110, 12/71) names its new term: `EndDate`, or
/// `RenewalTermMonths` added to the current end, or neither (the plan's term).
pub fn renewal_term(params: &Params) -> Result<(Option<Date>, Option<u32>), DoorError> {
    let end = params.required_date("EndDate")?;
    let months = params
        .int_in("RenewalTermMonths", 1..=MAX_RENEWAL_TERM_MONTHS)?
        .map(|m| m as u32);
    if end.is_some() && months.is_some() {
        return Err(DoorError::invalid(
            "RenewalTermMonths",
            "cannot be combined with EndDate; give one or the other",
        ));
    }
    Ok((end, months))
}

/// Decimal places accepted in quantities and prices (SPEC §5).
pub const MAX_SCALE: u32 = 6;

/// An instant given as one (RFC 3339) or as a day (`YYYY-MM-DD`: its start in
/// the tenant's time zone `zone`).
pub(crate) fn instant(
    p: &Params,
    name: &str,
    zone: &TimeZone,
) -> Result<Option<Timestamp>, DoorError> {
    let Some(Some(text)) = p.optional_text(name, 64)? else {
        return Ok(None);
    };
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(Some(ts));
    }
    text.parse::<Date>()
        .ok()
        .and_then(|d| d.to_zoned(zone.clone()).ok())
        .map(|z| Some(z.timestamp()))
        .ok_or_else(|| {
            DoorError::invalid(name, "must be an RFC 3339 timestamp or a YYYY-MM-DD date")
        })
}
