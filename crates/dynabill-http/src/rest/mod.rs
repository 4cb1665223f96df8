//! The REST face, `/v1`: resource URLs over the same use cases as the dynamic
//! door. Its conventions are in `docs/REST.md`; in short: `snake_case` fields,
//! money as decimal strings, enumerations as the dynamic door's integer codes,
//! errors as `application/problem+json`, cursor pagination.
//!
//! One parser serves both doors: a REST request is first checked against the
//! schema of its body or query (a `Deserialize` struct that also generates the
//! OpenAPI document, so the two cannot drift), then read by the dynamic door's
//! parser for its entity through [`Params::from_rest`] (`ext_id` is `ExtID`).

mod accounts;
mod call;
mod docs;
mod events;
mod insights;
mod invoices;
mod items;
mod openapi;
mod plans;
mod problem;
pub(crate) mod shapes;
mod tenant;
mod webhooks;

use std::sync::LazyLock;

use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::ServerState;

pub(crate) use call::{Call, Reply};
pub(crate) use problem::{not_found, response as problem_response};

/// An event as a webhook sends it: its REST shape (`GET /v1/events/{id}`), as
/// JSON, its records as of `today`.
pub fn event_payload(
    event: &dynabill_app::model::Event,
    today: jiff::civil::Date,
) -> Result<String, String> {
    webhooks::payload(event, today, "webhook").map_err(|e| format!("{e:?}"))
}

/// Insights in their REST shapes (`/v1/insights/...`), as JSON, for the CLI to
/// print the same figures.
pub mod insights_json {
    use dynabill_app::insights::{
        AccountIssues, MovementsReport, MrrReport, Ranked, Renewal, UpsellCandidate,
    };
    use jiff::civil::Date;
    use serde_json::Value;

    use super::insights as shapes;

    fn json(value: impl serde::Serialize) -> Value {
        serde_json::to_value(value).unwrap_or(Value::Null)
    }

    pub fn mrr(report: &MrrReport) -> Value {
        json(shapes::MrrReport::from(report))
    }

    pub fn movements(report: &MovementsReport, detail: bool) -> Value {
        json(shapes::MovementsReport::new(report, detail))
    }

    pub fn renewals(today: Date, ranked: &Ranked<Renewal>) -> Value {
        json(shapes::Ranked::<shapes::Renewal>::new(today, ranked))
    }

    pub fn billing_issues(today: Date, ranked: &Ranked<AccountIssues>) -> Value {
        json(shapes::Ranked::<shapes::AccountIssues>::new(today, ranked))
    }

    pub fn upsell_candidates(today: Date, ranked: &Ranked<UpsellCandidate>) -> Value {
        json(shapes::Ranked::<shapes::UpsellCandidate>::new(
            today, ranked,
        ))
    }
}

/// The `/v1` routes and the OpenAPI document that describes them, built from
/// the same list so that a route cannot exist undocumented.
fn routes() -> (Router<ServerState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(openapi::document())
        .routes(routes!(accounts::list, accounts::create))
        .routes(routes!(accounts::get, accounts::update, accounts::delete))
        .routes(routes!(accounts::get_by_ext_id))
        .routes(routes!(plans::list))
        .routes(routes!(plans::list_of_account, plans::create))
        .routes(routes!(plans::get, plans::update, plans::delete))
        .routes(routes!(plans::get_by_ext_id))
        .routes(routes!(plans::renew))
        .routes(routes!(plans::cancel))
        .routes(routes!(items::list_recurring))
        .routes(routes!(
            items::list_recurring_of_plan,
            items::create_recurring
        ))
        .routes(routes!(
            items::get_recurring,
            items::update_recurring,
            items::delete_recurring
        ))
        .routes(routes!(items::get_recurring_by_ext_id))
        .routes(routes!(items::renew_recurring))
        .routes(routes!(items::upsell_recurring))
        .routes(routes!(items::cancel_recurring))
        .routes(routes!(items::change_recurring_dates))
        .routes(routes!(items::list_one_time))
        .routes(routes!(
            items::list_one_time_of_plan,
            items::create_one_time
        ))
        .routes(routes!(
            items::get_one_time,
            items::update_one_time,
            items::delete_one_time
        ))
        .routes(routes!(items::get_one_time_by_ext_id))
        .routes(routes!(invoices::list))
        .routes(routes!(invoices::get, invoices::update))
        .routes(routes!(invoices::pdf))
        .routes(routes!(invoices::post))
        .routes(routes!(invoices::pay))
        .routes(routes!(invoices::cancel))
        .routes(routes!(invoices::taxes))
        .routes(routes!(invoices::pending_lines))
        .routes(routes!(invoices::upcoming))
        .routes(routes!(invoices::bill_run))
        .routes(routes!(events::list))
        .routes(routes!(events::get))
        .routes(routes!(webhooks::list_endpoints, webhooks::create_endpoint))
        .routes(routes!(
            webhooks::get_endpoint,
            webhooks::update_endpoint,
            webhooks::remove_endpoint
        ))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::test_endpoint))
        .routes(routes!(webhooks::recover))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::get_delivery))
        .routes(routes!(webhooks::retry_delivery))
        .routes(routes!(insights::mrr))
        .routes(routes!(insights::movements))
        .routes(routes!(insights::renewals))
        .routes(routes!(insights::billing_issues))
        .routes(routes!(insights::upsell_candidates))
        .routes(routes!(tenant::get_settings, tenant::update_settings))
        .routes(routes!(tenant::list_tax_rates, tenant::add_tax_rate))
        .routes(routes!(tenant::remove_tax_rate))
        .routes(routes!(tenant::get_test_clock, tenant::move_test_clock))
        .split_for_parts()
}

/// The OpenAPI document of the REST face, as served at `/v1/openapi.json`.
pub fn openapi_json() -> &'static str {
    static JSON: LazyLock<String> = LazyLock::new(|| {
        let (_, document) = routes();
        openapi::finish(document)
    });
    &JSON
}

/// The REST face's routes, the OpenAPI document and the reference docs.
pub(crate) fn router() -> Router<ServerState> {
    let (router, _) = routes();
    router
        .route("/v1/openapi.json", axum::routing::get(openapi::serve))
        .merge(docs::router())
}
