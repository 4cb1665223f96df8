//! The one place where failures become envelopes and HTTP statuses.

use dynabill_app::{AppError, Field};

use crate::codes::{ApiError, MethodError};
use crate::fields::wire_name;

/// A failed request, as the door reports it.
#[derive(Debug)]
pub enum DoorError {
    /// The method failed (`API_STATUS` 1, HTTP 200).
    Method(MethodError, String),
    /// The method failed because of one field: its wire name, and the rest of the
    /// sentence (`"must be a date"`). The dynamic door says `"StartDate must be a
    /// date"`; the REST face names the field in its own spelling.
    Field {
        code: MethodError,
        field: String,
        reason: String,
        /// The field is named as the request spelled it (a REST body's unknown
        /// `AccountName` stays `AccountName`), not by its dynamic wire name.
        as_sent: bool,
    },
    /// The API itself failed (`API_STATUS` 0, a 4xx/5xx status).
    Api(ApiError, String),
}

impl DoorError {
    pub fn missing(name: &str, context: &str) -> DoorError {
        DoorError::Field {
            code: MethodError::Missing,
            field: name.to_owned(),
            reason: format!("is required {context}").trim_end().to_owned(),
            as_sent: false,
        }
    }

    /// `reason` completes the sentence after the field's name: "must be a date".
    pub fn invalid(name: &str, reason: impl std::fmt::Display) -> DoorError {
        DoorError::Field {
            code: MethodError::Invalid,
            field: name.to_owned(),
            reason: reason.to_string(),
            as_sent: false,
        }
    }

    /// What the dynamic door says: the whole sentence.
    pub fn description(&self) -> std::borrow::Cow<'_, str> {
        match self {
            DoorError::Method(_, description) | DoorError::Api(_, description) => {
                description.as_str().into()
            }
            DoorError::Field { field, reason, .. } => format!("{field} {reason}").into(),
        }
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
