//! One REST call: who makes it (authenticated, within the rate limit), what it
//! sends (checked against its schema, then read by the dynamic door's parser),
//! and how its answer or its problem is written, with `Idempotency-Key` honoured
//! on every write.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dynabill_app::idempotency::request_fingerprint;
use dynabill_app::model::Tenant;
use dynabill_app::store::IdempotencyClaim;
use dynabill_app::{App, AppError};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::openapi::path::ParameterIn;
use utoipa::{IntoParams, ToSchema};

use super::problem;
use crate::codes::MethodError;
use crate::dynamic::{authenticate, read_body_or_null};
use crate::error::{DoorError, from_app};
use crate::fields::PAGE_SIZE;
use crate::params::{Params, query_pairs};
use crate::{RequestId, ServerState, check_rate};

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// An authenticated REST call.
pub struct Call {
    pub app: App,
    pub tenant: Tenant,
    pub request_id: String,
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
}

impl FromRequestParts<ServerState> for Call {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ServerState,
    ) -> Result<Self, Self::Rejection> {
        let Ok(RequestId(request_id)) = RequestId::from_request_parts(parts, state).await;
        let reject = |e: DoorError| problem::response(&e, &request_id);
        let tenant = authenticate(&state.app, &parts.headers, &request_id)
            .await
            .map_err(reject)?;
        check_rate(state, &tenant).map_err(reject)?;
        Ok(Call {
            app: state.app.clone(),
            tenant,
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or("").to_owned(),
            headers: parts.headers.clone(),
            request_id,
        })
    }
}

/// A successful answer.
#[derive(Clone, Debug)]
pub struct Reply {
    status: StatusCode,
    /// Where a created record lives (`Location`).
    location: Option<String>,
    body: Vec<u8>,
}

impl Reply {
    pub fn ok<T: Serialize>(value: &T) -> Reply {
        Reply::with_status(StatusCode::OK, value)
    }

    pub fn created<T: Serialize>(location: String, value: &T) -> Reply {
        Reply {
            location: Some(location),
            ..Reply::with_status(StatusCode::CREATED, value)
        }
    }

    /// Taken, done later (a delivery queued).
    pub fn accepted<T: Serialize>(value: &T) -> Reply {
        Reply::with_status(StatusCode::ACCEPTED, value)
    }

    pub fn no_content() -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            location: None,
            body: Vec::new(),
        }
    }

    fn with_status<T: Serialize>(status: StatusCode, value: &T) -> Reply {
        Reply {
            status,
            location: None,
            // The REST shapes are plain structs of strings and numbers.
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    fn into_response(self, request_id: &str) -> Response {
        let mut response = if self.status == StatusCode::NO_CONTENT {
            self.status.into_response()
        } else {
            (
                self.status,
                [(header::CONTENT_TYPE, "application/json")],
                self.body,
            )
                .into_response()
        };
        let headers = response.headers_mut();
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, location);
        }
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert("x-request-id", value);
        }
        response
    }

    /// How a reply is kept with its `Idempotency-Key`: the `Location` on the first
    /// line (empty when none), then the body.
    fn stored(&self) -> Vec<u8> {
        let mut bytes = self.location.clone().unwrap_or_default().into_bytes();
        bytes.push(b'\n');
        bytes.extend_from_slice(&self.body);
        bytes
    }

    fn from_stored(status: StatusCode, stored: &[u8]) -> Reply {
        let (location, body) = match stored.iter().position(|&b| b == b'\n') {
            Some(end) => (&stored[..end], &stored[end + 1..]),
            None => (&[][..], stored),
        };
        Reply {
            status,
            location: (!location.is_empty()).then(|| String::from_utf8_lossy(location).into()),
            body: body.to_vec(),
        }
    }
}

/// The outcome of a handler.
pub type Outcome = Result<Reply, DoorError>;

impl Call {
    /// A use case's error, named for this request.
    pub fn fail(&self, e: AppError) -> DoorError {
        from_app(e, &self.request_id)
    }

