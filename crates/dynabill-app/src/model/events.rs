//! Events: what happened to a tenant's records, in the order it happened.

use jiff::Timestamp;

use super::Account;

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

/// A record as an event shows it.
#[derive(Clone, Debug)]
pub enum EventRecord {
    Account(Account),
}

impl EventRecord {
    /// The record's type as events name it (`account`).
    pub fn type_name(&self) -> &'static str {
        match self {
            EventRecord::Account(_) => "account",
        }
    }

    pub fn id(&self) -> i64 {
        match self {
            EventRecord::Account(a) => a.id.0,
        }
    }

    pub fn ext_id(&self) -> Option<&str> {
        match self {
            EventRecord::Account(a) => Some(&a.fields.ext_id),
        }
    }

    pub fn version(&self) -> i64 {
        match self {
            EventRecord::Account(a) => a.version,
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
