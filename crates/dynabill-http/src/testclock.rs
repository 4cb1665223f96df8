//! The test clock (`serve --test-clock`): an integrator sets a tenant's "today" and
//! may run the bill run for it at once, as Kill Bill's and Stripe's test clocks do.
//!
//! `GET /api/testclock` reads the tenant's today; `POST /api/testclock` with
//! `{"Today": "YYYY-MM-DD"}` (or `null` to follow the real clock again) sets it,
//! and with `"BillRun": 1` also runs the tenant's bill run for that date.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::codes::ApiError;
use crate::dynamic::{authenticate, read_body};
use crate::envelope::{self, Reply};
use crate::error::{DoorError, from_app};
use crate::params::Params;
use crate::{RequestId, ServerState};

#[derive(Serialize)]
#[expect(non_snake_case, reason = "the wire's field names")]
struct ClockOut {
    Today: String,
    TestClock: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    InvoicesCreated: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    AccountsBilled: Option<u64>,
}

pub async fn handle(
    State(state): State<ServerState>,
    RequestId(request_id): RequestId,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let reply = match serve(&state, &request_id, &method, &headers, body).await {
        Ok(reply) => reply,
        Err(error) => envelope::failure(&error),
    };
    (
        reply.status,
        [(header::CONTENT_TYPE, "application/json")],
        reply.body,
    )
        .into_response()
}

async fn serve(
    state: &ServerState,
    request_id: &str,
    method: &Method,
    headers: &HeaderMap,
    body: Body,
) -> Result<Reply, DoorError> {
    let app = &state.app;
    let tenant = authenticate(app, headers, request_id).await?;
    let mut out = ClockOut {
        Today: String::new(),
        TestClock: u8::from(app.test_clock()),
        InvoicesCreated: None,
        AccountsBilled: None,
    };
    if *method == Method::POST {
        let mut params = Params::default();
        params.add_body(read_body(headers, body).await?)?;
        if !params.has("Today") {
            return Err(DoorError::missing(
                "Today",
                "(a YYYY-MM-DD date, or null for the real clock)",
            ));
        }
        let today = params.date("Today")?.flatten();
        app.set_test_today(&tenant, today)
            .await
            .map_err(|e| from_app(e, request_id))?;
        let tenant = app
            .tenant_by_app_key(&tenant.app_key)
            .await
            .map_err(|e| from_app(e, request_id))?;
        if params.flag("BillRun")?.unwrap_or(false) {
            let summary = app
                .bill_run(&tenant, app.today(&tenant), &|_| {})
                .await
                .map_err(|e| from_app(e, request_id))?;
            out.InvoicesCreated = Some(summary.invoices);
            out.AccountsBilled = Some(summary.accounts_billed);
        }
        out.Today = app.today(&tenant).to_string();
    } else if *method == Method::GET {
        out.Today = app.today(&tenant).to_string();
    } else {
        return Err(DoorError::Api(
            ApiError::MethodNotAllowed,
            format!("{method} is not allowed here; use GET or POST"),
        ));
    }
    Ok(envelope::page(&[out], 1, None))
}