    /// The query string, checked against `Q` (the operation's documented query
    /// parameters, and `limit`, `cursor` and `include` of [`Paging`] when the
    /// operation is a list): an unknown parameter, or a value of the wrong type,
    /// is refused. `limit` is the dynamic door's `PageSize`.
    pub fn query<Q: DeserializeOwned + IntoParams + 'static>(
        &self,
        paged: bool,
    ) -> Result<Params, DoorError> {
        let pairs = query_pairs(&self.query)?;
        let shape = QueryShape::of::<Q>(paged);
        if let Some((name, _)) = pairs.iter().find(|(name, _)| !shape.known(name)) {
            return Err(DoorError::Field {
                code: MethodError::Invalid,
                field: name.clone(),
                reason: format!(
                    "is not a query parameter of this operation (expected one of {})",
                    shape.names.join(", ")
                ),
                as_sent: true,
            });
        }
        let parse =
            || serde_urlencoded::Deserializer::new(form_urlencoded::parse(self.query.as_bytes()));
        serde_path_to_error::deserialize::<_, Q>(parse()).map_err(schema_error)?;
        if paged {
            serde_path_to_error::deserialize::<_, Paging>(parse()).map_err(schema_error)?;
        }
        for (name, value) in &pairs {
            check_bounds(name, value, &shape.schemas)?;
        }
        let mut fields = Map::new();
        for (name, value) in pairs {
            let name = if name == "limit" {
                PAGE_SIZE.into()
            } else {
                name
            };
            fields.insert(name, Value::String(value));
        }
        Ok(Params::from_rest(fields))
    }

    /// Answers a read.
    pub async fn read(self, run: impl AsyncFnOnce(&Call) -> Outcome) -> Response {
        let outcome = run(&self).await;
        self.respond(outcome)
    }

    /// Answers a write whose body is checked against `B`: run once per
    /// `Idempotency-Key` (shared with the dynamic door's store), and a retry with
    /// the same key and request gets the first answer again.
    pub async fn write<B: DeserializeOwned>(
        self,
        body: Body,
        run: impl AsyncFnOnce(&Call, Params) -> Outcome,
    ) -> Response {
        let outcome = self.write_outcome::<B>(body, run).await;
        self.respond(outcome)
    }

    async fn write_outcome<B: DeserializeOwned>(
        &self,
        body: Body,
        run: impl AsyncFnOnce(&Call, Params) -> Outcome,
    ) -> Outcome {
        let mut fields = read_body_or_null(&self.headers, body, true).await?;
        fields.values_mut().for_each(whole_numbers_as_integers);
        serde_path_to_error::deserialize::<_, B>(Value::Object(fields.clone()))
            .map_err(schema_error)?;
        let params = Params::from_rest(fields);
        let Some(key) = self.idempotency_key()? else {
            return run(self, params).await;
        };
        let request = [
            self.method.as_str().as_bytes(),
            b" ",
            self.path.as_bytes(),
            b"?",
            self.query.as_bytes(),
            b"\n",
            &params.canonical(),
        ]
        .concat();
        let claim = self
            .app
            .claim_idempotency_key(&self.tenant, &key, &request_fingerprint(&request))
            .await
            .map_err(|e| self.fail(e))?;
        match claim {
            IdempotencyClaim::Replay { status, body } => Ok(Reply::from_stored(
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                &body,
            )),
            IdempotencyClaim::Mismatch => Err(self.fail(AppError::IdempotencyConflict(
                "this Idempotency-Key was already used with a different request",
            ))),
            IdempotencyClaim::InFlight => Err(self.fail(AppError::IdempotencyConflict(
                "a request with this Idempotency-Key is still being processed; retry later",
            ))),
            IdempotencyClaim::Claimed => {
                let outcome = self
                    .app
                    .holding_idempotency_key(&self.tenant, &key, run(self, params))
                    .await;
                let kept = match &outcome {
                    Ok(reply) => Some((reply.status, reply.stored())),
                    Err(error) if crate::envelope::is_final(error) => {
                        let (status, body) = problem::Problem::encode(error, &self.request_id);
                        Some((status, [&b"\n"[..], &body].concat()))
                    }
                    Err(_) => None,
                };
                let saved = match kept {
                    Some((status, bytes)) => {
                        self.app
                            .complete_idempotency_key(&self.tenant, &key, status.as_u16(), &bytes)
                            .await
                    }
                    // A failure a retry may fix: give the key back.
                    None => self.app.release_idempotency_key(&self.tenant, &key).await,
                };
                if let Err(e) = saved {
                    tracing::warn!(request_id = %self.request_id, error = %e, "could not record the idempotency key's outcome");
                }
                outcome
            }
        }
    }

    fn idempotency_key(&self) -> Result<Option<String>, DoorError> {
        self.headers
            .get(IDEMPOTENCY_KEY)
            .map(|value| {
                value
                    .to_str()
                    .map(str::to_owned)
                    .map_err(|_| DoorError::invalid("Idempotency-Key", "must be visible ASCII"))
            })
            .transpose()
    }

    fn respond(&self, outcome: Outcome) -> Response {
        match outcome {
            Ok(reply) if reply.status.is_success() => reply.into_response(&self.request_id),
            // A replayed failure: the problem as first answered.
            Ok(reply) => {
                let mut response = (
                    reply.status,
                    [(header::CONTENT_TYPE, problem::PROBLEM_JSON)],
                    reply.body,
                )
                    .into_response();
                if let Ok(value) = HeaderValue::from_str(&self.request_id) {
                    response.headers_mut().insert("x-request-id", value);
                }
                response
            }
            Err(error) => problem::response(&error, &self.request_id),
        }
    }
}

