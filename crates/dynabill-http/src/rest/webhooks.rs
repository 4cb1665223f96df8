//! `/v1/webhook-endpoints` and `/v1/webhook-deliveries`: where a tenant's events
//! are POSTed, signed, and how each sending went (ARCHITECTURE.md, "Webhooks").

#![expect(
    unused_qualifications,
    reason = "utoipa's path macro qualifies the parameter types it is given"
)]

use axum::body::Body;
use axum::extract::Path;
use axum::response::Response;
use dynabill_app::model::{
    self, DeliveryFilter, DeliveryStatus, EventFilter, NewDelivery, PageRequest,
    WebhookEndpointFields, WebhookEndpointPatch,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::call::{Empty, List, Paging, path_id};
use super::events::Event;
use super::shapes::{InstantOrDay, stamp};
use super::{Call, Reply};
use crate::cursor::ListScope;
use crate::error::{DoorError, internal};
use crate::fields::MAX_TEXT;
use crate::ops::instant;
use crate::params::Params;

/// The list code deliveries' cursors are scoped by (no DealHub entity code).
const DELIVERIES_LIST: i64 = -2;
/// Events a recovery resends at most; a receiver further behind reads
/// `GET /v1/events` with `after_sequence`.
const MAX_RECOVERED: usize = 10_000;

/// An endpoint: where the tenant's events are POSTed.
#[derive(Serialize, ToSchema)]
pub struct WebhookEndpoint {
    /// Assigned by dynabill.
    #[schema(example = 3)]
    id: i64,
    /// Where events are POSTed.
    #[schema(example = "https://crm.example.com/hooks/dynabill")]
    url: String,
    /// A note for people.
    #[schema(example = "CRM sync")]
    description: Option<String>,
    /// The event types (or families, `invoice.*`) sent; `null`: every event.
    #[schema(example = json!(["invoice.*", "plan.renewed"]))]
    event_types: Option<Vec<String>>,
    /// Whether events are sent.
    #[schema(example = true)]
    enabled: bool,
    /// Why dynabill disabled it (it answered `410 Gone`, or failed for five days).
    #[schema(example = "the endpoint answered 410 Gone")]
    disabled_reason: Option<String>,
    /// The first failed attempt since its last delivered one (RFC 3339, UTC).
    #[schema(example = "2026-01-05T09:30:00.000000Z")]
    failing_since: Option<String>,
    /// Until when the secret before the last rotation also signs (RFC 3339, UTC).
    #[schema(example = "2026-01-06T09:30:00.000000Z")]
    previous_secret_valid_until: Option<String>,
    /// Events numbered up to this are queued for it.
    #[schema(example = 1200)]
    queued_through_sequence: i64,
    /// When it was created (RFC 3339, UTC).
    #[schema(example = "2026-01-05T09:30:00.000000Z")]
    created_at: String,
    /// When it last changed (RFC 3339, UTC).
    #[schema(example = "2026-01-05T09:30:00.000000Z")]
    updated_at: String,
    /// The signing secret (`whsec_` and 32 bytes in base64): only in the answers
    /// of its creation and of `rotate-secret`. Keep it; it is never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    secret: Option<String>,
}

impl WebhookEndpoint {
    fn new(e: &model::WebhookEndpoint, secret: Option<String>) -> WebhookEndpoint {
        WebhookEndpoint {
            id: e.id,
            url: e.url.clone(),
            description: e.description.clone(),
            event_types: e.event_types.clone(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            failing_since: e.failing_since.map(stamp),
            previous_secret_valid_until: e.previous_secret_until.map(stamp),
            queued_through_sequence: e.fanned_out_to,
            created_at: stamp(e.created_at),
            updated_at: stamp(e.updated_at),
            secret,
        }
    }
}

/// The tenant's endpoints (all of them: a tenant has at most 20).
#[derive(Serialize, ToSchema)]
pub struct WebhookEndpoints {
    /// Oldest first.
    data: Vec<WebhookEndpoint>,
}

/// A new endpoint.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the parser below reads the values"
)]
pub struct NewWebhookEndpoint {
    /// Where to POST events: `https://` (or `http://`); not a loopback or private
    /// address unless the server runs with `--allow-private-webhooks`.
    #[schema(
        example = "https://crm.example.com/hooks/dynabill",
        min_length = 8,
        max_length = 2048,
        pattern = r"^https?://[^\u0000]*$"
    )]
    url: String,
    /// A note for people.
    #[serde(default)]
    #[schema(example = "CRM sync", max_length = 255, pattern = r"^[^\u0000]*$")]
    description: Option<String>,
    /// The event types (or families, `invoice.*`) to send; absent or `null`: all.
    #[serde(default)]
    #[schema(example = json!(["invoice.*"]), min_items = 1, max_items = 50)]
    event_types: Option<Vec<EventType>>,
    /// Whether to send events (default true).
    #[serde(default)]
    #[schema(example = true)]
    enabled: bool,
}

