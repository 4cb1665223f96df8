//! `/v1/events`: what happened to the tenant's records, in order (the event log
//! the store writes in each change's transaction; ARCHITECTURE.md, "Events").

#![expect(
    unused_qualifications,
    reason = "utoipa's path macro qualifies the parameter types it is given"
)]

use axum::extract::Path;
use axum::response::Response;
use dynabill_app::model::{self, EventFilter, EventRecord};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use jiff::civil::Date;

use super::accounts::Account;
use super::call::{List, Paging};
use super::invoices::Invoice;
use super::items::{OneTimeItem, RecurringItem};
use super::plans::Plan;
use super::shapes::{InstantOrDay, day, stamp};
use super::{Call, Reply};
use crate::cursor::ListScope;
use crate::error::DoorError;
use crate::ops::instant;
use crate::params::Params;

/// The list code events' cursors are scoped by (they have no DealHub entity code).
const EVENTS_LIST: i64 = -1;

/// Something that happened to one record, kept in the order it committed.
#[derive(Serialize, ToSchema)]
pub struct Event {
    /// `evt_` and a UUIDv7, the same on every read (and every delivery).
    #[schema(example = "evt_0193a8f2-6c1e-7a3b-9d41-2f6e8a1c5b7d")]
    id: String,
    /// What happened (docs/EVENTS.md lists every type): `account.updated`,
    /// `recurring_item.upsold`, `invoice.posted`, `bill_run.completed`...
    #[schema(example = "account.updated")]
    r#type: String,
    /// The tenant's events are numbered 1, 2, 3... without gaps, in commit order.
    #[schema(example = 42)]
    sequence: i64,
    /// When the change was made (RFC 3339, UTC).
    #[schema(example = "2026-01-05T09:30:00.000000Z")]
    occurred_at: String,
    /// The type of the record that changed: `account`, `plan`, `recurring_item`,
    /// `one_time_item`, `invoice`, `bill_run`.
    #[schema(example = "account")]
    object_type: &'static str,
    /// The record's ID.
    #[schema(example = 1042)]
    object_id: i64,
    /// The record's ExtID (invoices and bill runs have none).
    #[schema(example = "CRM-1042")]
    object_ext_id: Option<String>,
    /// The record's version after the change.
    #[schema(example = 3)]
    object_version: i64,
    /// The record after the change, and what it was before.
    data: EventData,
}

/// The record an event is about.
#[derive(Serialize, ToSchema)]
pub struct EventData {
    /// The record right after the change, as its own `GET` shows it (an invoice
    /// without its lines). Fields that depend on the day (a plan's or an item's
    /// status, an item's terms in force) are as of the tenant's today when read.
    #[schema(value_type = EventObject)]
    object: Value,
    /// For updates and deletions: the fields that changed, with their values
    /// before the change.
    #[schema(value_type = Option<ChangedFields>)]
    previous: Option<Value>,
}

/// The record of an event, by `object_type`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[schema(example = json!({"id": 310, "ext_id": "SUB-310", "account_id": 1042,
    "account_ext_id": "CRM-1042", "plan_status": 1, "end_date": "2027-01-15"}))]
#[expect(dead_code, reason = "a schema: `object` is built as JSON")]
pub enum EventObject {
    Account(Account),
    Plan(Plan),
    RecurringItem(RecurringItem),
    OneTimeItem(OneTimeItem),
    Invoice(Invoice),
    BillRun(CompletedBillRun),
}

