//! The port to an external tax engine (Avalara AvaTax): what the bill run asks it
//! and what it answers. The `dynabill-avatax` crate implements it.

use async_trait::async_trait;
use jiff::civil::Date;
use rust_decimal::Decimal;

/// A tenant's AvaTax settings. The license key is a secret: it never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct AvaTaxSettings {
    /// e.g. `https://sandbox-rest.avatax.com` or `https://rest.avatax.com`.
    pub base_url: String,
    pub account_id: String,
    pub license_key: Secret,
    pub company_code: String,
}

impl std::fmt::Debug for AvaTaxSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvaTaxSettings")
            .field("base_url", &self.base_url)
            .field("account_id", &self.account_id)
            .field("license_key", &self.license_key)
            .field("company_code", &self.company_code)
            .finish()
    }
}

/// A string that must never reach a log or an error message.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The postal address tax is computed for (the account's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaxAddress {
    pub line1: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
}

/// One invoice line to tax.
#[derive(Clone, Debug, PartialEq)]
pub struct TaxDocumentLine {
    /// The invoice line's ID, as text: how answers are matched back.
    pub number: String,
    pub quantity: Decimal,
    /// The line's amount (negative for credits).
    pub amount: Decimal,
    pub item_code: String,
    pub tax_code: Option<String>,
    pub description: String,
}

/// A sales invoice to tax.
#[derive(Clone, Debug, PartialEq)]
pub struct TaxDocument {
    /// Unique per tenant: the invoice's ID, e.g. `dynabill-42`.
    pub code: String,
    pub date: Date,
    pub customer_code: String,
    pub currency: String,
    pub address: TaxAddress,
    pub exemption_number: Option<String>,
    pub lines: Vec<TaxDocumentLine>,
}

/// One tax of one line, per jurisdiction.
#[derive(Clone, Debug, PartialEq)]
pub struct TaxDetail {
    pub description: String,
    pub amount: Decimal,
    pub rate: Option<Decimal>,
    pub jurisdiction: Option<String>,
}

/// The taxes of one line (`number` as sent).
#[derive(Clone, Debug, PartialEq)]
pub struct LineTaxes {
    pub number: String,
    pub details: Vec<TaxDetail>,
}

#[derive(Debug, thiserror::Error)]
pub enum TaxEngineError {
    /// The engine could not be reached, timed out, or answered 5xx: worth retrying.
    #[error("tax engine unavailable: {0}")]
    Unavailable(String),
    /// The engine refused the request (4xx, with its message): retrying the same
    /// request will fail the same way until the data or settings are fixed.
    #[error("tax engine refused the request: {0}")]
    Refused(String),
}

#[async_trait]
pub trait TaxEngine: Send + Sync {
    /// Computes (and, with `commit`, records as final) the tax of a document.
    async fn create_transaction(
        &self,
        settings: &AvaTaxSettings,
        document: &TaxDocument,
        commit: bool,
    ) -> Result<Vec<LineTaxes>, TaxEngineError>;
    /// Records a computed document as final (the invoice was posted).
    async fn commit_transaction(
        &self,
        settings: &AvaTaxSettings,
        code: &str,
    ) -> Result<(), TaxEngineError>;
    /// Voids a document (the posted invoice was cancelled).
    async fn void_transaction(
        &self,
        settings: &AvaTaxSettings,
        code: &str,
    ) -> Result<(), TaxEngineError>;
}
