//! The response envelope (SPEC §2): one JSON object for every answer.

use axum::http::StatusCode;
use serde::Serialize;

use crate::codes::MethodError;
use crate::error::DoorError;

#[derive(Serialize)]
#[expect(non_snake_case, reason = "the wire's field names")]
struct Envelope<'a, T: Serialize> {
    API_STATUS: u8,
    METHOD_STATUS: u8,
    ID: Option<&'a str>,
    ExtID: Option<&'a str>,
    METHOD_ERROR: Option<&'a str>,
    API_ERROR: Option<&'a str>,
    METHOD_ERROR_DESCRIPTION: Option<&'a str>,
    #[serde(flatten)]
    read: Option<ReadPart<'a, T>>,
}

#[derive(Serialize)]
#[expect(non_snake_case, reason = "the wire's field names")]
struct ReadPart<'a, T: Serialize> {
    DATA: &'a [T],
    TOTAL_COUNT: i64,
    NEXT_CURSOR: Option<&'a str>,
}

/// A response ready to send: status and serialised envelope.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

fn encode<T: Serialize>(status: StatusCode, envelope: &Envelope<'_, T>) -> Reply {
    // Serialising plain structs of strings and numbers cannot fail.
    let body = serde_json::to_vec(envelope).unwrap_or_else(|_| b"{}".to_vec());
    Reply { status, body }
}

/// A successful write: the record's `ID` and `ExtID`.
pub fn written(id: &str, ext_id: &str) -> Reply {
    written_record(id, Some(ext_id))
}

/// A successful write of a record that may have no `ExtID` (an invoice).
pub fn written_record(id: &str, ext_id: Option<&str>) -> Reply {
    encode::<()>(
        StatusCode::OK,
        &Envelope {
            API_STATUS: 1,
            METHOD_STATUS: 1,
            ID: Some(id),
            ExtID: ext_id,
            METHOD_ERROR: None,
            API_ERROR: None,
            METHOD_ERROR_DESCRIPTION: None,
            read: None,
        },
    )
}

/// A successful read: one page of records.
pub fn page<T: Serialize>(data: &[T], total: i64, next_cursor: Option<&str>) -> Reply {
    encode(
        StatusCode::OK,
        &Envelope {
            API_STATUS: 1,
            METHOD_STATUS: 1,
            ID: None,
            ExtID: None,
            METHOD_ERROR: None,
            API_ERROR: None,
            METHOD_ERROR_DESCRIPTION: None,
            read: Some(ReadPart {
                DATA: data,
                TOTAL_COUNT: total,
                NEXT_CURSOR: next_cursor,
            }),
        },
    )
}

/// A failure: method errors answer HTTP 200 with `API_STATUS` 1; API errors their status with 0.
pub fn failure(error: &DoorError) -> Reply {
    let (status, api_status, method_error, api_error): (_, _, Option<&str>, Option<&str>) =
        match error {
            DoorError::Method(code, _) | DoorError::Field { code, .. } => {
                (StatusCode::OK, 1, Some(code.code()), None)
            }
            DoorError::Api(code, _) => (code.status(), 0, None, Some(code.code())),
        };
    let description = error.description();
    encode::<()>(
        status,
        &Envelope {
            API_STATUS: api_status,
            METHOD_STATUS: 0,
            ID: None,
            ExtID: None,
            METHOD_ERROR: method_error,
            API_ERROR: api_error,
            METHOD_ERROR_DESCRIPTION: Some(&description),
            read: None,
        },
    )
}

/// Whether a method error means the request was understood (for idempotency: such
/// answers are final and replayed; API errors are not stored).
pub fn is_final(error: &DoorError) -> bool {
    match error {
        DoorError::Method(code, _) | DoorError::Field { code, .. } => {
            *code != MethodError::IdempotencyConflict
        }
        DoorError::Api(..) => false,
    }
}
