//! What every request goes through before its door: it is given its request ID
//! and a span (request ID, method, path, then tenant, operation, status and
//! latency in microseconds), writes run to their end, and once answered it is counted in the
//! metrics and written to the access log (`info`, target `dynabill::access`).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dynabill_app::telemetry::RequestLabels;
use dynabill_core::domain::TenantId;
use tracing::Instrument;
use tracing::field::Empty;

use crate::codes::ApiError;
use crate::error::DoorError;
use crate::{RequestId, ServerState, envelope, rest};

/// What the doors learn of a request as they serve it: who, and which operation.
#[derive(Clone, Debug, Default)]
struct Facts {
    tenant: Option<TenantId>,
    operation: Option<String>,
}

tokio::task_local! {
    static FACTS: Arc<Mutex<Facts>>;
}

/// Notes the tenant a request was authenticated as (in its span and its access
/// log line).
pub(crate) fn note_tenant(tenant: TenantId) {
    tracing::Span::current().record("tenant", tenant.0);
    let _ = FACTS.try_with(|facts| {
        if let Ok(mut facts) = facts.lock() {
            facts.tenant = Some(tenant);
        }
    });
}

/// Notes the operation a request asked for, when the path alone does not say
/// (the dynamic door's `api_code/entity_code`).
pub(crate) fn note_operation(operation: String) {
    let _ = FACTS.try_with(|facts| {
        if let Ok(mut facts) = facts.lock() {
            facts.operation = Some(operation);
        }
    });
}

pub async fn around(
    State(state): State<ServerState>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let request_id = RequestId::of(&request, &state);
    request.extensions_mut().insert(request_id.clone());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let door = door_of(&path);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| format!("{method} {}", matched.as_str()));
    let span = tracing::info_span!(
        "request",
        request_id = %request_id.0,
        %method,
        %path,
        tenant = Empty,
        operation = Empty,
        status = Empty,
        latency_us = Empty,
    );
    let facts = Arc::new(Mutex::new(Facts::default()));
    let serving = FACTS.scope(facts.clone(), next.run(request).instrument(span.clone()));
    let mut response = if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
        serving.await
    } else {
        // Writes run to their end on a task of their own: a client that goes away
        // mid-request (a timeout, a dropped connection) does not cut an operation
        // short between two of its steps, and its `Idempotency-Key` gets the
        // answer the operation earned (a retry replays it). Reads stop with their
        // client.
        match tokio::spawn(serving).await {
            Ok(response) => response,
            Err(e) => {
                tracing::error!(parent: &span, error = %e, "a request's task failed");
                internal_error(door == "rest", &request_id.0)
            }
        }
    };
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        // The database is away: say when to try again (a pool wait is 3 s).
        response
            .headers_mut()
            .entry(header::RETRY_AFTER)
            .or_insert(HeaderValue::from_static("3"));
    }
    let facts = facts.lock().map(|f| f.clone()).unwrap_or_default();
    // The dynamic door's one path serves every operation: its codes name it, and
    // a request refused before they were read has none.
    let operation = match (door, facts.operation, route) {
        ("dynamic", Some(operation), _) => operation,
        ("dynamic", None, _) | (_, _, None) => "unrouted".to_owned(),
        (_, _, Some(route)) => route,
    };
    let status = response.status();
    let took = started.elapsed();
    let latency_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    span.record("operation", operation.as_str());
    span.record("status", status.as_u16());
    span.record("latency_us", latency_us);
    if let Some(tenant) = facts.tenant {
        span.record("tenant", tenant.0);
    }
    tracing::info!(
        target: "dynabill::access",
        parent: &span,
        door,
        operation = operation.as_str(),
        status = status.as_u16(),
        latency_us,
        tenant = facts.tenant.map(|t| t.0),
        "{method} {path} {}",
        status.as_u16()
    );
    state.app.telemetry().request(
        RequestLabels {
            door,
            operation,
            status: status.as_u16(),
        },
        took,
    );
    response
}

/// Which door a path belongs to.
fn door_of(path: &str) -> &'static str {
    if path == "/v1" || path.starts_with("/v1/") {
        "rest"
    } else if path == "/api/dynamicapi" {
        "dynamic"
    } else if path == "/api/testclock" {
        "testclock"
    } else {
        "other"
    }
}

fn internal_error(rest: bool, request_id: &str) -> Response {
    let error = DoorError::Api(
        ApiError::Internal,
        format!(
            "internal error (request {request_id}); the request may or may not have been applied"
        ),
    );
    if rest {
        return rest::problem_response(&error, request_id);
    }
    let reply = envelope::failure(&error);
    (
        reply.status,
        [(header::CONTENT_TYPE, "application/json")],
        reply.body,
    )
        .into_response()
}
