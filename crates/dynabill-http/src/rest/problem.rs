//! Errors of the REST face: `application/problem+json` (RFC 9457), from the same
//! [`DoorError`] the dynamic door turns into its envelope.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::codes::{ApiError, MethodError};
use crate::error::DoorError;
use crate::fields::PAGE_SIZE;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// What went wrong, as RFC 9457 describes it, with dynabill's stable `code`, the
/// field to blame and the equivalent DealHub `METHOD_ERROR`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:dynabill:problem:invalid_field",
    "title": "A field is invalid",
    "status": 422,
    "detail": "start_date must be a date written YYYY-MM-DD",
    "code": "invalid_field",
    "field": "start_date",
    "method_error": "2",
    "request_id": "5f2c9a10-17"
}))]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:dynabill:problem:` and the `code`.
    #[serde(rename = "type")]
    #[schema(example = "urn:dynabill:problem:invalid_field")]
    kind: String,
    /// A short summary of the kind of problem; the same for every problem of a `code`.
    #[schema(example = "A field is invalid")]
    title: &'static str,
    /// The HTTP status.
    #[schema(example = 422)]
    status: u16,
    /// What happened to this request, in a sentence.
    #[schema(example = "start_date must be a date written YYYY-MM-DD")]
    detail: String,
    /// A stable code for programs: `invalid_field`, `missing_field`, `not_found`,
    /// `duplicate`, `not_allowed`, `idempotency_conflict`, `bad_request`,
    /// `unauthorized`, `method_not_allowed`, `payload_too_large`,
    /// `unsupported_media_type`, `rate_limited`, `internal`, `unavailable`.
    #[schema(example = "invalid_field")]
    code: &'static str,
    /// The request field (body, query or path) the problem is about, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "start_date")]
    field: Option<String>,
    /// The dynamic door's `METHOD_ERROR` for the same failure (SPEC §2), when the
    /// request reached a use case.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "2")]
    method_error: Option<&'static str>,
    /// The request's ID, as in the `X-Request-Id` header and the server's logs.
    #[schema(example = "5f2c9a10-17")]
    request_id: String,
}

/// The status, code and title of a failure of the method.
fn method_kind(code: MethodError) -> (StatusCode, &'static str, &'static str) {
    match code {
        MethodError::Missing => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
            "A required field is missing",
        ),
        MethodError::Invalid => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "A field is invalid",
        ),
        MethodError::NotFound | MethodError::Unsupported => (
            StatusCode::NOT_FOUND,
            "not_found",
            "No such record in this tenant",
        ),
        MethodError::Duplicate => (
            StatusCode::CONFLICT,
            "duplicate",
            "A record with this key already exists",
        ),
        MethodError::NotAllowed => (
            StatusCode::CONFLICT,
            "not_allowed",
            "The record's state does not allow this",
        ),
        MethodError::IdempotencyConflict => (
            StatusCode::CONFLICT,
            "idempotency_conflict",
            "The Idempotency-Key conflicts with another request",
        ),
        MethodError::MissingCodes => (StatusCode::BAD_REQUEST, "bad_request", "Bad request"),
    }
}

fn api_kind(code: ApiError) -> (&'static str, &'static str) {
    match code {
        ApiError::BadRequest => ("bad_request", "The request cannot be read"),
        ApiError::Unauthorized => ("unauthorized", "Authentication failed"),
        ApiError::NotFound => ("not_found", "No such resource"),
        ApiError::MethodNotAllowed => ("method_not_allowed", "Method not allowed"),
        ApiError::PayloadTooLarge => ("payload_too_large", "The body is too large"),
        ApiError::UnsupportedMediaType => ("unsupported_media_type", "The body must be JSON"),
        ApiError::TooManyRequests => ("rate_limited", "Too many requests"),
        ApiError::Internal => ("internal", "Internal error"),
        ApiError::Unavailable => ("unavailable", "Storage unavailable"),
    }
}

/// The REST spelling of a field the dynamic door names: `StartDate` is
/// `start_date`, `ExtID2` is `ext_id2`, `PageSize` is `limit`.
pub fn rest_name(wire: &str) -> String {
    if wire == PAGE_SIZE {
        return "limit".into();
    }
    if wire == "timezone" {
        return "time_zone".into();
    }
    // The CLI's settings (`invoice-prefix`, `tax-mode`).
    if wire.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
        return wire.replace('-', "_");
    }
    if !wire.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return wire.into();
    }
    let chars: Vec<char> = wire.chars().collect();
    let mut out = String::with_capacity(wire.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        let previous = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1);
        // A word starts at an upper-case letter after a lower-case one or a digit
        // (`StartDate`), or at the last capital of an acronym (`PONumber`).
        let starts_word = c.is_ascii_uppercase()
            && previous.is_some_and(|p| {
                p.is_ascii_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_ascii_uppercase() && next.is_some_and(char::is_ascii_lowercase))
            });
        if starts_word {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

impl Problem {
    pub fn new(error: &DoorError, request_id: &str) -> (StatusCode, Problem) {
        let (status, code, title, method_error) = match error {
            DoorError::Method(code, _) | DoorError::Field { code, .. } => {
                let (status, name, title) = method_kind(*code);
                let dealhub = (*code != MethodError::MissingCodes).then(|| code.code());
                (status, name, title, dealhub)
            }
            DoorError::Api(code, _) => {
                let (name, title) = api_kind(*code);
                (code.status(), name, title, None)
            }
        };
        let (detail, field) = match error {
            DoorError::Field {
                field,
                reason,
                as_sent,
                ..
            } => {
                let field = if *as_sent {
                    field.clone()
                } else {
                    rest_name(field)
                };
                (format!("{field} {reason}"), Some(field))
            }
            other => (other.description().into_owned(), None),
        };
        let problem = Problem {
            kind: format!("urn:dynabill:problem:{code}"),
            title,
            status: status.as_u16(),
            detail,
            code,
            field,
            method_error,
            request_id: request_id.to_owned(),
        };
        (status, problem)
    }

    /// The serialised problem and its status.
    pub fn encode(error: &DoorError, request_id: &str) -> (StatusCode, Vec<u8>) {
        let (status, problem) = Problem::new(error, request_id);
        // A struct of strings and numbers always serialises.
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        (status, body)
    }
}

/// A problem response.
pub fn response(error: &DoorError, request_id: &str) -> Response {
    let (status, body) = Problem::encode(error, request_id);
    let mut response = (status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response();
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("AppKey realm=\"dynabill\""),
        );
    }
    response
}

/// A path under `/v1` that names no resource.
pub fn not_found(path: &str, request_id: &str) -> Response {
    response(
        &DoorError::Api(
            ApiError::NotFound,
            format!("no resource at {path}; the operations are listed at /v1/openapi.json"),
        ),
        request_id,
    )
}

#[cfg(test)]
mod tests {
    use super::rest_name;

    #[test]
    fn dynamic_names_become_snake_case() {
        for (wire, rest) in [
            ("StartDate", "start_date"),
            ("ExtID", "ext_id"),
            ("ExtID2", "ext_id2"),
            ("ID", "id"),
            ("AccountExtID", "account_ext_id"),
            ("PONumber", "po_number"),
            ("PageSize", "limit"),
            ("Cursor", "cursor"),
            ("items[].id", "items[].id"),
            ("tax-mode", "tax_mode"),
            ("timezone", "time_zone"),
            ("Idempotency-Key", "Idempotency-Key"),
        ] {
            assert_eq!(rest_name(wire), rest, "{wire}");
        }
    }
}
