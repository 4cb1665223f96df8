//! How transport failures and HTTP answers become `TaxEngineError`s, with the license key kept out.

use std::time::Duration;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use dynabill_app::tax_engine::{AvaTaxSettings, TaxEngineError};
use reqwest::StatusCode;

use crate::wire::ErrorEnvelope;

/// How much of a body that is not AvaTax's error envelope goes into a message.
const BODY_EXCERPT_CHARS: usize = 200;

/// The error for a request that got no complete answer: always worth retrying.
pub(crate) fn transport_error(
    operation: &str,
    error: &reqwest::Error,
    timeout: Duration,
) -> TaxEngineError {
    let reason = if error.is_timeout() {
        format!("no answer within {timeout:?}")
    } else if error.is_connect() {
        format!("could not connect: {}", root_cause(error))
    } else {
        root_cause(error)
    };
    TaxEngineError::Unavailable(format!("{operation}: {reason}"))
}

/// The innermost cause, which names what actually went wrong ("connection
/// refused"), where reqwest's own message only says a request failed.
fn root_cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// The error for a non-success HTTP answer.
pub(crate) fn status_error(operation: &str, status: StatusCode, body: &[u8]) -> TaxEngineError {
    let message = format!("{operation}: HTTP {status}: {}", body_summary(body));
    // 408 and 429 say "not now", not "not this": the same request may succeed later.
    let worth_retrying = status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT;
    if worth_retrying {
        return TaxEngineError::Unavailable(message);
    }
    // Other 4xx, and 3xx (redirects are not followed: an `http://` base URL that
    // AvaTax redirects to `https://` is a setting to fix).
    TaxEngineError::Refused(message)
}

fn body_summary(body: &[u8]) -> String {
    if let Ok(envelope) = serde_json::from_slice::<ErrorEnvelope>(body) {
        return envelope.summary();
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "empty body".to_owned();
    }
    let excerpt: String = text.chars().take(BODY_EXCERPT_CHARS).collect();
    if excerpt.len() < text.len() {
        return format!("{excerpt}...");
    }
    excerpt
}

/// `error` with every trace of the tenant's credentials replaced by `***`.
///
/// Messages quote what servers and libraries say, and a misbehaving proxy or
/// server may echo the request's credentials: scrubbing here, where every error
/// leaves this crate, keeps the key out of logs whatever the source said.
pub(crate) fn redacted(error: TaxEngineError, settings: &AvaTaxSettings) -> TaxEngineError {
    match error {
        TaxEngineError::Unavailable(message) => {
            TaxEngineError::Unavailable(redact(message, settings))
        }
        TaxEngineError::Refused(message) => TaxEngineError::Refused(redact(message, settings)),
    }
}

fn redact(mut message: String, settings: &AvaTaxSettings) -> String {
    let key = settings.license_key.expose();
    if key.is_empty() {
        return message;
    }
    let basic_credentials = basic_credentials(&settings.account_id, key);
    for secret in [basic_credentials.as_str(), key] {
        if message.contains(secret) {
            message = message.replace(secret, "***");
        }
    }
    message
}

/// The base64 text of `account:key`, as an `Authorization: Basic` header carries it.
fn basic_credentials(account_id: &str, key: &str) -> String {
    BASE64_STANDARD.encode(format!("{account_id}:{key}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynabill_app::tax_engine::Secret;

    fn settings(key: &str) -> AvaTaxSettings {
        AvaTaxSettings {
            base_url: "http://127.0.0.1:1".to_owned(),
            account_id: "1100012345".to_owned(),
            license_key: Secret::new(key),
            company_code: "DEFAULT".to_owned(),
        }
    }

    #[test]
    fn redaction_removes_the_key_and_the_encoded_credentials() {
        let settings = settings("ABCDEF0123456789");
        let encoded = basic_credentials("1100012345", "ABCDEF0123456789");
        let message = format!("echo: key ABCDEF0123456789, header Basic {encoded}");
        let TaxEngineError::Refused(message) =
            redacted(TaxEngineError::Refused(message), &settings)
        else {
            panic!("redaction changed the kind of error");
        };
        assert_eq!(message, "echo: key ***, header Basic ***");
    }
}
