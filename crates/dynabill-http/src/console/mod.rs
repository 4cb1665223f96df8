//! The operator console, `/console`: server-rendered HTML for billing and
//! support staff, served by the same binary on the same port, with its
//! stylesheet vendored and no script at all (plain forms and links).
//!
//! Sign-in takes a tenant's API credentials and gives a sealed session cookie
//! (`session`). Every screen reads through the same use cases as the API, and
//! every form that changes something is read by the dynamic door's parser
//! (fields keep their API names: `Quantity`, `EffectiveDate`, …) and carries the
//! session's CSRF token. Conventions are in docs/CONSOLE.md.

mod accounts;
mod home;
mod invoices;
mod items;
mod operations;
mod session;
mod views;

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use dynabill_app::AppError;
use maud::{Markup, html};
use serde_json::{Map, Value};

use crate::ServerState;
use crate::error::{DoorError, from_app};
use crate::params::Params;

pub(crate) use home::HomeFigures;
pub(crate) use operations::BillRunJobs;
pub(crate) use session::Console;

/// The console's routes.
pub(crate) fn router() -> Router<ServerState> {
    Router::new()
        .route("/console", get(home::show))
        .route(
            "/console/",
            get(|| async { Redirect::permanent("/console") }),
        )
        .route("/console/console.css", get(stylesheet))
        .route(
            "/console/sign-in",
            get(accounts::sign_in_form).post(accounts::sign_in),
        )
        .route("/console/sign-out", post(accounts::sign_out))
        .route("/console/accounts", get(accounts::list))
        .route("/console/accounts/{id}", get(accounts::show))
        .route("/console/invoices", get(invoices::list))
        .route("/console/invoices/{id}", get(invoices::show))
        .route("/console/invoices/{id}/pdf", get(invoices::pdf))
        .route("/console/invoices/{id}/{action}", post(invoices::act))
        .route(
            "/console/recurring-items/{id}/{action}",
            get(items::item_form).post(items::item_action),
        )
        .route(
            "/console/plans/{id}/{action}",
            get(items::plan_form).post(items::plan_action),
        )
        .route("/console/tax", get(operations::tax_queue))
        .route("/console/tax/retry", post(operations::retry_taxes))
        .route(
            "/console/bill-runs",
            get(operations::bill_run_form).post(operations::bill_run),
        )
        .route(
            "/console/bill-runs/{job}",
            get(operations::bill_run_progress),
        )
        .route("/console/settings", get(operations::settings))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        views::CSS,
    )
        .into_response()
}

/// A page as a response: HTML, never cached, never framed.
fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
            ),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// A page for the signed-in user.
fn ok(markup: Markup) -> Response {
    html_response(StatusCode::OK, markup)
}

/// A failure shown as a page: its status, and its message (never internals).
fn failure(status: StatusCode, message: &str) -> Response {
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Refused",
        StatusCode::SERVICE_UNAVAILABLE => "Unavailable",
        StatusCode::TOO_MANY_REQUESTS => "Too many requests",
        s if s.is_server_error() => "Something went wrong",
        _ => "Not possible",
    };
    let mut response = html_response(
        status,
        views::bare(
            title,
            html! {
                p.problem role="alert" { (message) }
                p { a href="/console" { "Back to the console" } }
            },
        ),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("3"));
    }
    response
}

/// A use case's failure as a page.
fn app_failure(e: AppError) -> Response {
    door_failure(&from_app(e, "console"))
}

/// A door error as a page: a record not found is a 404.
fn door_failure(e: &DoorError) -> Response {
    let status = match e {
        DoorError::Api(api, _) => api.status(),
        DoorError::Method(crate::codes::MethodError::NotFound, _) => StatusCode::NOT_FOUND,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    failure(status, &said(e))
}

/// An unexpected failure: logged, and shown without detail.
fn internal(e: &dyn std::fmt::Debug) -> Response {
    tracing::error!(error = ?e, "console: internal error");
    failure(
        StatusCode::INTERNAL_SERVER_ERROR,
        "An internal error occurred.",
    )
}

/// What a door error says to a person: the field and the rest of the sentence.
fn said(e: &DoorError) -> String {
    match e {
        DoorError::Field { field, reason, .. } => format!("{field} {reason}"),
        DoorError::Method(_, message) | DoorError::Api(_, message) => message.clone(),
    }
}

/// A posted form: its fields in order, and the CSRF check done.
struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    /// Reads a form body; refuses it (403) without the session's CSRF token.
    fn read(console: &Console, body: &Bytes) -> Result<Form, Forbidden> {
        let fields: Vec<(String, String)> = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let form = Form { fields };
        if !console.csrf_matches(form.get(session::CSRF_FIELD)) {
            return Err(Forbidden);
        }
        Ok(form)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The fields as the dynamic door's parameters: the console's own fields
    /// (CSRF token, step) left out, and so are fields left empty.
    fn params(&self) -> Params {
        let fields: Map<String, Value> = self
            .fields
            .iter()
            .filter(|(k, v)| !v.trim().is_empty() && k != session::CSRF_FIELD && k != "step")
            .map(|(k, v)| (k.clone(), Value::String(v.trim().to_owned())))
            .collect();
        Params::from_rest(fields)
    }

    /// The fields to carry into a confirmation form (everything but the token
    /// and the step).
    fn carried(&self) -> impl Iterator<Item = &(String, String)> {
        self.fields
            .iter()
            .filter(|(k, _)| k != session::CSRF_FIELD && k != "step")
    }
}

/// A form refused for its CSRF token.
struct Forbidden;

impl IntoResponse for Forbidden {
    fn into_response(self) -> Response {
        failure(
            StatusCode::FORBIDDEN,
            "This form is out of date or did not come from the console (its CSRF token is missing or wrong). Open the page again and resend it.",
        )
    }
}

/// See other: where a form's success leads.
fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}