/// An event type (`invoice.posted`) or family (`invoice.*`).
#[derive(Deserialize, ToSchema)]
#[schema(
    example = "invoice.*",
    pattern = r"^[a-z_]+\.([a-z_]+|\*)$",
    max_length = 64
)]
pub struct EventType(#[expect(dead_code, reason = "a schema")] String);

/// Changes to an endpoint: only the fields sent change; `null` clears
/// `description` and makes `event_types` every event. Enabling a disabled
/// endpoint clears why it was disabled.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the parser below reads the values"
)]
pub struct WebhookEndpointChanges {
    /// Where to POST events.
    #[serde(default)]
    #[schema(
        example = "https://crm.example.com/hooks/dynabill",
        min_length = 8,
        max_length = 2048,
        pattern = r"^https?://[^\u0000]*$"
    )]
    url: String,
    /// A note for people.
    #[serde(default)]
    #[schema(example = "CRM sync", max_length = 255, pattern = r"^[^\u0000]*$")]
    description: Option<String>,
    /// The event types (or families) to send; `null`: all.
    #[serde(default)]
    #[schema(example = json!(["invoice.*"]), min_items = 1, max_items = 50)]
    event_types: Option<Vec<EventType>>,
    /// Whether to send events.
    #[serde(default)]
    #[schema(example = false)]
    enabled: bool,
}

/// What to send again.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the parser below reads the values"
)]
pub struct Recovery {
    #[schema(schema_with = since)]
    since: InstantOrDay,
}

/// `Recovery::since`: described on the schema itself (a doc comment on an
/// inlined field wraps it in an `allOf` with an object).
fn since() -> utoipa::openapi::Schema {
    InstantOrDay::described(
        "Every event the endpoint takes from this instant (RFC 3339) or day (from \
         midnight in the tenant's time zone), up to 10,000.",
        "2026-01-05",
    )
}

/// What a recovery queued.
#[derive(Serialize, ToSchema)]
pub struct Recovered {
    /// Deliveries queued (one per event the endpoint takes).
    #[schema(example = 42)]
    queued: usize,
}

/// The sending of one event to one endpoint.
#[derive(Serialize, ToSchema)]
pub struct WebhookDelivery {
    /// Assigned by dynabill.
    #[schema(example = 901)]
    id: i64,
    /// The endpoint.
    #[schema(example = 3)]
    endpoint_id: i64,
    /// The event (`webhook-id` of every attempt).
    #[schema(example = "evt_0193a8f2-6c1e-7a3b-9d41-2f6e8a1c5b7d")]
    event_id: String,
    /// The event's type.
    #[schema(example = "invoice.posted")]
    event_type: String,
    /// The event's sequence (`null` for `webhook.test`).
    #[schema(example = 1201)]
    sequence: Option<i64>,
    /// 1 pending, 2 delivered, 3 failed (retries exhausted, or the endpoint
    /// disabled or removed).
    #[schema(example = 2)]
    status: i64,
    /// Attempts made.
    #[schema(example = 1)]
    attempts: i64,
    /// When the next attempt is due (pending only; RFC 3339, UTC).
    #[schema(example = "2026-01-05T09:35:00.000000Z")]
    next_attempt_at: Option<String>,
    /// When it was queued (RFC 3339, UTC).
    #[schema(example = "2026-01-05T09:30:00.000000Z")]
    created_at: String,
    /// When a 2xx answered it (RFC 3339, UTC).
    #[schema(example = "2026-01-05T09:30:00.120000Z")]
    delivered_at: Option<String>,
    /// Its attempts, oldest first (with one delivery, not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt_log: Option<Vec<WebhookAttempt>>,
}

