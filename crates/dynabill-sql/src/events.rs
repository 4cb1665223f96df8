//! Events: read back what the triggers of the migrations `*_events.sql` wrote in
//! the transactions of the changes (ARCHITECTURE.md, "Events").

use async_trait::async_trait;
use dynabill_app::model::{
    Account, BillRunRecord, Event, EventFilter, EventRecord, OneTimeItem, Page, PageRequest, Plan,
};
use dynabill_app::store::{EventStore, StoreError, StoreResult};
use dynabill_core::domain::TenantId;
use serde::de::DeserializeOwned;

use crate::accounts::AccountRow;
use crate::backend::{Backend, failed};
use crate::invoices::InvoiceRow;
use crate::items::{ItemChangeRow, RecurringItemRow};
use crate::one_time::OneTimeItemRow;
use crate::paging::{Listing, PageOrder, finish};
use crate::plans::PlanRow;
use crate::query::Query;
use crate::store::SqlStore;
use crate::values::{from_micros, parse_date};

/// A row of `events`; `object` and `previous` are the JSON the triggers wrote.
#[derive(Debug, sqlx::FromRow)]
pub struct EventRow {
    pub sequence: i64,
    pub id: String,
    pub r#type: String,
    pub occurred_at: i64,
    pub object_type: String,
    pub object: String,
    pub previous: Option<String>,
}

/// The select list of an [`EventRow`] (JSON as text on both backends).
const EVENT_COLUMNS: &str = "sequence, id, type, occurred_at, object_type, \
    CAST(object AS TEXT) AS object, CAST(previous AS TEXT) AS previous";

/// A record read from the JSON of its row.
fn record<R, T>(json: &str) -> StoreResult<T>
where
    R: DeserializeOwned,
    T: TryFrom<R, Error = StoreError>,
{
    T::try_from(decoded::<R>(json)?)
}

/// A finished bill run as `bill_run.completed` records it: ID, run date, start,
/// finish, batches, accounts, invoices, takeovers.
#[derive(serde::Deserialize)]
struct BillRunRow(i64, String, i64, i64, i64, i64, i64, i64);

impl TryFrom<BillRunRow> for BillRunRecord {
    type Error = StoreError;

    fn try_from(r: BillRunRow) -> Result<Self, StoreError> {
        Ok(BillRunRecord {
            id: r.0,
            run_date: parse_date(&r.1)?,
            started_at: from_micros(r.2)?,
            finished_at: from_micros(r.3)?,
            batches: r.4,
            accounts: r.5,
            invoices: r.6,
            takeovers: r.7,
        })
    }
}

/// A JSON record decoded into its row type.
fn decoded<R: DeserializeOwned>(json: &str) -> StoreResult<R> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Other(anyhow::anyhow!("bad event record {json:?}: {e}")))
}

fn event_record(object_type: &str, json: &str) -> StoreResult<EventRecord> {
    match object_type {
        "account" => Ok(EventRecord::Account(record::<AccountRow, Account>(json)?)),
        "plan" => Ok(EventRecord::Plan(record::<PlanRow, Plan>(json)?)),
        "recurring_item" => {
            let (item, history): (RecurringItemRow, Vec<ItemChangeRow>) = decoded(json)?;
            let history = history
                .into_iter()
                .map(TryInto::try_into)
                .collect::<StoreResult<_>>()?;
            Ok(EventRecord::RecurringItem(item.into_item(history)?))
        }
        "one_time_item" => Ok(EventRecord::OneTimeItem(record::<
            OneTimeItemRow,
            OneTimeItem,
        >(json)?)),
        "invoice" => Ok(EventRecord::Invoice(
            decoded::<InvoiceRow>(json)?.into_invoice(Vec::new())?,
        )),
        "bill_run" => Ok(EventRecord::BillRun(record::<BillRunRow, BillRunRecord>(
            json,
        )?)),
        other => Err(StoreError::Other(anyhow::anyhow!(
            "event of an unknown record type {other:?}"
        ))),
    }
}

impl TryFrom<EventRow> for Event {
    type Error = StoreError;

    fn try_from(r: EventRow) -> Result<Self, StoreError> {
        Ok(Event {
            object: event_record(&r.object_type, &r.object)?,
            previous: r
                .previous
                .as_deref()
                .map(|json| event_record(&r.object_type, json))
                .transpose()?,
            id: r.id,
            sequence: r.sequence,
            kind: r.r#type,
            occurred_at: from_micros(r.occurred_at)?,
        })
    }
}

/// `account.*`: the family's prefix (`account.`), when `kind` names a family.
fn family(kind: &str) -> Option<&str> {
    kind.strip_suffix('*').filter(|p| p.ends_with('.'))
}

