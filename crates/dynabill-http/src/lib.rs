//! dynabill-http: the HTTP doors. The dynamic door (`/api/dynamicapi`,
//! DealHub-compatible) and the REST face (`/v1`, with its OpenAPI document and
//! reference docs); every business rule stays behind them, in `dynabill-app`.
//!
//! This is the only crate that knows JSON field names and HTTP status codes.

mod codes;
mod console;
mod cursor;
mod dynamic;
mod envelope;
mod error;
mod fields;
mod limit;
mod middleware;
mod ops;
mod params;
pub mod pdf;
mod rest;
mod testclock;
mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use dynabill_app::App;

use crate::codes::ApiError;
use crate::error::DoorError;

pub use dynamic::MAX_BODY_BYTES;

pub use limit::RateLimit;
pub use rest::{event_payload, insights_json};

/// What every handler shares.
#[derive(Clone)]
pub struct ServerState {
    app: App,
    request_ids: Arc<RequestIds>,
    rate_limiter: Option<Arc<limit::RateLimiter>>,
    /// How invoices are drawn as PDF.
    invoice_template: Arc<pdf::InvoiceTemplate>,
    /// Bill runs started from the console.
    console_jobs: Arc<console::BillRunJobs>,
    /// The console Home's insights, by tenant.
    home_figures: Arc<console::HomeFigures>,
}

/// Options of the HTTP surface.
#[derive(Clone, Debug, Default)]
pub struct HttpOptions {
    /// Per-tenant request rate limit; `None` for unlimited.
    pub rate_limit: Option<RateLimit>,
    /// `GET /metrics` is served by [`metrics_router`] on a listener of its own
    /// (`serve --metrics-listen`), not here.
    pub metrics_elsewhere: bool,
    /// The invoice PDF's template (`serve --invoice-template`); `None`: the default.
    pub invoice_template: Option<pdf::InvoiceTemplate>,
}

/// The whole HTTP surface of the server.
pub fn router(app: App, options: HttpOptions) -> Router {
    let state = ServerState {
        app,
        request_ids: Arc::new(RequestIds::new()),
        rate_limiter: options
            .rate_limit
            .map(|limit| Arc::new(limit::RateLimiter::new(limit))),
        invoice_template: Arc::new(options.invoice_template.unwrap_or_default()),
        console_jobs: Arc::default(),
        home_figures: Arc::default(),
    };
    let mut router = Router::new()
        .route(
            "/api/dynamicapi",
            get(dynamic::read).fallback(dynamic::handle),
        )
        .route("/api/testclock", any(testclock::handle))
        .route("/healthz", get(healthz));
    if !options.metrics_elsewhere {
        router = router.route("/metrics", get(metrics));
    }
    router
        .merge(rest::router())
        .merge(console::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::around,
        ))
        .with_state(state)
}

async fn healthz(State(state): State<ServerState>) -> Response {
    match state.app.store().ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: storage unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable\n").into_response()
        }
    }
}

/// `GET /metrics` alone, for a listener of its own (`serve --metrics-listen`).
pub fn metrics_router(app: App) -> Router {
    let state = ServerState {
        app,
        request_ids: Arc::new(RequestIds::new()),
        rate_limiter: None,
        invoice_template: Arc::default(),
        console_jobs: Arc::default(),
        home_figures: Arc::default(),
    };
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// The metrics in the Prometheus text format. The storage gauges (pools, webhook
/// backlog) are read now; with storage down the rest is still shown.
async fn metrics(State(state): State<ServerState>) -> Response {
    let gauges = match state.app.store().gauges().await {
        Ok(gauges) => gauges,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: storage gauges unavailable");
            dynabill_app::store::StoreGauges::default()
        }
    };
    (
        [(header::CONTENT_TYPE, dynabill_app::telemetry::CONTENT_TYPE)],
        state.app.telemetry().render(&gauges),
    )
        .into_response()
}

/// The REST face's OpenAPI document (`GET /v1/openapi.json`).
pub fn openapi_json() -> &'static str {
    rest::openapi_json()
}

/// Refuses a request over its tenant's rate limit (429), before any work.
fn check_rate(state: &ServerState, tenant: &dynabill_app::model::Tenant) -> Result<(), DoorError> {
    let Some(limiter) = &state.rate_limiter else {
        return Ok(());
    };
    limiter
        .check(tenant.id, std::time::Instant::now())
        .map_err(|wait| {
            DoorError::Api(
                ApiError::TooManyRequests,
                format!(
                    "rate limit exceeded for this tenant; retry in {} ms",
                    wait.as_millis().max(1)
                ),
            )
        })
}

async fn not_found(uri: axum::http::Uri, RequestId(request_id): RequestId) -> Response {
    if uri.path() == "/v1" || uri.path().starts_with("/v1/") {
        return rest::not_found(uri.path(), &request_id);
    }
    let reply = envelope::failure(&DoorError::Api(
        ApiError::NotFound,
        "no such path; the API is at /api/dynamicapi".into(),
    ));
    (
        reply.status,
        [(header::CONTENT_TYPE, "application/json")],
        reply.body,
    )
        .into_response()
}

/// Request IDs: a random per-process prefix and a counter, cheap and unique enough
/// to find a request in the logs.
struct RequestIds {
    prefix: String,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> RequestIds {
        let mut bytes = [0u8; 4];
        // Without a random source the IDs are still unique within the process.
        let _ = getrandom::fill(&mut bytes);
        RequestIds {
            prefix: hex::encode(bytes),
            next: AtomicU64::new(1),
        }
    }

    fn next(&self) -> String {
        format!(
            "{}-{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// The ID of the current request: the caller's `X-Request-Id` when sensible, else
/// ours; given once, before the door (`middleware::around`).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

impl RequestId {
    fn of(request: &axum::extract::Request, state: &ServerState) -> RequestId {
        let given = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic()));
        RequestId(given.map_or_else(|| state.request_ids.next(), str::to_owned))
    }
}

impl FromRequestParts<ServerState> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ServerState,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(state.request_ids.next())))
    }
}