/// No body, or an empty object (a delete's, an action's without options).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// A get's options (of the records that have nothing else to include).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "a schema: it checks the query; the door's parser reads the values"
)]
pub struct GetOptions {
    /// Find the record even if it was deleted.
    include_deleted: Option<bool>,
}

/// The paging parameters of every list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "a schema: it checks the query; the door's parser reads the values"
)]
pub struct Paging {
    /// How many records a page holds, 1 to 1000.
    #[param(minimum = 1, maximum = 1000, example = 100)]
    limit: Option<u32>,
    /// Where the page starts: the `next_cursor` of the page before, unchanged,
    /// with the same filters.
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_-]+$")]
    #[serde(default, deserialize_with = "cursor")]
    cursor: Option<String>,
    /// Extras, comma-separated: `total_count` adds the number of records of the
    /// whole list (lists of invoices also take `lines`, of recurring items `history`).
    #[param(
        pattern = "^(total_count|lines|history)(,(total_count|lines|history))*$",
        example = "total_count"
    )]
    #[serde(default, deserialize_with = "extras")]
    include: Option<String>,
}

/// `cursor` as its pattern says: URL-safe base64, as `next_cursor` is written
/// (whether it is one this server issued for this list, the door's parser says).
fn cursor<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let cursor = Option::<String>::deserialize(d)?;
    if let Some(cursor) = &cursor
        && (cursor.is_empty()
            || !cursor
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-'))
    {
        return Err(serde::de::Error::custom(
            "must be a next_cursor, unchanged (URL-safe base64)",
        ));
    }
    Ok(cursor)
}

/// The extras a list may `include`.
const EXTRAS: [&str; 3] = ["total_count", "lines", "history"];

/// `include` as its pattern says: names of [`EXTRAS`], comma-separated, none empty.
pub fn extras<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let list = Option::<String>::deserialize(d)?;
    if let Some(list) = &list
        && !list.split(',').all(|item| EXTRAS.contains(&item))
    {
        return Err(serde::de::Error::custom(format!(
            "must name {}, comma-separated",
            EXTRAS.join(", ")
        )));
    }
    Ok(list)
}

/// A page of a list.
#[derive(Serialize, ToSchema)]
pub struct List<T> {
    /// The records of this page, in ID order.
    pub data: Vec<T>,
    /// Whether another page follows.
    #[schema(example = false)]
    pub has_more: bool,
    /// The cursor of the next page; `null` on the last.
    #[schema(example = "azIuMTA0Mi4zOC4xYzNmYjc1ZjBjMmU4NmE0")]
    pub next_cursor: Option<String>,
    /// The number of records of the whole list, when asked with `include=total_count`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 38)]
    pub total_count: Option<i64>,
}

impl<T> List<T> {
    /// A page of the list `scope`, with its total when `p` asks for it.
    pub fn new<R>(
        page: &dynabill_app::model::Page<R>,
        scope: &crate::cursor::ListScope,
        p: &Params,
        shape: impl Fn(&R) -> T,
    ) -> List<T> {
        let shaped: Result<_, std::convert::Infallible> =
            List::try_new(page, scope, p, |r| Ok(shape(r)));
        match shaped {
            Ok(list) => list,
        }
    }

    /// Like [`List::new`], with a shaping that may fail.
    pub fn try_new<R, E>(
        page: &dynabill_app::model::Page<R>,
        scope: &crate::cursor::ListScope,
        p: &Params,
        shape: impl Fn(&R) -> Result<T, E>,
    ) -> Result<List<T>, E> {
        let next_cursor = scope.next_cursor(page);
        Ok(List {
            data: page.items.iter().map(shape).collect::<Result<_, E>>()?,
            has_more: next_cursor.is_some(),
            next_cursor,
            total_count: includes(p, "total_count").then_some(page.total),
        })
    }
}

/// Whether `include` names `what`.
pub fn includes(p: &Params, what: &str) -> bool {
    p.get("include")
        .and_then(Value::as_str)
        .is_some_and(|list| list.split(',').any(|item| item.trim() == what))
}

/// The query parameters an operation documents: their names and schemas, read
/// from its `IntoParams` type once per type (and paging), not per request.
struct QueryShape {
    names: Vec<String>,
    schemas: Vec<(String, Value)>,
}

