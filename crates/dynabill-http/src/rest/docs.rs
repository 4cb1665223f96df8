//! The reference docs at `/docs`: Swagger UI rendering `/v1/openapi.json`, every
//! script and style of it compiled into the binary (nothing from a CDN), and no
//! call to an online validator, so the page works with no network at all.

use axum::Router;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::ServerState;

pub fn router() -> Router<ServerState> {
    let config = Config::new(["/v1/openapi.json"])
        .validator_url("none")
        .try_it_out_enabled(true)
        .persist_authorization(false)
        .display_request_duration(true);
    Router::from(SwaggerUi::new("/docs").config(config))
}