/// One POST of a delivery.
#[derive(Serialize, ToSchema)]
pub struct WebhookAttempt {
    /// When it was sent (RFC 3339, UTC).
    #[schema(example = "2026-01-05T09:30:00.000000Z")]
    attempted_at: String,
    /// The answer's status (`null`: no answer: refused, timed out).
    #[schema(example = 500)]
    status_code: Option<u16>,
    /// How long it took, in milliseconds.
    #[schema(example = 87)]
    duration_ms: i64,
    /// Why it failed, when no answer came or the answer was not 2xx.
    #[schema(example = "the endpoint answered 500")]
    error: Option<String>,
    /// The first KiB of the answer's body.
    #[schema(example = "upstream timeout")]
    response: Option<String>,
}

impl WebhookDelivery {
    fn new(d: &model::WebhookDelivery, with_attempts: bool) -> WebhookDelivery {
        WebhookDelivery {
            id: d.id,
            endpoint_id: d.endpoint_id,
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            sequence: d.sequence,
            status: d.status.code(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at.map(stamp),
            created_at: stamp(d.created_at),
            delivered_at: d.delivered_at.map(stamp),
            attempt_log: with_attempts.then(|| {
                d.attempt_log
                    .iter()
                    .map(|a| WebhookAttempt {
                        attempted_at: stamp(a.attempted_at),
                        status_code: a.status_code,
                        duration_ms: a.duration_ms,
                        error: a.error.clone(),
                        response: a.response.clone(),
                    })
                    .collect()
            }),
        }
    }
}

/// Filters of the list of deliveries.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "a schema: it checks the query; `delivery_filter` reads the values"
)]
pub struct DeliveryFilters {
    /// Only deliveries to this endpoint.
    #[param(minimum = 1)]
    endpoint_id: Option<i64>,
    /// Only deliveries in this status: 1 pending, 2 delivered, 3 failed.
    #[param(minimum = 1, maximum = 3)]
    status: Option<i64>,
    /// Only deliveries of this event.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000]*$",
        example = "evt_0193a8f2-6c1e-7a3b-9d41-2f6e8a1c5b7d"
    )]
    event_id: Option<String>,
}

/// The event types of a body: absent (keep), `null` (every event) or a list.
fn event_types(p: &Params) -> Result<Option<Option<Vec<String>>>, DoorError> {
    match p.get("EventTypes") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v.as_str() {
                Some(t) if t.chars().count() > 64 => Err(DoorError::invalid(
                    "EventTypes",
                    "must be event types of at most 64 characters",
                )),
                Some(t) => Ok(t.to_owned()),
                None => Err(DoorError::invalid(
                    "EventTypes",
                    "must be a list of event types",
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|types| Some(Some(types))),
        Some(_) => Err(DoorError::invalid(
            "EventTypes",
            "must be a list of event types",
        )),
    }
}

fn patch(p: &Params) -> Result<WebhookEndpointPatch, DoorError> {
    Ok(WebhookEndpointPatch {
        url: p.text("Url", 2048)?,
        description: p.optional_text("Description", MAX_TEXT)?,
        event_types: event_types(p)?,
        enabled: p.flag("Enabled")?,
    })
}

/// List webhook endpoints
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "Webhooks",
    responses((status = 200, description = "The tenant's endpoints", body = WebhookEndpoints)))]
