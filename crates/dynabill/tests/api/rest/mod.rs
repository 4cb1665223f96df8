//! The REST face (`/v1`) over real HTTP, on both backends: each resource's happy
//! path, its problems, paging, idempotent retries, tenant isolation, and
//! equivalence with the dynamic door.

mod accounts;
mod billing;
mod document;
mod events;
mod insights;
mod plans;
mod record_events;
mod webhooks;

use reqwest::StatusCode;
use serde_json::Value;

/// Asserts a problem response: its status, `code`, and (when given) `field`.
#[track_caller]
pub fn assert_problem(
    (status, headers, body): &(StatusCode, reqwest::header::HeaderMap, Value),
    expected: u16,
    code: &str,
    field: Option<&str>,
) {
    assert_eq!(status.as_u16(), expected, "status of {body}");
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{body}"
    );
    assert_eq!(body["status"], expected, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(
        body["type"],
        format!("urn:dynabill:problem:{code}"),
        "{body}"
    );
    assert!(
        body["request_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{body}");
    }
}
