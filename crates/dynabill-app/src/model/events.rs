//! Events: what happened to a tenant's records, in the order it happened.

use jiff::Timestamp;
use jiff::civil::Date;

use super::{Account, Invoice, OneTimeItem, Plan, RecurringItem};

/// One change to one record, as the store wrote it in the change's transaction.
#[derive(Clone, Debug)]
pub struct Event {
    /// `evt_` and a UUIDv7: the same on every read and every delivery.
    pub id: String,
    /// The tenant's events are numbered 1, 2, 3... in the order they committed.
    pub sequence: i64,
    /// `account.created`, `account.updated`, ...
    pub kind: String,
    pub occurred_at: Timestamp,
    /// The record after the change.
    pub object: EventRecord,
    /// The record before the change (updates only).
    pub previous: Option<EventRecord>,
}

/// A record as an event shows it. Invoices come without their lines (as their
/// `GET` shows them by default).
#[derive(Clone, Debug)]
pub enum EventRecord {
    Account(Account),
    Plan(Plan),
    RecurringItem(RecurringItem),
    OneTimeItem(OneTimeItem),
    Invoice(Invoice),
    BillRun(BillRunRecord),
}

/// A finished bill run, as `bill_run.completed` tells it: what its batches did,
/// whichever processes billed them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillRunRecord {
    pub id: i64,
    pub run_date: Date,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub batches: i64,
    pub accounts: i64,
    pub invoices: i64,
    /// Batches finished by another process after the first one's claim lapsed.
    pub takeovers: i64,
}

impl EventRecord {
    /// The record's type as events name it (`account`, `recurring_item`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            EventRecord::Account(_) => "account",
            EventRecord::Plan(_) => "plan",
            EventRecord::RecurringItem(_) => "recurring_item",
            EventRecord::OneTimeItem(_) => "one_time_item",
            EventRecord::Invoice(_) => "invoice",
            EventRecord::BillRun(_) => "bill_run",
        }
    }

    pub fn id(&self) -> i64 {
        match self {
            EventRecord::Account(a) => a.id.0,
            EventRecord::Plan(p) => p.id.0,
            EventRecord::RecurringItem(i) => i.id.0,
            EventRecord::OneTimeItem(i) => i.id.0,
            EventRecord::Invoice(i) => i.id.0,
            EventRecord::BillRun(r) => r.id,
        }
    }

    /// The record's ExtID (invoices and bill runs have none).
    pub fn ext_id(&self) -> Option<&str> {
        match self {
            EventRecord::Account(a) => Some(&a.fields.ext_id),
            EventRecord::Plan(p) => Some(&p.fields.ext_id),
            EventRecord::RecurringItem(i) => Some(&i.fields.ext_id),
            EventRecord::OneTimeItem(i) => Some(&i.fields.ext_id),
            EventRecord::Invoice(_) | EventRecord::BillRun(_) => None,
        }
    }

    /// The record's version after the change (a bill run is written once: 1).
    pub fn version(&self) -> i64 {
        match self {
            EventRecord::Account(a) => a.version,
            EventRecord::Plan(p) => p.version,
            EventRecord::RecurringItem(i) => i.version,
            EventRecord::OneTimeItem(i) => i.version,
            EventRecord::Invoice(i) => i.version,
            EventRecord::BillRun(_) => 1,
        }
    }
}

/// Which events a list holds (every condition set must hold), paged by sequence.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    /// Only events of this type (`account.updated`), or of this family
    /// (`account.*`).
    pub kind: Option<String>,
    /// Only events of records of this type (`account`).
    pub object_type: Option<String>,
    /// Only events of records with this ID (with `object_type`: one record).
    pub object_id: Option<i64>,
    /// Only events that occurred at or after this instant.
    pub occurred_from: Option<Timestamp>,
    /// Only events that occurred before this instant.
    pub occurred_before: Option<Timestamp>,
    /// Only events numbered above this sequence.
    pub after_sequence: Option<i64>,
}
