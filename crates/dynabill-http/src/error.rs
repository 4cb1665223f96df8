//! The one place where failures become envelopes and HTTP statuses.

use dynabill_app::{AppError, Field};

use crate::codes::{ApiError, MethodError};
use crate::fields::wire_name;

/// A failed request, as the door reports it.
#[derive(Debug)]
pub enum DoorError {
    /// The method failed (`API_STATUS` 1, HTTP 200).
    Method(MethodError, String),
    /// The API itself failed (`API_STATUS` 0, a 4xx/5xx status).
    Api(ApiError, String),
}

impl DoorError {
    pub fn missing(name: &str, context: &str) -> DoorError {
        DoorError::Method(
            MethodError::Missing,
            format!("{name} is required {context}")
                .trim_end()
                .to_owned(),
        )
    }

    /// `reason` completes the sentence after the field's name: "must be a date".
    pub fn invalid(name: &str, reason: impl std::fmt::Display) -> DoorError {
        DoorError::Method(MethodError::Invalid, format!("{name} {reason}"))
    }

    pub fn bad_request(description: impl Into<String>) -> DoorError {
        DoorError::Api(ApiError::BadRequest, description.into())
    }
}

/// Turns a use case's error into the door's, naming fields by their wire names.
/// Internal errors are logged here, once, with the request ID the client sees.
pub fn from_app(e: AppError, request_id: &str) -> DoorError {
    match e {
        AppError::Missing { field, context } => DoorError::missing(wire(field), context),
        AppError::Invalid { field, reason } => DoorError::invalid(wire(field), reason),
        AppError::NotFound {
            entity,
            field,
            value,
        } => DoorError::Method(
            MethodError::NotFound,
            format!("no {} with {} {value:?} exists", entity.noun(), wire(field)),
        ),
        AppError::Duplicate { reason, .. } => DoorError::Method(MethodError::Duplicate, reason),
        AppError::NotAllowed(reason) => DoorError::Method(MethodError::NotAllowed, reason),
        AppError::IdempotencyConflict(reason) => {
            DoorError::Method(MethodError::IdempotencyConflict, reason.to_owned())
        }
        AppError::Unavailable(detail) => {
            tracing::warn!(request_id, %detail, "storage unavailable");
            DoorError::Api(
                ApiError::Unavailable,
                format!("storage is unavailable; retry later (request ID {request_id})"),
            )
        }
        AppError::Internal(err) => internal(&err, request_id),
    }
}

/// An unexpected failure: the client gets only the request ID, the log gets the rest.
pub fn internal(err: &dyn std::fmt::Debug, request_id: &str) -> DoorError {
    tracing::error!(request_id, error = ?err, "internal error");
    DoorError::Api(
        ApiError::Internal,
        format!("internal error (request ID {request_id})"),
    )
}

fn wire(field: Field) -> &'static str {
    wire_name(field)
}