/// A finished bill run (`bill_run.completed`): what its batches did, whichever
/// processes billed them.
#[derive(Serialize, ToSchema)]
pub struct CompletedBillRun {
    /// The run's ID.
    #[schema(example = 12)]
    id: i64,
    /// The run's date.
    #[schema(example = "2026-02-01")]
    run_date: String,
    /// When its first participant started it (RFC 3339, UTC).
    #[schema(example = "2026-02-01T02:00:00.000000Z")]
    started_at: String,
    /// When its last batch was done (RFC 3339, UTC).
    #[schema(example = "2026-02-01T02:00:41.000000Z")]
    finished_at: String,
    /// Batches of accounts it was billed in.
    #[schema(example = 10)]
    batches: i64,
    /// Accounts it read.
    #[schema(example = 5000)]
    accounts: i64,
    /// Invoices it created.
    #[schema(example = 4870)]
    invoices: i64,
    /// Batches finished by another process after the first one's claim lapsed.
    #[schema(example = 0)]
    takeovers: i64,
}

impl From<&model::BillRunRecord> for CompletedBillRun {
    fn from(r: &model::BillRunRecord) -> Self {
        CompletedBillRun {
            id: r.id,
            run_date: day(r.run_date),
            started_at: stamp(r.started_at),
            finished_at: stamp(r.finished_at),
            batches: r.batches,
            accounts: r.accounts,
            invoices: r.invoices,
            takeovers: r.takeovers,
        }
    }
}

/// The fields of a record that a change changed, with their values before it, in
/// the record's own shape (names and formats as its `GET` shows them).
#[derive(ToSchema)]
#[schema(example = json!({"account_name": "Acme", "updated_at": "2026-01-05T09:30:00.000000Z"}))]
#[expect(dead_code, reason = "a schema: `previous` is built as JSON")]
pub struct ChangedFields(Map<String, Value>);

/// A record in the shape of its own resource, as of `today`.
fn shaped(record: &EventRecord, today: Date, request_id: &str) -> Result<Value, DoorError> {
    let value = match record {
        EventRecord::Account(a) => serde_json::to_value(Account::from(a)),
        EventRecord::Plan(p) => serde_json::to_value(Plan::new(p, today)),
        EventRecord::RecurringItem(i) => {
            serde_json::to_value(RecurringItem::new(i, today, false, request_id)?)
        }
        EventRecord::OneTimeItem(i) => serde_json::to_value(OneTimeItem::from(i)),
        EventRecord::Invoice(i) => serde_json::to_value(Invoice::new(i, false)),
        EventRecord::BillRun(r) => serde_json::to_value(CompletedBillRun::from(r)),
    };
    Ok(value.unwrap_or(Value::Null))
}

/// The fields of `before` that differ in `after`, with their values in `before`.
fn changed(before: Value, after: &Value) -> Value {
    let (Value::Object(before), Value::Object(after)) = (before, after) else {
        return Value::Null;
    };
    let fields: Map<String, Value> = before
        .into_iter()
        .filter(|(name, value)| after.get(name) != Some(value))
        .collect();
    Value::Object(fields)
}

impl Event {
    /// The event in its REST shape, its records as of `today`.
    pub fn new(e: &model::Event, today: Date, request_id: &str) -> Result<Event, DoorError> {
        let object = shaped(&e.object, today, request_id)?;
        let previous = match &e.previous {
            Some(p) => Some(changed(shaped(p, today, request_id)?, &object)),
            None => None,
        };
        Ok(Event {
            id: e.id.clone(),
            r#type: e.kind.clone(),
            sequence: e.sequence,
            occurred_at: stamp(e.occurred_at),
            object_type: e.object.type_name(),
            object_id: e.object.id(),
            object_ext_id: e.object.ext_id().map(str::to_owned),
            object_version: e.object.version(),
            data: EventData { object, previous },
        })
    }
}

