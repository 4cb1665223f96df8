//! The AvaTax REST v2 JSON shapes this client sends and reads, and their conversions.
//!
//! Amounts and rates cross the wire as JSON numbers written from, and read into,
//! exact decimals: serde_json's `arbitrary_precision` keeps a number's text, so no
//! amount ever passes through an `f64`.

use std::collections::HashMap;

use dynabill_app::tax_engine::{LineTaxes, TaxAddress, TaxDetail, TaxDocument, TaxDocumentLine};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Number;

/// A `CreateTransactionModel` with the fields dynabill fills.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateTransaction<'a> {
    #[serde(rename = "type")]
    document_type: &'static str,
    company_code: &'a str,
    code: &'a str,
    date: String,
    customer_code: &'a str,
    currency_code: &'a str,
    commit: bool,
    addresses: Addresses<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exemption_no: Option<&'a str>,
    lines: Vec<LineItem<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Addresses<'a> {
    // The account's address is both origin and destination: dynabill bills
    // services, which AvaTax taxes where the customer is.
    single_location: Address<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Address<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    line1: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    postal_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LineItem<'a> {
    number: &'a str,
    quantity: Number,
    amount: Number,
    item_code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tax_code: Option<&'a str>,
    description: &'a str,
}

impl<'a> CreateTransaction<'a> {
    /// The request for `document` as a sales invoice of `company_code`.
    pub(crate) fn sales_invoice(
        company_code: &'a str,
        document: &'a TaxDocument,
        commit: bool,
    ) -> CreateTransaction<'a> {
        CreateTransaction {
            document_type: "SalesInvoice",
            company_code,
            code: &document.code,
            date: document.date.to_string(),
            customer_code: &document.customer_code,
            currency_code: &document.currency,
            commit,
            addresses: Addresses {
                single_location: Address::from_tax_address(&document.address),
            },
            exemption_no: document.exemption_number.as_deref(),
            lines: document
                .lines
                .iter()
                .map(LineItem::from_document_line)
                .collect(),
        }
    }
}

impl<'a> Address<'a> {
    fn from_tax_address(address: &'a TaxAddress) -> Address<'a> {
        Address {
            line1: address.line1.as_deref(),
            city: address.city.as_deref(),
            region: address.region.as_deref(),
            postal_code: address.postal_code.as_deref(),
            country: address.country.as_deref(),
        }
    }
}

impl<'a> LineItem<'a> {
    fn from_document_line(line: &'a TaxDocumentLine) -> LineItem<'a> {
        LineItem {
            number: &line.number,
            quantity: json_number(line.quantity),
            amount: json_number(line.amount),
            item_code: &line.item_code,
            tax_code: line.tax_code.as_deref(),
            description: &line.description,
        }
    }
}

/// The JSON number whose text is the decimal's text, digit for digit.
pub(crate) fn json_number(value: Decimal) -> Number {
    // A Decimal prints as an optional minus, digits and an optional fraction:
    // always a valid JSON number, so this cannot fail.
    value
        .to_string()
        .parse()
        .expect("a Decimal's text is a JSON number")
}

/// The exact decimal a JSON number's text spells, or `None` if it does not fit.
pub(crate) fn exact_decimal(number: &Number) -> Option<Decimal> {
    let text = number.to_string();
    if text.contains(['e', 'E']) {
        return Decimal::from_scientific(&text).ok();
    }
    // `from_str_exact` refuses what would need rounding instead of rounding it.
    Decimal::from_str_exact(&text).ok()
}

fn deserialize_decimal<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    let number = Number::deserialize(deserializer)?;
    exact_decimal(&number)
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not an exact decimal")))
}

fn deserialize_optional_decimal<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Decimal>, D::Error> {
    let Some(number) = Option::<Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    match exact_decimal(&number) {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom(format!(
            "{number} is not an exact decimal"
        ))),
    }
}