fn push_filter<B: Backend>(q: &mut Query<B>, tenant: TenantId, filter: &EventFilter) {
    q.push(" WHERE tenant_id = ").bind(tenant);
    if let Some(kind) = &filter.kind {
        match family(kind) {
            // Every type of the family sorts between `account.` and `account/`.
            Some(prefix) => {
                let end = format!("{}/", &prefix[..prefix.len() - 1]);
                q.push(" AND type >= ")
                    .bind(prefix)
                    .push(" AND type < ")
                    .bind(end);
            }
            None => {
                q.push(" AND type = ").bind(kind);
            }
        }
    }
    if let Some(object_type) = &filter.object_type {
        q.push(" AND object_type = ").bind(object_type);
    }
    if let Some(object_id) = filter.object_id {
        q.push(" AND object_id = ").bind(object_id);
    }
    if let Some(from) = filter.occurred_from {
        q.push(" AND occurred_at >= ").bind(from);
    }
    if let Some(before) = filter.occurred_before {
        q.push(" AND occurred_at < ").bind(before);
    }
    if let Some(after) = filter.after_sequence {
        q.push(" AND sequence > ").bind(after);
    }
}

/// The list of the events `filter` selects, keyed on `sequence`. An exact type, or
/// a record, is served in sequence order by its index; a family of types or a time
/// range is read through its index and sorted.
fn event_listing<'a, B: Backend>(tenant: TenantId, filter: &'a EventFilter) -> Listing<'a, B> {
    let by_filter = filter.kind.as_deref().is_some_and(|k| family(k).is_some())
        || filter.occurred_from.is_some()
        || filter.occurred_before.is_some();
    Listing {
        columns: EVENT_COLUMNS,
        from: "FROM events",
        count_from: None,
        key: "sequence",
        filter: Box::new(move |q: &mut Query<B>| push_filter(q, tenant, filter)),
        order: PageOrder::of(by_filter, true),
        tally: None,
    }
}

#[async_trait]
impl<B: Backend> EventStore for SqlStore<B> {
    async fn list_events(
        &self,
        tenant: TenantId,
        filter: &EventFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Event>> {
        self.number_events(Some(tenant)).await?;
        let listing = event_listing::<B>(tenant, filter);
        let (total, rows, tx) = listing.read::<EventRow>(self, page).await?;
        let events = rows
            .into_iter()
            .map(Event::try_from)
            .collect::<StoreResult<Vec<Event>>>()?;
        finish::<B, _>(tx, events, page, total, |e| e.sequence).await
    }

    async fn find_event(&self, tenant: TenantId, id: &str) -> StoreResult<Option<Event>> {
        self.number_events(Some(tenant)).await?;
        let mut q = Query::<B>::new(format!("SELECT {EVENT_COLUMNS} FROM events"));
        q.push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id)
            // Numbered (PostgreSQL numbers committed events when the log is read).
            .push(" AND sequence IS NOT NULL");
        let row: Option<EventRow> = q
            .fetch_optional(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        row.map(Event::try_from).transpose()
    }

    async fn recent_events(
        &self,
        tenant: TenantId,
        records: &[(&str, i64)],
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.number_events(Some(tenant)).await?;
        let rows: Vec<EventRow> = recent_events_query::<B>("", tenant, records, limit)
            .fetch_all(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        rows.into_iter().map(Event::try_from).collect()
    }
}

/// The newest `limit` events of `records`, after `prefix` (`EXPLAIN`): one
/// branch per object type, each reading its records' ranges of the record index
/// (`events_object`), and the few rows sorted. (One `OR` of the types lets the
/// planner walk the tenant's whole log newest first instead, checking each event:
/// 600 ms an account page at 100,000 accounts on SQLite.)
pub(crate) fn recent_events_query<B: Backend>(
    prefix: &str,
    tenant: TenantId,
    records: &[(&str, i64)],
    limit: u32,
) -> Query<B> {
    let mut by_type: std::collections::BTreeMap<&str, Vec<i64>> = std::collections::BTreeMap::new();
    for &(object_type, id) in records {
        by_type.entry(object_type).or_default().push(id);
    }
    let mut q = Query::<B>::new(format!("{prefix}SELECT {EVENT_COLUMNS} FROM ("));
    for (n, (object_type, ids)) in by_type.iter().enumerate() {
        if n > 0 {
            q.push(" UNION ALL ");
        }
        q.push(format_args!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = "
        ))
        .bind(tenant)
        .push(" AND object_type = ")
        .bind(*object_type);
        q.and_in("object_id", ids);
        q.push(" AND sequence IS NOT NULL");
    }
    // `+`: no index gives the order, so no branch is tempted to walk one for it.
    q.push(") AS recent ORDER BY +sequence DESC LIMIT ")
        .bind(i64::from(limit));
    q
}
