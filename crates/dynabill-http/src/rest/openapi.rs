//! The OpenAPI 3.1 document: generated from the handlers' annotations and the
//! shapes' derives, then given what every operation shares (the credentials,
//! `Idempotency-Key`, the problem responses) in one place, here.

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use super::problem::{PROBLEM_JSON, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dynabill",
        description = "The REST face of dynabill, an open-source billing and subscription \
            engine. Conventions (field names, money, enumerations, errors, pagination, \
            idempotency) are in docs/REST.md. The DealHub-compatible dynamic door is \
            described too, as `POST /api/dynamicapi`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(crate::dynamic::read, crate::dynamic::handle),
    components(schemas(Problem)),
    tags(
        (name = "Accounts", description = "Customers: plans belong to them, invoices are sent to them."),
        (name = "Plans", description = "Account plans: an account's subscription, with its term, renewal and billing day."),
        (name = "Recurring items", description = "Products billed every period, with their history of upsells, renewals and cancels."),
        (name = "One-time items", description = "Charges and credits billed once, by the first bill run on or after their charge date."),
        (name = "Invoices", description = "Invoices made by bill runs, their lines and taxes, and their lifecycle: post, pay, cancel."),
        (name = "Taxes", description = "The external tax workflow: lines awaiting tax, and a tax service's answer."),
        (name = "Billing", description = "Bill runs, and the preview of what the next one will invoice."),
        (name = "Events", description = "What happened to the tenant's records, in commit order: the event log webhooks deliver (docs/EVENTS.md)."),
        (name = "Webhooks", description = "Endpoints the tenant's events are POSTed to, signed per Standard Webhooks, with retries; their deliveries and attempts."),
        (name = "Insights", description = "Recurring revenue and its movements, renewals due, accounts with billing issues, upsell candidates: computed from the book, exactly, per currency (docs/INSIGHTS.md)."),
        (name = "Tenant", description = "The tenant's settings, its built-in tax rates, and the test clock."),
        (name = "Dynamic door", description = "The DealHub Billing API: one path, the operation picked by api_code and entity_code (SPEC.md)."),
    )
)]
struct Document;

/// The document the routes are added to.
pub fn document() -> utoipa::openapi::OpenApi {
    Document::openapi()
}

/// The responses every operation may give, by status: (name, description).
const PROBLEMS: [(&str, &str, &str); 10] = [
    (
        "401",
        "Unauthorized",
        "The AppKey, UserName and AccessToken headers do not authenticate a tenant's user.",
    ),
    (
        "404",
        "NotFound",
        "No such record in this tenant (a record of another tenant is not found either).",
    ),
    (
        "409",
        "Conflict",
        "The record's state forbids this, a unique key is taken, or the Idempotency-Key is in use.",
    ),
    ("413", "PayloadTooLarge", "The body is larger than 1 MiB."),
    ("415", "UnsupportedMediaType", "The body is not JSON."),
    (
        "422",
        "Unprocessable",
        "A field is missing or invalid; `field` names it.",
    ),
    (
        "429",
        "TooManyRequests",
        "The tenant's rate limit is exceeded.",
    ),
    (
        "400",
        "BadRequest",
        "The body or query string cannot be read.",
    ),
    (
        "500",
        "Internal",
        "An unexpected failure; the request ID finds it in the server's log.",
    ),
    ("503", "Unavailable", "Storage is unavailable; retry later."),
];

/// The finished document, as JSON: credentials, `Idempotency-Key` and problem
/// responses added to every operation that has them, and examples to every
/// property (kept as JSON: utoipa's types have no room for an example beside a
/// `$ref`).
pub fn finish(document: utoipa::openapi::OpenApi) -> String {
    let mut doc = serde_json::to_value(&document).expect("an OpenAPI document is plain JSON");
    add_components(&mut doc);
    add_examples(&mut doc);
    bound_dates(&mut doc);
    add_rules_between_fields(&mut doc);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                if let Some(operation) = operation.as_object_mut() {
                    complete_operation(path, method, operation);
                }
            }
        }
    }
    serde_json::to_string_pretty(&doc).expect("an OpenAPI document is plain JSON")
}

fn add_components(doc: &mut Value) {
    let components = doc
        .as_object_mut()
        .map(|d| d.entry("components").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
        .expect("the document is an object");
    let header_key = |name: &str, description: &str| json!({"type": "apiKey", "in": "header", "name": name, "description": description});
    components.insert(
        "securitySchemes".into(),
        json!({
            "AppKey": header_key("AppKey", "The tenant's application key (sent with UserName and AccessToken)."),
            "UserName": header_key("UserName", "The API user's name."),
            "AccessToken": header_key("AccessToken", "The API user's access token."),
        }),
    );
    let mut responses = Map::new();
    for (_, name, description) in PROBLEMS {
        responses.insert(
            name.into(),
            json!({
                "description": description,
                "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
            }),
        );
    }
    components.insert("responses".into(), Value::Object(responses));
    components.insert(
        "parameters".into(),
        json!({
            "IdempotencyKey": {
                "name": "Idempotency-Key",
                "in": "header",
                "required": false,
                "description": "Makes a write safe to retry: a retry with the same key and the same request gets the first answer, and the write happens once. Keys are kept 24 hours, shared with the dynamic door.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
                "example": "0b9e8f9c-5d7a-4c1e-9b1e-3f6f1d2a7c11"
            }
        }),
    );
    doc["security"] = json!([{"AppKey": [], "UserName": [], "AccessToken": []}]);
}

/// Gives every property without an example of its own the example of what it
/// holds: a referenced schema's (a code's, or one built from its properties'),
/// a list of one such item.
fn add_examples(doc: &mut Value) {
    let schemas = doc["components"]["schemas"].clone();
    let Some(targets) = doc["components"]["schemas"].as_object_mut() else {
        return;
    };
    for schema in targets.values_mut() {
        let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for property in properties.values_mut() {
            if property.get("example").is_none()
                && let Some(example) = example_of(property, &schemas, 0)
            {
                property["example"] = example;
            }
        }
    }
}

/// The days the parsers take: 1900-01-01 to 2999-12-31 (the schema's `format:
/// date` says the day exists).
const DAY: &str = r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";

/// Gives every `format: date` string the range of days the parsers take.
fn bound_dates(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            if fields.get("format").and_then(Value::as_str) == Some("date")
                && !fields.contains_key("pattern")
            {
                fields.insert("pattern".into(), Value::from(DAY));
            }
            fields.values_mut().for_each(bound_dates);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_dates),
        _ => {}
    }
}