/// The parts of a `TransactionModel` that carry the tax.
#[derive(Debug, Deserialize)]
pub(crate) struct Transaction {
    #[serde(default)]
    lines: Option<Vec<TransactionLine>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransactionLine {
    line_number: String,
    #[serde(default)]
    details: Option<Vec<TransactionLineDetail>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransactionLineDetail {
    tax_name: String,
    // `tax`, not `taxCalculated`: `tax` is what is charged once AvaTax has applied
    // overrides and caps, and is what the invoice must show.
    #[serde(deserialize_with = "deserialize_decimal")]
    tax: Decimal,
    #[serde(default, deserialize_with = "deserialize_optional_decimal")]
    rate: Option<Decimal>,
    #[serde(default)]
    juris_name: Option<String>,
}

impl Transaction {
    /// The taxes of each line of `document`, in the document's order.
    ///
    /// Every line sent must be answered exactly once and nothing else answered:
    /// a partial answer would post an invoice with untaxed lines.
    pub(crate) fn line_taxes(self, document: &TaxDocument) -> Result<Vec<LineTaxes>, String> {
        let mut answered: HashMap<String, Vec<TaxDetail>> = HashMap::new();
        for line in self.lines.unwrap_or_default() {
            let details = line
                .details
                .unwrap_or_default()
                .into_iter()
                .map(TransactionLineDetail::into_tax_detail)
                .collect();
            if answered.insert(line.line_number.clone(), details).is_some() {
                return Err(format!("line {:?} is answered twice", line.line_number));
            }
        }
        let mut taxes = Vec::with_capacity(document.lines.len());
        for line in &document.lines {
            let Some(details) = answered.remove(&line.number) else {
                return Err(format!("line {:?} is not answered", line.number));
            };
            taxes.push(LineTaxes {
                number: line.number.clone(),
                details,
            });
        }
        if let Some(number) = answered.keys().next() {
            return Err(format!("line {number:?} is answered but was not sent"));
        }
        Ok(taxes)
    }
}

impl TransactionLineDetail {
    fn into_tax_detail(self) -> TaxDetail {
        TaxDetail {
            description: self.tax_name,
            amount: self.tax,
            // AvaTax's rate is a fraction of the amount (0.0625 for 6.25 %).
            rate: self.rate,
            jurisdiction: self.juris_name,
        }
    }
}

/// AvaTax's error envelope: `{"error": {"code", "message", "details": [...]}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorEnvelope {
    error: ErrorInfo,
}

#[derive(Debug, Deserialize)]
struct ErrorInfo {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    details: Option<Vec<ErrorDetail>>,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

impl ErrorEnvelope {
    /// `code: message`, followed by what the details add (AvaTax puts the hint on
    /// how to fix the request in their descriptions).
    pub(crate) fn summary(&self) -> String {
        let error = &self.error;
        let message = error.message.as_deref().unwrap_or("no message");
        let mut summary = match &error.code {
            Some(code) => format!("{code}: {message}"),
            None => message.to_owned(),
        };
        let mut seen = vec![message];
        for detail in error.details.iter().flatten() {
            for text in [&detail.message, &detail.description].into_iter().flatten() {
                let text = text.as_str();
                if text.is_empty() || seen.contains(&text) {
                    continue;
                }
                summary.push_str(" (");
                summary.push_str(text);
                summary.push(')');
                seen.push(text);
            }
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::dec;

    #[test]
    fn a_decimal_becomes_a_json_number_with_the_same_digits() {
        let number = json_number(dec!(0.1234567890123456789));
        assert_eq!(
            serde_json::to_string(&number).unwrap(),
            "0.1234567890123456789"
        );
        assert_eq!(
            serde_json::to_string(&json_number(dec!(-5.00))).unwrap(),
            "-5.00"
        );
    }

    #[test]
    fn a_json_number_in_exponent_form_reads_as_the_exact_decimal() {
        let number: Number = serde_json::from_str("2.5E-05").unwrap();
        assert_eq!(exact_decimal(&number), Some(dec!(0.000025)));
    }

    #[test]
    fn a_json_number_too_precise_for_a_decimal_is_refused_rather_than_rounded() {
        let number: Number = serde_json::from_str("0.123456789012345678901234567890123").unwrap();
        assert_eq!(exact_decimal(&number), None);
    }

    #[test]
    fn an_error_summary_names_the_code_the_message_and_new_detail_text() {
        let envelope: ErrorEnvelope = serde_json::from_str(
            r#"{"error": {"code": "TransactionAlreadyExists", "message": "A transaction with this code and type already exists.",
                "details": [{"code": "TransactionAlreadyExists", "number": 1303,
                  "message": "A transaction with this code and type already exists.",
                  "description": "Please choose a new 'code'.", "severity": "Error"}]}}"#,
        )
        .unwrap();
        assert_eq!(
            envelope.summary(),
            "TransactionAlreadyExists: A transaction with this code and type already exists. (Please choose a new 'code'.)"
        );
    }
}
