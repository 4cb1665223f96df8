//! What every request goes through before its door: it is given its request ID,
//! and writes run to their end.

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::codes::ApiError;
use crate::error::DoorError;
use crate::{RequestId, ServerState, envelope, rest};

pub async fn around(
    State(state): State<ServerState>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id = RequestId::of(&request, &state);
    request.extensions_mut().insert(request_id.clone());
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let rest = request.uri().path().starts_with("/v1");
    // Writes run to their end on a task of their own: a client that goes away
    // mid-request (a timeout, a dropped connection) does not cut an operation
    // short between two of its steps, and its `Idempotency-Key` gets the answer
    // the operation earned (a retry replays it). Reads stop with their client.
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(request_id = %request_id.0, error = %e, "a request's task failed");
            internal_error(rest, &request_id.0)
        }
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