pub async fn list_endpoints(call: Call) -> Response {
    call.read(async |call| {
        let endpoints = call
            .app
            .list_webhook_endpoints(&call.tenant)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&WebhookEndpoints {
            data: endpoints
                .iter()
                .map(|e| WebhookEndpoint::new(e, None))
                .collect(),
        }))
    })
    .await
}

/// Add a webhook endpoint
///
/// Its events are the ones committed from now on. The answer carries the signing
/// secret, once.
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "Webhooks",
    request_body = NewWebhookEndpoint,
    responses((status = 201, description = "The endpoint, with its secret; `Location` names it",
        body = WebhookEndpoint,
        headers(("Location" = String, description = "/v1/webhook-endpoints/{id}")))))]
pub async fn create_endpoint(call: Call, body: Body) -> Response {
    call.write::<NewWebhookEndpoint>(body, async |call, p| {
        let patch = patch(&p)?;
        let fields = WebhookEndpointFields {
            url: patch.url.ok_or_else(|| DoorError::missing("Url", ""))?,
            description: patch.description.flatten(),
            event_types: patch.event_types.flatten(),
            enabled: patch.enabled.unwrap_or(true),
        };
        let created = call
            .app
            .create_webhook_endpoint(&call.tenant, &fields)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::created(
            format!("/v1/webhook-endpoints/{}", created.endpoint.id),
            &WebhookEndpoint::new(&created.endpoint, Some(created.secret)),
        ))
    })
    .await
}

/// Get a webhook endpoint
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}", tag = "Webhooks",
    params(("id" = i64, Path, description = "The endpoint's ID", minimum = 1)),
    responses((status = 200, description = "The endpoint (without its secret)", body = WebhookEndpoint)))]
pub async fn get_endpoint(call: Call, Path(id): Path<String>) -> Response {
    call.read(async |call| {
        let id: i64 = path_id(&id, "webhook endpoint")?;
        let endpoint = call
            .app
            .get_webhook_endpoint(&call.tenant, id)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&WebhookEndpoint::new(&endpoint, None)))
    })
    .await
}

/// Change a webhook endpoint
#[utoipa::path(patch, path = "/v1/webhook-endpoints/{id}", tag = "Webhooks",
    params(("id" = i64, Path, description = "The endpoint's ID", minimum = 1)),
    request_body = Option<WebhookEndpointChanges>,
    responses((status = 200, description = "The endpoint changed", body = WebhookEndpoint)))]
pub async fn update_endpoint(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<WebhookEndpointChanges>(body, async |call, p| {
        let id: i64 = path_id(&id, "webhook endpoint")?;
        // A null `url` or `enabled` is refused by the body's schema type.
        let patch = patch(&p)?;
        let endpoint = call
            .app
            .update_webhook_endpoint(&call.tenant, id, &patch)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&WebhookEndpoint::new(&endpoint, None)))
    })
    .await
}

/// Remove a webhook endpoint
///
/// Its pending deliveries fail; nothing more is sent to it.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", tag = "Webhooks",
    params(("id" = i64, Path, description = "The endpoint's ID", minimum = 1)),
    responses((status = 204, description = "Removed")))]
pub async fn remove_endpoint(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<Empty>(body, async |call, _| {
        let id: i64 = path_id(&id, "webhook endpoint")?;
        call.app
            .remove_webhook_endpoint(&call.tenant, id)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::no_content())
    })
    .await
}

/// Rotate an endpoint's signing secret
///
/// Answers the new secret, once. For 24 hours every delivery is signed with both
/// (two `v1,` signatures), so the receiver can switch without losing any.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/rotate-secret", tag = "Webhooks",
    params(("id" = i64, Path, description = "The endpoint's ID", minimum = 1)),
    responses((status = 200, description = "The endpoint, with its new secret", body = WebhookEndpoint)))]
