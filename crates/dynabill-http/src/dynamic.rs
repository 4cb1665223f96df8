//! The dynamic door, `/api/dynamicapi`: one path, the operation picked by
//! `api_code` and `entity_code` (SPEC §1–3).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use dynabill_app::auth::AuthError;
use dynabill_app::idempotency::request_fingerprint;
use dynabill_app::model::Tenant;
use dynabill_app::store::IdempotencyClaim;
use dynabill_app::{App, AppError};
use serde_json::Value;

use crate::codes::{
    ApiCode, ApiError, MISSING_CODES_DESCRIPTION, MethodError, Operation, Route, route,
};
use crate::envelope::{self, Reply};
use crate::error::{DoorError, from_app};
use crate::fields::{API_CODE, ENTITY_CODE};
use crate::ops::{accounts, invoices, one_time, plans, recurring, taxes};
use crate::params::Params;
use crate::{RequestId, ServerState};

/// Largest accepted body (SPEC §5 and the foundation issue): 1 MiB.
pub const MAX_BODY_BYTES: usize = 1 << 20;
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Declares an integer schema that lists the codes the dynamic door takes in a
/// parameter (its OpenAPI document only: the door reads the codes itself).
macro_rules! codes_schema {
    ($(#[$doc:meta])* $name:ident, [$($code:literal),*]) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::Integer)
                    .enum_values(Some([$($code),*]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

codes_schema!(
    /// The `api_code`s of reads (GET).
    ReadCode,
    [3, 1007]
);
codes_schema!(
    /// The `api_code`s of writes (POST).
    WriteCode,
    [10, 11, 12, 13, 14, 15, 1008]
);
codes_schema!(
    /// The `entity_code`s.
    EntityCodeValue,
    [69, 71, 75, 110, 119]
);

/// The dynamic door's reads (DealHub Billing API)
///
/// The same door as `POST /api/dynamicapi`, for the operations that read
/// (`api_code` 3 and 1007): every parameter in the query string, named as
/// SPEC.md names it (case-insensitive), e.g. `?api_code=3&entity_code=69&ExtID=CRM-1042`.
#[utoipa::path(
    get,
    path = "/api/dynamicapi",
    tag = "Dynamic door",
    operation_id = "dynamic_api_read",
    params(
        ("api_code" = Option<ReadCode>, Query, description = "The operation: 3 list, 1007 lines awaiting tax", example = 3),
        ("entity_code" = Option<EntityCodeValue>, Query, description = "The entity: 69 account, 71 plan, 75 one-time item, 110 recurring item, 119 invoice", example = 69),
    ),
    responses(
        (status = 200, description = "The envelope: a page of records, or a failed method with its METHOD_ERROR", content_type = "application/json", body = Object, examples(
            ("read" = (summary = "A page of records", value = json!({"API_STATUS": 1, "METHOD_STATUS": 1, "ID": null, "ExtID": null, "METHOD_ERROR": null, "API_ERROR": null, "METHOD_ERROR_DESCRIPTION": null, "DATA": [{"ID": "1042", "ExtID": "CRM-1042", "AccountName": "Acme Corp"}], "TOTAL_COUNT": 1, "NEXT_CURSOR": null}))),
            ("failed" = (summary = "The method failed", value = json!({"API_STATUS": 1, "METHOD_STATUS": 0, "ID": null, "ExtID": null, "METHOD_ERROR": "3", "API_ERROR": null, "METHOD_ERROR_DESCRIPTION": "no account with ExtID \"CRM-1042\" exists"}))),
        )),
        (status = 400, description = "The query string cannot be read", content_type = "application/json", body = Object),
        (status = 401, description = "Authentication failed", content_type = "application/json", body = Object),
        (status = 405, description = "A write (POST) operation was asked with GET", content_type = "application/json", body = Object),
        (status = 429, description = "The tenant's rate limit is exceeded", content_type = "application/json", body = Object),
        (status = 500, description = "An unexpected failure; the request ID finds it in the server's log", content_type = "application/json", body = Object),
        (status = 503, description = "Storage is unavailable; retry later", content_type = "application/json", body = Object),
    )
)]
pub async fn read(
    state: State<ServerState>,
    request_id: RequestId,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(state, request_id, method, uri, headers, body).await
}

/// The dynamic door (DealHub Billing API)
///
/// One path for every operation of SPEC.md: `api_code` and `entity_code` (in the
/// query string or the JSON body) pick it, e.g. 3/69 lists accounts, 10/69
/// creates or updates one. Reads are `GET`, writes `POST`. Every answer is an
/// envelope: `API_STATUS` 1 and `METHOD_STATUS` 1 on success (with `DATA`,
/// `TOTAL_COUNT` and `NEXT_CURSOR` for reads, `ID` and `ExtID` for writes); a
/// failed method answers HTTP 200 with `METHOD_STATUS` 0 and a `METHOD_ERROR`;
/// a failure of the API itself answers its HTTP status with `API_STATUS` 0.
#[utoipa::path(
    post,
    path = "/api/dynamicapi",
    tag = "Dynamic door",
    operation_id = "dynamic_api",
    params(
        ("api_code" = Option<WriteCode>, Query, description = "The operation: 10 create or update, 11 delete, 12 renew, 13 upsell, 14 cancel, 15 change dates, 1008 update tax (may be sent in the body instead); reads (3, 1007) are GET", example = 10),
        ("entity_code" = Option<EntityCodeValue>, Query, description = "The entity: 69 account, 71 plan, 75 one-time item, 110 recurring item, 119 invoice (may be sent in the body instead)", example = 69),
    ),
    request_body(
        content = Object,
        description = "The operation's fields, named as SPEC.md names them (case-insensitive).",
        example = json!({"ExtID": "CRM-1042", "AccountName": "Acme Corp", "AccountType": 1, "AccountStatus": 1, "Email": "billing@acme.example", "Currency": "USD"})
    ),
    responses(
        (status = 200, description = "The envelope: a success, or a failed method with its METHOD_ERROR", content_type = "application/json", body = Object, examples(
            ("written" = (summary = "A write succeeded", value = json!({"API_STATUS": 1, "METHOD_STATUS": 1, "ID": "1042", "ExtID": "CRM-1042", "METHOD_ERROR": null, "API_ERROR": null, "METHOD_ERROR_DESCRIPTION": null}))),
            ("read" = (summary = "A page of records", value = json!({"API_STATUS": 1, "METHOD_STATUS": 1, "ID": null, "ExtID": null, "METHOD_ERROR": null, "API_ERROR": null, "METHOD_ERROR_DESCRIPTION": null, "DATA": [{"ID": "1042", "ExtID": "CRM-1042", "AccountName": "Acme Corp"}], "TOTAL_COUNT": 1, "NEXT_CURSOR": null}))),
            ("failed" = (summary = "The method failed", value = json!({"API_STATUS": 1, "METHOD_STATUS": 0, "ID": null, "ExtID": null, "METHOD_ERROR": "2", "API_ERROR": null, "METHOD_ERROR_DESCRIPTION": "StartDate must be a date written YYYY-MM-DD"}))),
        )),
        (status = 400, description = "The body or query string cannot be read", content_type = "application/json", body = Object, example = json!({"API_STATUS": 0, "METHOD_STATUS": 0, "ID": null, "ExtID": null, "METHOD_ERROR": null, "API_ERROR": "400", "METHOD_ERROR_DESCRIPTION": "the body is not valid JSON: expected value at line 1 column 1"})),
        (status = 401, description = "Authentication failed", content_type = "application/json", body = Object, example = json!({"API_STATUS": 0, "METHOD_STATUS": 0, "ID": null, "ExtID": null, "METHOD_ERROR": null, "API_ERROR": "401", "METHOD_ERROR_DESCRIPTION": "authentication failed"})),
        (status = 413, description = "The body is larger than 1 MiB", content_type = "application/json", body = Object),
        (status = 415, description = "The body is not JSON", content_type = "application/json", body = Object),
        (status = 429, description = "The tenant's rate limit is exceeded", content_type = "application/json", body = Object),
        (status = 500, description = "An unexpected failure; the request ID finds it in the server's log", content_type = "application/json", body = Object),
        (status = 503, description = "Storage is unavailable; retry later", content_type = "application/json", body = Object),
    )
)]
pub async fn handle(
    State(state): State<ServerState>,
    RequestId(request_id): RequestId,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let reply = match serve(&state, &request_id, &method, &uri, &headers, body).await {
        Ok(reply) => reply,
        Err(error) => envelope::failure(&error),
    };
    let status = reply.status;
    let mut response = (
        reply.status,
        [(header::CONTENT_TYPE, "application/json")],
        reply.body,
    )
        .into_response();
    if let Ok(value) = request_id.parse() {
        response.headers_mut().insert("x-request-id", value);
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        // RFC 9110 §15.5.6: a 405 names the methods the resource has.
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    }
    response
}

async fn serve(
    state: &ServerState,
    request_id: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Reply, DoorError> {
    if method != Method::GET && method != Method::POST {
        return Err(DoorError::Api(
            ApiError::MethodNotAllowed,
            format!("{method} is not allowed here; use GET or POST"),
        ));
    }
    let app = &state.app;
    let tenant = authenticate(app, headers, request_id).await?;
    crate::check_rate(state, &tenant)?;
    let mut params = Params::from_query(uri.query().unwrap_or(""))?;
    if method == Method::POST {
        params.add_body(read_body(headers, body).await?)?;
    }
    let (api_code, entity_code) = codes(&params)?;
    let (api, operation) = match route(api_code, entity_code) {
        Route::Unknown => {
            return Err(DoorError::Method(
                MethodError::Unsupported,
                format!("api_code {api_code} is not supported for entity_code {entity_code}"),
            ));
        }
        Route::Served(api, operation) => {
            crate::middleware::note_operation(format!("{api_code}/{entity_code}"));
            (api, operation)
        }
    };
    check_method(api, method)?;
    let Some(key) = idempotency_key(headers, method)? else {
        return run(app, &tenant, operation, &params, request_id).await;
    };
    let fingerprint =
        request_fingerprint(&[uri.path().as_bytes(), b"\n", &params.canonical()].concat());
    let claim = app
        .claim_idempotency_key(&tenant, &key, &fingerprint)
        .await
        .map_err(|e| from_app(e, request_id))?;
    match claim {
        IdempotencyClaim::Replay { status, body } => Ok(Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            body,
        }),
        IdempotencyClaim::Mismatch => Err(from_app(
            AppError::IdempotencyConflict(
                "this Idempotency-Key was already used with a different request",
            ),
            request_id,
        )),
        IdempotencyClaim::InFlight => Err(from_app(
            AppError::IdempotencyConflict(
                "a request with this Idempotency-Key is still being processed; retry later",
            ),
            request_id,
        )),
        IdempotencyClaim::Claimed => {
            let outcome = app
                .holding_idempotency_key(
                    &tenant,
                    &key,
                    run(app, &tenant, operation, &params, request_id),
                )
                .await;
            let stored = match &outcome {
                Ok(reply) => Some(reply.clone()),
                Err(error) if envelope::is_final(error) => Some(envelope::failure(error)),
                Err(_) => None,
            };
            let saved = match stored {
                Some(reply) => {
                    app.complete_idempotency_key(&tenant, &key, reply.status.as_u16(), &reply.body)
                        .await
                }
                // A failure a retry may fix: give the key back.
                None => app.release_idempotency_key(&tenant, &key).await,
            };
            if let Err(e) = saved {
                tracing::warn!(request_id, error = %e, "could not record the idempotency key's outcome");
            }
            outcome
        }
    }
}

async fn run(
    app: &App,
    tenant: &Tenant,
    operation: Operation,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    match operation {
        Operation::ListAccounts => accounts::list(app, tenant, p, request_id).await,
        Operation::UpsertAccount => accounts::upsert(app, tenant, p, request_id).await,
        Operation::DeleteAccount => accounts::delete(app, tenant, p, request_id).await,
        Operation::ListPlans => plans::list(app, tenant, p, request_id).await,
        Operation::UpsertPlan => plans::upsert(app, tenant, p, request_id).await,
        Operation::DeletePlan => plans::delete(app, tenant, p, request_id).await,
        Operation::CancelPlan => plans::cancel(app, tenant, p, request_id).await,
        Operation::RenewPlan => plans::renew(app, tenant, p, request_id).await,
        Operation::ListRecurringItems => recurring::list(app, tenant, p, request_id).await,
        Operation::UpsertRecurringItem => recurring::upsert(app, tenant, p, request_id).await,
        Operation::DeleteRecurringItem => recurring::delete(app, tenant, p, request_id).await,
        Operation::RenewRecurringItem => recurring::renew(app, tenant, p, request_id).await,
        Operation::UpsellRecurringItem => recurring::upsell(app, tenant, p, request_id).await,
        Operation::CancelRecurringItem => recurring::cancel(app, tenant, p, request_id).await,
        Operation::ChangeRecurringItemDates => {
            recurring::change_dates(app, tenant, p, request_id).await
        }
        Operation::ListOneTimeItems => one_time::list(app, tenant, p, request_id).await,
        Operation::UpsertOneTimeItem => one_time::upsert(app, tenant, p, request_id).await,
        Operation::DeleteOneTimeItem => one_time::delete(app, tenant, p, request_id).await,
        Operation::ListInvoices => invoices::list(app, tenant, p, request_id).await,
        Operation::UpdateInvoice => invoices::update(app, tenant, p, request_id).await,
        Operation::CancelInvoice => invoices::cancel(app, tenant, p, request_id).await,
        Operation::ListPendingTaxLines => taxes::pending_lines(app, tenant, p, request_id).await,
        Operation::UpdateInvoiceTax => taxes::update_tax(app, tenant, p, request_id).await,
    }
}

fn check_method(api: ApiCode, method: &Method) -> Result<(), DoorError> {
    let expected = api.method();
    if *method == expected {
        return Ok(());
    }
    Err(DoorError::Api(
        ApiError::MethodNotAllowed,
        format!("this api_code is called with {expected}, not {method}"),
    ))
}

pub(crate) async fn authenticate(
    app: &App,
    headers: &HeaderMap,
    request_id: &str,
) -> Result<Tenant, DoorError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    match app
        .authenticate(header("appkey"), header("username"), header("accesstoken"))
        .await
    {
        Ok(tenant) => {
            crate::middleware::note_tenant(tenant.id);
            Ok(tenant)
        }
        Err(AuthError::Rejected) => Err(DoorError::Api(
            ApiError::Unauthorized,
            "authentication failed".into(),
        )),
        Err(AuthError::App(e)) => Err(from_app(e, request_id)),
    }
}

