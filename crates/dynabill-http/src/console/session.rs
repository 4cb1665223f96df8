//! The console's session: a cookie sealed with the server's secret key ring
//! (XChaCha20-Poly1305, so nobody can read or forge it), naming the credential
//! that signed in by its token's hash, when it expires, and the session's CSRF
//! token. Every request checks the credential again: a token rotated or removed
//! ends the sessions opened with it.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Redirect, Response};
use dynabill_app::App;
use dynabill_app::auth::AuthError;
use dynabill_app::model::Tenant;
use dynabill_app::secrets::SecretUse;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::{RequestId, ServerState};

pub const COOKIE: &str = "dynabill_console";
/// How long a session lasts from sign-in (not extended by use).
pub const LIFETIME: SignedDuration = SignedDuration::from_hours(8);
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// What the cookie holds.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// AppKey.
    k: String,
    /// User name.
    u: String,
    /// The access token's SHA-256, hex.
    h: String,
    /// Expiry, seconds since the epoch.
    x: i64,
    /// The CSRF token.
    c: String,
}

/// A signed-in console user.
#[derive(Clone)]
pub struct Session {
    pub user: String,
    pub csrf: String,
    pub expires: Timestamp,
}

/// A console request with its session: the app, the tenant signed in, the session.
pub struct Console {
    pub app: App,
    pub tenant: Tenant,
    pub session: Session,
    pub request_id: String,
    /// Served over HTTPS (directly or behind a proxy that says so).
    pub secure: bool,
}

impl FromRequestParts<ServerState> for Console {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ServerState,
    ) -> Result<Self, Self::Rejection> {
        let Ok(RequestId(request_id)) = RequestId::from_request_parts(parts, state).await;
        let to_sign_in = || {
            let next = if parts.method == Method::GET {
                parts
                    .uri
                    .path_and_query()
                    .map_or("/console", |p| p.as_str())
            } else {
                "/console"
            };
            let target = format!(
                "/console/sign-in?next={}",
                form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            );
            let mut response = Redirect::to(&target).into_response();
            // A cookie that no longer opens anything is removed.
            if cookie(&parts.headers).is_some() {
                response
                    .headers_mut()
                    .insert(header::SET_COOKIE, cleared(is_secure(&parts.headers)));
            }
            response
        };
        let Some(value) = cookie(&parts.headers) else {
            return Err(to_sign_in());
        };
        match open(&state.app, value).await {
            Ok(Some((tenant, session))) => {
                // The tenant's rate limit counts the console's requests too.
                if let Err(e) = crate::check_rate(state, &tenant) {
                    return Err(super::door_failure(&e));
                }
                Ok(Console {
                    app: state.app.clone(),
                    tenant,
                    session,
                    request_id,
                    secure: is_secure(&parts.headers),
                })
            }
            Ok(None) => Err(to_sign_in()),
            Err(page) => Err(page),
        }
    }
}

impl Console {
    /// Whether `given` is this session's CSRF token.
    pub fn csrf_matches(&self, given: Option<&str>) -> bool {
        given.is_some_and(|given| given.as_bytes().ct_eq(self.session.csrf.as_bytes()).into())
    }
}

/// Opens a session cookie: `None` when it is not one of ours, expired, or its
/// credential no longer stands.
async fn open(app: &App, value: &str) -> Result<Option<(Tenant, Session)>, Response> {
    let Ok(plain) = app.open_secret(SecretUse::ConsoleSession, value) else {
        return Ok(None);
    };
    let Ok(sealed) = serde_json::from_str::<Sealed>(&plain) else {
        return Ok(None);
    };
    let Ok(expires) = Timestamp::from_second(sealed.x) else {
        return Ok(None);
    };
    if expires <= app.clock().now() {
        return Ok(None);
    }
    let mut hash = [0u8; 32];
    if hex::decode_to_slice(&sealed.h, &mut hash).is_err() {
        return Ok(None);
    }
    match app.authenticate_hash(&sealed.k, &sealed.u, &hash).await {
        Ok(tenant) => Ok(Some((
            tenant,
            Session {
                user: sealed.u,
                csrf: sealed.c,
                expires,
            },
        ))),
        Err(AuthError::Rejected) => Ok(None),
        Err(AuthError::App(e)) => Err(super::app_failure(e)),
    }
}

/// Signs in with API credentials: the tenant and the cookie to set, or `None`
/// when they do not authenticate.
pub async fn sign_in(
    app: &App,
    app_key: &str,
    user_name: &str,
    access_token: &str,
    secure: bool,
) -> Result<Option<HeaderValue>, Response> {
    match app.authenticate(app_key, user_name, access_token).await {
        Ok(_) => {}
        Err(AuthError::Rejected) => return Ok(None),
        Err(AuthError::App(e)) => return Err(super::app_failure(e)),
    }
    let expires = app
        .clock()
        .now()
        .checked_add(LIFETIME)
        .map_err(|e| super::internal(&e))?;
    let mut csrf = [0u8; 32];
    getrandom::fill(&mut csrf).map_err(|e| super::internal(&e))?;
    let sealed = Sealed {
        k: app_key.to_owned(),
        u: user_name.to_owned(),
        h: hex::encode(dynabill_app::auth::token_hash(access_token)),
        x: expires.as_second(),
        c: hex::encode(csrf),
    };
    let plain = serde_json::to_string(&sealed).map_err(|e| super::internal(&e))?;
    let value = app
        .seal_secret(SecretUse::ConsoleSession, &plain)
        .map_err(super::app_failure)?;
    let attributes = format!(
        "{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&attributes)
        .map(Some)
        .map_err(|e| super::internal(&e))
}

/// The `Set-Cookie` that removes the session cookie.
pub fn cleared(secure: bool) -> HeaderValue {
    let value = format!(
        "{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""))
}

/// The session cookie's value, if the request has one.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// Whether the request came over HTTPS: the cookie is then marked `Secure`.
pub fn is_secure(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}