pub async fn rotate_secret(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<Empty>(body, async |call, _| {
        let id: i64 = path_id(&id, "webhook endpoint")?;
        let rotated = call
            .app
            .rotate_webhook_secret(&call.tenant, id)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&WebhookEndpoint::new(
            &rotated.endpoint,
            Some(rotated.secret),
        )))
    })
    .await
}

/// Send a test event
///
/// Queues a `webhook.test` event (not in the event log: its `sequence` is `null`)
/// for the endpoint, sent at once, signed as every event.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/test", tag = "Webhooks",
    params(("id" = i64, Path, description = "The endpoint's ID", minimum = 1)),
    responses((status = 202, description = "Queued: its delivery", body = WebhookDelivery)))]
pub async fn test_endpoint(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<Empty>(body, async |call, _| {
        let id: i64 = path_id(&id, "webhook endpoint")?;
        let endpoint = call
            .app
            .get_webhook_endpoint(&call.tenant, id)
            .await
            .map_err(|e| call.fail(e))?;
        let now = call.app.clock().now();
        let event_id = format!("evt_test_{}_{}", endpoint.id, now.as_microsecond());
        let payload = json!({
            "id": event_id,
            "type": "webhook.test",
            "sequence": null,
            "occurred_at": stamp(now),
            "object_type": "webhook_endpoint",
            "object_id": endpoint.id,
            "object_ext_id": null,
            "object_version": endpoint.version,
            "data": {"object": WebhookEndpoint::new(&endpoint, None), "previous": null},
        });
        let delivery = NewDelivery {
            event_id: event_id.clone(),
            event_type: "webhook.test".to_owned(),
            sequence: None,
            payload: payload.to_string(),
        };
        call.app
            .queue_deliveries(&call.tenant, id, &[delivery])
            .await
            .map_err(|e| call.fail(e))?;
        let filter = DeliveryFilter {
            endpoint_id: Some(id),
            event_id: Some(event_id),
            ..DeliveryFilter::default()
        };
        let queued = call
            .app
            .list_webhook_deliveries(&call.tenant, &filter, PageRequest::first(1))
            .await
            .map_err(|e| call.fail(e))?;
        let delivery = queued
            .items
            .first()
            .ok_or_else(|| internal(&"the test delivery was not queued", &call.request_id))?;
        Ok(Reply::accepted(&WebhookDelivery::new(delivery, false)))
    })
    .await
}

/// Resend events since a time
///
/// Queues, again, every event since `since` that the endpoint takes (up to
/// 10,000), oldest first, whether or not it was delivered before: receivers
/// deduplicate by `webhook-id`.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/recover", tag = "Webhooks",
    params(("id" = i64, Path, description = "The endpoint's ID", minimum = 1)),
    request_body = Recovery,
    responses((status = 202, description = "Queued", body = Recovered)))]
pub async fn recover(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<Recovery>(body, async |call, p| {
        let id: i64 = path_id(&id, "webhook endpoint")?;
        let since = instant(&p, "Since", &call.tenant.time_zone)?
            .ok_or_else(|| DoorError::missing("Since", ""))?;
        let endpoint = call
            .app
            .get_webhook_endpoint(&call.tenant, id)
            .await
            .map_err(|e| call.fail(e))?;
        let today = call.app.today(&call.tenant);
        let filter = EventFilter {
            occurred_from: Some(since),
            ..EventFilter::default()
        };
        let mut deliveries = Vec::new();
        let mut page = PageRequest {
            counted: Some(0),
            ..PageRequest::first(500)
        };
        loop {
            let found = call
                .app
                .list_events(&call.tenant, &filter, page)
                .await
                .map_err(|e| call.fail(e))?;
            for event in &found.items {
                // Later events are the fan-out's: queued once, in order.
                if event.sequence > endpoint.fanned_out_to || deliveries.len() >= MAX_RECOVERED {
                    break;
                }
                if endpoint.wants(&event.kind) {
                    deliveries.push(NewDelivery {
                        event_id: event.id.clone(),
                        event_type: event.kind.clone(),
                        sequence: Some(event.sequence),
                        payload: payload(event, today, &call.request_id)?,
                    });
                }
            }
            match (found.next_after, found.items.last()) {
                (Some(after), Some(last))
                    if last.sequence <= endpoint.fanned_out_to
                        && deliveries.len() < MAX_RECOVERED =>
                {
                    page = PageRequest {
                        after: Some(after),
                        ..page
                    };
                }
                _ => break,
            }
        }
        call.app
            .queue_deliveries(&call.tenant, id, &deliveries)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::accepted(&Recovered {
            queued: deliveries.len(),
        }))
    })
    .await
}