/// The rules between two fields of a body that the parsers enforce, said in the
/// schema: a renewal names a new end or a number of months, not both; a change
/// of dates names at least one; an upsell a new quantity or price (or both); a
/// cancel at the end of the billed period (`cancel_at` 2) names no date.
fn add_rules_between_fields(doc: &mut Value) {
    let either_end = json!({"required": ["end_date", "renewal_term_months"]});
    let rules = [
        ("PlanRenewal", "not", either_end.clone()),
        ("ItemRenewal", "not", either_end),
        ("ItemDates", "minProperties", json!(1)),
        (
            "ItemUpsell",
            "anyOf",
            json!([{"required": ["quantity"]}, {"required": ["unit_price"]}]),
        ),
        (
            "ItemCancel",
            "not",
            json!({"required": ["cancel_at", "cancel_date"], "properties": {"cancel_at": {"const": 2}}}),
        ),
    ];
    for (schema, keyword, rule) in rules {
        if let Some(fields) = doc["components"]["schemas"][schema].as_object_mut() {
            fields.insert(keyword.into(), rule);
        }
    }
}

/// How deep examples are built from nested schemas.
const EXAMPLE_DEPTH: usize = 4;

fn example_of(property: &Value, schemas: &Value, depth: usize) -> Option<Value> {
    if let Some(example) = property.get("example") {
        return Some(example.clone());
    }
    if let Some(name) = property["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        return schema_example(name, schemas, depth);
    }
    if let Some(options) = property["oneOf"].as_array() {
        return options
            .iter()
            .filter(|o| o["type"] != "null")
            .find_map(|o| example_of(o, schemas, depth));
    }
    let is_array = property["type"] == "array"
        || property["type"]
            .as_array()
            .is_some_and(|types| types.iter().any(|t| t == "array"));
    if is_array {
        return example_of(&property["items"], schemas, depth).map(|item| json!([item]));
    }
    object_example(property, schemas, depth)
}

fn schema_example(name: &str, schemas: &Value, depth: usize) -> Option<Value> {
    object_example(&schemas[name], schemas, depth)
}

fn object_example(schema: &Value, schemas: &Value, depth: usize) -> Option<Value> {
    if let Some(example) = schema.get("example") {
        return Some(example.clone());
    }
    if let Some(example) = schema["examples"].get(0) {
        return Some(example.clone());
    }
    if depth >= EXAMPLE_DEPTH {
        return None;
    }
    // A flattened shape (`#[serde(flatten)]`) is `allOf` its parts: the example
    // is theirs merged.
    if let Some(parts) = schema["allOf"].as_array() {
        let mut merged = Map::new();
        for part in parts {
            if let Some(Value::Object(fields)) = example_of(part, schemas, depth) {
                merged.extend(fields);
            }
        }
        return Some(Value::Object(merged));
    }
    let properties = schema["properties"].as_object()?;
    let example: Map<String, Value> = properties
        .iter()
        .filter_map(|(field, p)| Some((field.clone(), example_of(p, schemas, depth + 1)?)))
        .collect();
    Some(Value::Object(example))
}

fn complete_operation(path: &str, method: &str, operation: &mut Map<String, Value>) {
    let writes = matches!(method, "post" | "patch" | "delete" | "put");
    let has_body = operation.contains_key("requestBody");
    let has_parameters = operation
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    if writes && path.starts_with("/v1/") {
        let parameters = operation
            .entry("parameters")
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("parameters are a list");
        parameters.push(json!({"$ref": "#/components/parameters/IdempotencyKey"}));
    }
    let responses = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses are an object");
    // The dynamic door answers its own envelope, described on the operation.
    if !path.starts_with("/v1/") {
        return;
    }
    for (status, name, _) in PROBLEMS {
        let applies = match status {
            // 404 everywhere: a record in the path, or a parent a filter names,
            // may not exist in this tenant.
            "401" | "429" | "500" | "503" | "400" | "404" => true,
            "409" => writes,
            "413" | "415" => has_body,
            "422" => has_body || has_parameters || writes,
            _ => false,
        };
        if applies && !responses.contains_key(status) {
            responses.insert(
                status.into(),
                json!({"$ref": format!("#/components/responses/{name}")}),
            );
        }
    }
}

/// `GET /v1/openapi.json`.
pub async fn serve() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi_json(),
    )
}
