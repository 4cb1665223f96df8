//! `AvaTaxClient`: the `TaxEngine` port spoken to AvaTax's REST v2 API over HTTP(S).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dynabill_app::tax_engine::{AvaTaxSettings, LineTaxes, TaxDocument, TaxEngine, TaxEngineError};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Url;
use reqwest::header::{ACCEPT, HeaderValue};
use serde::Serialize;

use crate::error::{redacted, status_error, transport_error};
use crate::wire::{CreateTransaction, Transaction};

/// Everything but RFC 3986's unreserved characters is escaped in a path segment,
/// so a code holding `/`, `?`, `#` or `%` still names one transaction.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Avalara asks integrations to name themselves: `app; version; adapter; version`.
const CLIENT_ID: &str = concat!(
    "dynabill; ",
    env!("CARGO_PKG_VERSION"),
    "; dynabill-avatax; ",
    env!("CARGO_PKG_VERSION"),
    ";"
);

/// The client could not be built (its TLS setup failed).
#[derive(Debug, thiserror::Error)]
#[error("could not build the AvaTax client: {0}")]
pub struct ClientBuildError(String);

/// An AvaTax REST v2 client. Settings (base URL, account, key, company) come
/// with each call, so one client serves every tenant.
#[derive(Clone, Debug)]
pub struct AvaTaxClient {
    http: reqwest::Client,
    timeout: Duration,
}

impl AvaTaxClient {
    /// How long a request may take, from connecting to the last byte of the answer,
    /// unless told otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The longest wait for a connection; shorter request timeouts cap it.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

    /// A client whose requests give up after `timeout` (connecting included).
    pub fn new(timeout: Duration) -> Result<AvaTaxClient, ClientBuildError> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .timeout(timeout)
            .connect_timeout(timeout.min(Self::CONNECT_TIMEOUT))
            // A POST API has no business redirecting, and a redirect to another
            // host would be a place the credentials should not follow.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| ClientBuildError(error.to_string()))?;
        Ok(AvaTaxClient { http, timeout })
    }

    /// A client with [`AvaTaxClient::DEFAULT_TIMEOUT`].
    pub fn with_default_timeout() -> Result<AvaTaxClient, ClientBuildError> {
        AvaTaxClient::new(Self::DEFAULT_TIMEOUT)
    }

    /// The per-request timeout this client was built with.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// POSTs `body` as JSON and returns the body of a 2xx answer.
    async fn post(
        &self,
        settings: &AvaTaxSettings,
        operation: &str,
        url: Url,
        body: &impl Serialize,
    ) -> Result<Vec<u8>, TaxEngineError> {
        let response = self
            .http
            .post(url)
            .basic_auth(&settings.account_id, Some(settings.license_key.expose()))
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .header("X-Avalara-Client", HeaderValue::from_static(CLIENT_ID))
            .json(body)
            .send()
            .await
            .map_err(|error| transport_error(operation, &error, self.timeout))?;
        let status = response.status();
        // The timeout also covers reading the body, so a server that stalls
        // mid-answer is unavailable too.
        let body = response
            .bytes()
            .await
            .map_err(|error| transport_error(operation, &error, self.timeout))?;
        if !status.is_success() {
            return Err(status_error(operation, status, &body));
        }
        Ok(body.to_vec())
    }

    async fn create(
        &self,
        settings: &AvaTaxSettings,
        document: &TaxDocument,
        commit: bool,
    ) -> Result<Vec<LineTaxes>, TaxEngineError> {
        const OPERATION: &str = "CreateTransaction";
        let url = api_url(&settings.base_url, "transactions/create")?;
        let request = CreateTransaction::sales_invoice(&settings.company_code, document, commit);
        let body = self.post(settings, OPERATION, url, &request).await?;
        let unreadable = |reason: String| {
            TaxEngineError::Unavailable(format!(
                "{OPERATION}: AvaTax's answer could not be read: {reason}"
            ))
        };
        let transaction: Transaction =
            serde_json::from_slice(&body).map_err(|error| unreadable(error.to_string()))?;
        transaction.line_taxes(document).map_err(unreadable)
    }

    /// POSTs `body` to `/companies/{company}/transactions/{code}/{action}`.
    async fn transaction_action(
        &self,
        settings: &AvaTaxSettings,
        operation: &str,
        code: &str,
        action: &str,
        body: &impl Serialize,
    ) -> Result<(), TaxEngineError> {
        let company = path_segment("company code", &settings.company_code)?;
        let transaction = path_segment("transaction code", code)?;
        let path = format!("companies/{company}/transactions/{transaction}/{action}");
        let url = api_url(&settings.base_url, &path)?;
        // The answer is the updated transaction; a 2xx is all that matters here.
        self.post(settings, operation, url, body).await?;
        Ok(())
    }
}