/// An event as a webhook sends it: its REST shape, as JSON.
pub fn payload(
    event: &model::Event,
    today: jiff::civil::Date,
    request_id: &str,
) -> Result<String, DoorError> {
    let shaped = Event::new(event, today, request_id)?;
    serde_json::to_string(&shaped).map_err(|e| internal(&e, request_id))
}

fn delivery_filter(
    p: &Params,
    tenant: &model::Tenant,
) -> Result<(DeliveryFilter, ListScope), DoorError> {
    let status = match p.int("Status")? {
        None => None,
        Some(code) => Some(DeliveryStatus::from_code(code).ok_or_else(|| {
            DoorError::invalid("Status", "must be 1 (pending), 2 (delivered) or 3 (failed)")
        })?),
    };
    let filter = DeliveryFilter {
        endpoint_id: p.int("EndpointId")?,
        status,
        event_id: p.text("EventId", 64)?,
    };
    let scope = ListScope::new(tenant, DELIVERIES_LIST)
        .with("EndpointId", filter.endpoint_id)
        .with("Status", status.map(DeliveryStatus::code))
        .with("EventId", filter.event_id.as_deref());
    Ok((filter, scope))
}

/// List webhook deliveries
#[utoipa::path(get, path = "/v1/webhook-deliveries", tag = "Webhooks",
    params(DeliveryFilters, Paging),
    responses((status = 200, description = "A page of deliveries, oldest first", body = List<WebhookDelivery>)))]
pub async fn list_deliveries(call: Call) -> Response {
    call.read(async |call| {
        let p = call.query::<DeliveryFilters>(true)?;
        let (filter, scope) = delivery_filter(&p, &call.tenant)?;
        let page = scope.page(&p)?;
        let found = call
            .app
            .list_webhook_deliveries(&call.tenant, &filter, page)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&List::new(&found, &scope, &p, |d| {
            WebhookDelivery::new(d, false)
        })))
    })
    .await
}

/// Get a webhook delivery
#[utoipa::path(get, path = "/v1/webhook-deliveries/{id}", tag = "Webhooks",
    params(("id" = i64, Path, description = "The delivery's ID", minimum = 1)),
    responses((status = 200, description = "The delivery, with its attempts", body = WebhookDelivery)))]
pub async fn get_delivery(call: Call, Path(id): Path<String>) -> Response {
    call.read(async |call| {
        let id: i64 = path_id(&id, "webhook delivery")?;
        let delivery = call
            .app
            .get_webhook_delivery(&call.tenant, id)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&WebhookDelivery::new(&delivery, true)))
    })
    .await
}

/// Retry a webhook delivery
///
/// Sends it again now, whatever became of it (its attempts so far are kept).
#[utoipa::path(post, path = "/v1/webhook-deliveries/{id}/retry", tag = "Webhooks",
    params(("id" = i64, Path, description = "The delivery's ID", minimum = 1)),
    responses((status = 202, description = "Queued again", body = WebhookDelivery)))]
pub async fn retry_delivery(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<Empty>(body, async |call, _| {
        let id: i64 = path_id(&id, "webhook delivery")?;
        let delivery = call
            .app
            .retry_webhook_delivery(&call.tenant, id)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::accepted(&WebhookDelivery::new(&delivery, false)))
    })
    .await
}