/// Filters of the list of events.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "a schema: it checks the query; `filter` reads the values"
)]
pub struct EventFilters {
    /// Only events of this type (`account.updated`), or of a family (`account.*`).
    #[param(
        example = "account.*",
        pattern = r"^[a-z_]+\.([a-z_]+|\*)$",
        max_length = 64
    )]
    r#type: Option<String>,
    /// Only events of records of this type.
    #[param(example = "account", pattern = r"^[a-z_]+$", max_length = 64)]
    object_type: Option<String>,
    /// Only events of records with this ID (IDs are per record type: with
    /// `object_type`, the one record's).
    #[param(minimum = 1)]
    object_id: Option<i64>,
    /// Only events at or after this instant (RFC 3339) or day (`YYYY-MM-DD`, from
    /// midnight in the tenant's time zone).
    #[param(inline, example = "2026-01-01")]
    occurred_from: Option<InstantOrDay>,
    /// Only events before this instant or day.
    #[param(inline, example = "2026-02-01")]
    occurred_before: Option<InstantOrDay>,
    /// Only events numbered above this: a receiver's last processed `sequence`.
    #[param(minimum = 0)]
    after_sequence: Option<i64>,
}

/// A word of an event's type: lower-case letters and `_`.
fn word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// An event type (`account.updated`) or family (`account.*`).
fn event_type(p: &Params) -> Result<Option<String>, DoorError> {
    let kind = p.text("Type", 64)?;
    if let Some(kind) = &kind {
        let valid = kind
            .split_once('.')
            .is_some_and(|(object, what)| word(object) && (what == "*" || word(what)));
        if !valid {
            return Err(DoorError::invalid(
                "Type",
                "must be an event type (account.updated) or a family of them (account.*)",
            ));
        }
    }
    Ok(kind)
}

/// The filter of a list of events, and the list it names (for its cursors).
fn filter(p: &Params, tenant: &model::Tenant) -> Result<(EventFilter, ListScope), DoorError> {
    let filter = EventFilter {
        kind: event_type(p)?,
        object_type: p.text("ObjectType", 64)?,
        object_id: p.int("ObjectId")?,
        occurred_from: instant(p, "OccurredFrom", &tenant.time_zone)?,
        occurred_before: instant(p, "OccurredBefore", &tenant.time_zone)?,
        after_sequence: p.int("AfterSequence")?,
    };
    if filter.object_type.as_deref().is_some_and(|t| !word(t)) {
        return Err(DoorError::invalid(
            "ObjectType",
            "must be a record type: lower-case letters and _ (account)",
        ));
    }
    let scope = ListScope::new(tenant, EVENTS_LIST)
        .with("Type", filter.kind.as_deref())
        .with("ObjectType", filter.object_type.as_deref())
        .with("ObjectId", filter.object_id)
        .with(
            "OccurredFrom",
            filter.occurred_from.map(|t| t.as_microsecond()),
        )
        .with(
            "OccurredBefore",
            filter.occurred_before.map(|t| t.as_microsecond()),
        )
        .with("AfterSequence", filter.after_sequence);
    Ok((filter, scope))
}

/// List events
#[utoipa::path(get, path = "/v1/events", tag = "Events",
    params(EventFilters, Paging),
    responses((status = 200, description = "A page of events, oldest first", body = List<Event>)))]
pub async fn list(call: Call) -> Response {
    call.read(async |call| {
        let p = call.query::<EventFilters>(true)?;
        let (filter, scope) = filter(&p, &call.tenant)?;
        let page = scope.page(&p)?;
        let found = call
            .app
            .list_events(&call.tenant, &filter, page)
            .await
            .map_err(|e| call.fail(e))?;
        let today = call.app.today(&call.tenant);
        let list = List::try_new(&found, &scope, &p, |e| {
            Event::new(e, today, &call.request_id)
        })?;
        Ok(Reply::ok(&list))
    })
    .await
}

/// Get an event
#[utoipa::path(get, path = "/v1/events/{id}", tag = "Events",
    params(("id" = String, Path, description = "The event's ID (`evt_...`)")),
    responses((status = 200, description = "The event", body = Event)))]
pub async fn get(call: Call, Path(id): Path<String>) -> Response {
    call.read(async |call| {
        let event = call
            .app
            .get_event(&call.tenant, &id)
            .await
            .map_err(|e| call.fail(e))?;
        let today = call.app.today(&call.tenant);
        Ok(Reply::ok(&Event::new(&event, today, &call.request_id)?))
    })
    .await
}