#[async_trait]
impl TaxEngine for AvaTaxClient {
    async fn create_transaction(
        &self,
        settings: &AvaTaxSettings,
        document: &TaxDocument,
        commit: bool,
    ) -> Result<Vec<LineTaxes>, TaxEngineError> {
        self.create(settings, document, commit)
            .await
            .map_err(|error| redacted(error, settings))
    }

    async fn commit_transaction(
        &self,
        settings: &AvaTaxSettings,
        code: &str,
    ) -> Result<(), TaxEngineError> {
        let body = serde_json::json!({ "commit": true });
        self.transaction_action(settings, "CommitTransaction", code, "commit", &body)
            .await
            .map_err(|error| redacted(error, settings))
    }

    async fn void_transaction(
        &self,
        settings: &AvaTaxSettings,
        code: &str,
    ) -> Result<(), TaxEngineError> {
        let body = serde_json::json!({ "code": "DocVoided" });
        self.transaction_action(settings, "VoidTransaction", code, "void", &body)
            .await
            .map_err(|error| redacted(error, settings))
    }
}

/// rustls with the ring provider and Mozilla's roots (bundled, so the client
/// trusts the same CAs on a bare container as on a full OS). The webhook worker's
/// client uses it too.
pub fn tls_config() -> Result<rustls::ClientConfig, ClientBuildError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| ClientBuildError(error.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    // reqwest is built for HTTP/1.1 only here; say so to the server.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// `{base_url}/api/v2/{path}`; `path` must already be escaped.
///
/// A base URL that does not parse is a setting to fix, hence `Refused`.
fn api_url(base_url: &str, path: &str) -> Result<Url, TaxEngineError> {
    let invalid = |reason: &str| {
        TaxEngineError::Refused(format!("the AvaTax base URL {base_url:?} {reason}"))
    };
    let mut url = Url::parse(base_url).map_err(|error| invalid(&format!("is invalid: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("is not http(s)"));
    }
    url.set_query(None);
    url.set_fragment(None);
    // A base URL may carry a path prefix (e.g. behind a gateway); keep it.
    let full_path = format!("{}/api/v2/{path}", url.path().trim_end_matches('/'));
    url.set_path(&full_path);
    Ok(url)
}

/// `value` escaped as one URL path segment.
fn path_segment(what: &str, value: &str) -> Result<String, TaxEngineError> {
    // URL parsers resolve `.` and `..` segments (even escaped ones), which would
    // address a different resource; such a code can't name a transaction.
    if matches!(value, "" | "." | "..") {
        return Err(TaxEngineError::Refused(format!(
            "the {what} {value:?} cannot be used in an AvaTax URL"
        )));
    }
    Ok(utf8_percent_encode(value, PATH_SEGMENT).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_keeps_its_path_prefix_and_loses_a_trailing_slash() {
        let url = api_url("https://gateway.example/avatax/", "transactions/create").unwrap();
        assert_eq!(
            url.as_str(),
            "https://gateway.example/avatax/api/v2/transactions/create"
        );
        let url = api_url("https://sandbox-rest.avatax.com", "transactions/create").unwrap();
        assert_eq!(
            url.as_str(),
            "https://sandbox-rest.avatax.com/api/v2/transactions/create"
        );
    }

    #[test]
    fn a_base_url_that_is_not_http_is_refused() {
        assert!(matches!(
            api_url("ftp://rest.avatax.com", "transactions/create"),
            Err(TaxEngineError::Refused(_))
        ));
        assert!(matches!(
            api_url("rest.avatax.com", "transactions/create"),
            Err(TaxEngineError::Refused(_))
        ));
    }

    #[test]
    fn a_dot_segment_code_is_refused_instead_of_escaping_its_path() {
        assert!(matches!(
            path_segment("transaction code", ".."),
            Err(TaxEngineError::Refused(_))
        ));
        assert!(matches!(
            path_segment("transaction code", ""),
            Err(TaxEngineError::Refused(_))
        ));
        assert_eq!(path_segment("transaction code", "a.b").unwrap(), "a.b");
    }
}