fn codes(params: &Params) -> Result<(i64, i64), DoorError> {
    let missing = || DoorError::Method(MethodError::MissingCodes, MISSING_CODES_DESCRIPTION.into());
    if !params.has(API_CODE) || !params.has(ENTITY_CODE) {
        return Err(missing());
    }
    match (params.int(API_CODE)?, params.int(ENTITY_CODE)?) {
        (Some(api), Some(entity)) => Ok((api, entity)),
        _ => Err(missing()),
    }
}

fn idempotency_key(headers: &HeaderMap, method: &Method) -> Result<Option<String>, DoorError> {
    if *method != Method::POST {
        return Ok(None);
    }
    match headers.get(IDEMPOTENCY_KEY) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|s| Some(s.to_owned()))
            .map_err(|_| DoorError::invalid("Idempotency-Key", "must be visible ASCII")),
    }
}

/// Reads a POST body: JSON (or no `Content-Type`), at most 1 MiB, an object.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
) -> Result<serde_json::Map<String, Value>, DoorError> {
    read_body_or_null(headers, body, false).await
}

/// [`read_body`], where `null_is_empty` also takes a JSON `null` for no body (the
/// REST face's optional bodies: to OpenAPI, `null` is no body).
pub(crate) async fn read_body_or_null(
    headers: &HeaderMap,
    body: Body,
    null_is_empty: bool,
) -> Result<serde_json::Map<String, Value>, DoorError> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let media = content_type
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if media != "application/json" && !media.ends_with("+json") {
            return Err(DoorError::Api(
                ApiError::UnsupportedMediaType,
                format!("the body must be JSON (Content-Type application/json), not {media:?}"),
            ));
        }
    }
    let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            DoorError::Api(
                ApiError::PayloadTooLarge,
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            )
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) if null_is_empty => Ok(serde_json::Map::new()),
        Ok(_) => Err(DoorError::bad_request("the body must be a JSON object")),
        Err(e) => Err(DoorError::bad_request(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}