impl QueryShape {
    fn of<Q: IntoParams + 'static>(paged: bool) -> Arc<QueryShape> {
        type Shapes = RwLock<HashMap<(TypeId, bool), Arc<QueryShape>>>;
        static SHAPES: LazyLock<Shapes> = LazyLock::new(Shapes::default);
        let key = (TypeId::of::<Q>(), paged);
        if let Some(shape) = SHAPES.read().ok().and_then(|s| s.get(&key).cloned()) {
            return shape;
        }
        let mut parameters = Q::into_params(|| Some(ParameterIn::Query));
        if paged {
            parameters.extend(Paging::into_params(|| Some(ParameterIn::Query)));
        }
        let schemas = parameters
            .iter()
            .filter_map(|p| {
                let described = serde_json::to_value(p).ok()?;
                Some((p.name.clone(), described["schema"].clone()))
            })
            .collect();
        let shape = Arc::new(QueryShape {
            names: parameters.into_iter().map(|p| p.name).collect(),
            schemas,
        });
        if let Ok(mut shapes) = SHAPES.write() {
            shapes.insert(key, Arc::clone(&shape));
        }
        shape
    }

    fn known(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

/// A whole-number query parameter within its schema's `minimum` and `maximum`
/// (an ID filter's is 1: the dynamic door would take 0 and find nothing).
fn check_bounds(name: &str, value: &str, schemas: &[(String, Value)]) -> Result<(), DoorError> {
    let Some((_, schema)) = schemas.iter().find(|(n, _)| n == name) else {
        return Ok(());
    };
    let Ok(number) = value.trim().parse::<i64>() else {
        return Ok(());
    };
    let below = schema["minimum"].as_i64().is_some_and(|min| number < min);
    let above = schema["maximum"].as_i64().is_some_and(|max| number > max);
    if below || above {
        let range = match (schema["minimum"].as_i64(), schema["maximum"].as_i64()) {
            (Some(min), Some(max)) => format!("between {min} and {max}"),
            (Some(min), None) => format!("at least {min}"),
            (None, Some(max)) => format!("at most {max}"),
            (None, None) => String::new(),
        };
        return Err(DoorError::Field {
            code: MethodError::Invalid,
            field: name.to_owned(),
            reason: format!("must be {range}, got {number}"),
            as_sent: true,
        });
    }
    Ok(())
}

/// A record's ID from the path: a positive whole number, else no such record.
pub fn path_id<I: From<i64>>(text: &str, noun: &str) -> Result<I, DoorError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .map(I::from)
        .ok_or_else(|| {
            DoorError::Method(
                MethodError::NotFound,
                format!("no {noun} with id {text:?} exists"),
            )
        })
}

/// Writes a number with no fractional part (`2.0`, `2e0`, `20E-1`) as the
/// integer it is: JSON has one kind of number, and to JSON Schema `2.0` is an
/// `integer` like `2`, so a schema that says `integer` takes it. No amount is
/// touched: the REST face sends money as strings.
fn whole_numbers_as_integers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            let text = n.to_string();
            let whole = Decimal::from_str_exact(&text)
                .or_else(|_| Decimal::from_scientific(&text))
                .ok()
                .filter(|d| d.fract().is_zero())
                .and_then(|d| d.to_i64());
            if let Some(whole) = whole {
                *value = Value::from(whole);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_numbers_as_integers),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

/// A request that does not fit its schema: the field and what was expected.
fn schema_error(e: serde_path_to_error::Error<impl std::fmt::Display>) -> DoorError {
    let path = e.path().to_string();
    let message = e.inner().to_string();
    // serde names a missing or unknown field in its message, not in the path.
    let quoted = message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("missing field") || message.starts_with("unknown field"))
        .map(str::to_owned);
    let field = quoted.or_else(|| (path != ".").then_some(path));
    match field {
        Some(field) if message.starts_with("missing field") => DoorError::Field {
            code: MethodError::Missing,
            field,
            reason: "is required".into(),
            as_sent: true,
        },
        Some(field) => DoorError::Field {
            code: MethodError::Invalid,
            reason: reason_of(&message),
            field,
            as_sent: true,
        },
        None => DoorError::invalid("body", message),
    }
}

/// serde's message as the rest of a sentence about the field.
fn reason_of(message: &str) -> String {
    if message.starts_with("unknown field") {
        let expected = message
            .split_once(", expected")
            .map_or("", |(_, rest)| rest);
        return format!("is not a field of this request (expected{expected})");
    }
    format!("is invalid: {message}")
}
