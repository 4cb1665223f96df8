//! The AvaTax client against a fake AvaTax on 127.0.0.1: request shapes, answers and failures.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::prelude::{BASE64_STANDARD, Engine as _};
use dynabill_app::tax_engine::{
    AvaTaxSettings, LineTaxes, Secret, TaxAddress, TaxDetail, TaxDocument, TaxDocumentLine,
    TaxEngine, TaxEngineError,
};
use dynabill_avatax::AvaTaxClient;
use rust_decimal::{Decimal, dec};
use serde_json::Value;

const ACCOUNT_ID: &str = "2000123456";
const LICENSE_KEY: &str = "LK9F8E7D6C5B4A3210ZZ";

/// One request as the fake AvaTax saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    /// As sent, still percent-encoded.
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    avalara_client: Option<String>,
    body: String,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("the client sends JSON")
    }
}

/// What the fake AvaTax does with a request.
enum Answer {
    Respond(StatusCode, String),
    /// Keep the connection open and never answer.
    Hang,
}

type Responder = Arc<dyn Fn(&Seen) -> Answer + Send + Sync>;

#[derive(Clone)]
struct FakeState {
    seen: Arc<Mutex<Vec<Seen>>>,
    responder: Responder,
}

struct FakeAvaTax {
    base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeAvaTax {
    /// Starts a fake AvaTax on a free port that records each request and answers
    /// it with `responder`.
    async fn start(responder: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> FakeAvaTax {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = FakeState {
            seen: seen.clone(),
            responder: Arc::new(responder),
        };
        let app = Router::new().fallback(record_and_answer).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeAvaTax {
            base_url: format!("http://{address}"),
            seen,
        }
    }

    /// A fake that answers every request with `status` and `body`.
    async fn answering(status: StatusCode, body: &str) -> FakeAvaTax {
        let body = body.to_owned();
        FakeAvaTax::start(move |_| Answer::Respond(status, body.clone())).await
    }

    fn settings(&self) -> AvaTaxSettings {
        settings(&self.base_url)
    }

    fn only_request(&self) -> Seen {
        let seen = self.seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "expected exactly one request, got {seen:?}");
        seen[0].clone()
    }
}

async fn record_and_answer(State(state): State<FakeState>, request: Request<Body>) -> Response {
    let (parts, body) = request.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
    };
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        avalara_client: header("x-avalara-client"),
        body: String::from_utf8(body.to_vec()).unwrap(),
    };
    state.seen.lock().unwrap().push(seen.clone());
    match (state.responder)(&seen) {
        Answer::Respond(status, body) => {
            (status, [("content-type", "application/json")], body).into_response()
        }
        Answer::Hang => std::future::pending().await,
    }
}

fn settings(base_url: &str) -> AvaTaxSettings {
    AvaTaxSettings {
        base_url: base_url.to_owned(),
        account_id: ACCOUNT_ID.to_owned(),
        license_key: Secret::new(LICENSE_KEY),
        company_code: "DYNABILL".to_owned(),
    }
}

fn client() -> AvaTaxClient {
    AvaTaxClient::with_default_timeout().unwrap()
}

/// A March invoice: a plan line whose amount came from decimal arithmetic, a
/// usage line more precise than an f64 can carry, and a credit.
fn invoice() -> TaxDocument {
    TaxDocument {
        code: "dynabill-42".to_owned(),
        date: jiff::civil::date(2026, 3, 1),
        customer_code: "ACC-7".to_owned(),
        currency: "USD".to_owned(),
        address: TaxAddress {
            line1: Some("100 Ravine Ln NE".to_owned()),
            city: Some("Bainbridge Island".to_owned()),
            region: Some("WA".to_owned()),
            postal_code: Some("98110".to_owned()),
            country: Some("US".to_owned()),
        },
        exemption_number: Some("EX-2026-001".to_owned()),
        lines: vec![
            TaxDocumentLine {
                number: "101".to_owned(),
                quantity: dec!(3),
                amount: dec!(18.28) * dec!(3),
                item_code: "PLAN-PRO".to_owned(),
                tax_code: Some("SW054000".to_owned()),
                description: "Pro plan, March 2026".to_owned(),
            },
            TaxDocumentLine {
                number: "102".to_owned(),
                quantity: dec!(1234.5678),
                amount: dec!(98.76543210987654321),
                item_code: "API-CALLS".to_owned(),
                tax_code: Some("SW052000".to_owned()),
                description: "API calls".to_owned(),
            },
            TaxDocumentLine {
                number: "103".to_owned(),
                quantity: dec!(1),
                amount: dec!(-5.00),
                item_code: "CREDIT".to_owned(),
                tax_code: None,
                description: "Goodwill credit".to_owned(),
            },
        ],
    }
}

/// The `TransactionModel` AvaTax answers for `invoice()`, trimmed of nothing
/// this client ignores: four jurisdictions (state, county, city, special
/// district) on the plan line, two on the usage line, none on the credit.
const TRANSACTION: &str = r#"{
  "id": 8500123456, "code": "dynabill-42", "companyId": 712345, "date": "2026-03-01",
  "status": "Committed", "type": "SalesInvoice", "currencyCode": "USD",
  "customerCode": "ACC-7", "exemptNo": "EX-2026-001", "reconciled": false,
  "totalAmount": 148.60543210987654321, "totalExempt": 0, "totalTax": 12.31,
  "totalTaxable": 153.60543210987654321, "totalTaxCalculated": 12.3146,
  "adjustmentReason": "NotAdjusted", "locked": false, "version": 1,
  "lines": [
    {
      "id": 1, "transactionId": 8500123456, "lineNumber": "101", "itemCode": "PLAN-PRO",
      "taxCode": "SW054000", "quantity": 3, "lineAmount": 54.84, "tax": 5.30,
      "taxCalculated": 5.305, "taxableAmount": 54.84, "exemptAmount": 0,
      "details": [
        {"id": 11, "transactionLineId": 1, "transactionId": 8500123456, "country": "US",
         "region": "WA", "exemptAmount": 0, "jurisCode": "53", "jurisName": "WASHINGTON",
         "stateAssignedNo": "", "jurisType": "STA", "jurisdictionType": "State",
         "nonTaxableAmount": 0, "rate": 0.065000, "tax": 3.56, "taxableAmount": 54.84,
         "taxType": "Sales", "taxSubTypeId": "S", "taxName": "WA STATE TAX",
         "taxAuthorityTypeId": 45, "taxCalculated": 3.5646, "rateType": "General",
         "rateTypeCode": "G", "unitOfBasis": "PerCurrencyUnit", "isNonPassThru": false},
        {"id": 12, "transactionLineId": 1, "transactionId": 8500123456, "country": "US",
         "region": "WA", "exemptAmount": 0, "jurisCode": "035", "jurisName": "KITSAP",
         "jurisType": "CTY", "jurisdictionType": "County", "nonTaxableAmount": 0,
         "rate": 0.000000, "tax": 0, "taxableAmount": 54.84, "taxType": "Sales",
         "taxName": "WA COUNTY TAX", "taxCalculated": 0, "rateType": "General"},
        {"id": 13, "transactionLineId": 1, "transactionId": 8500123456, "country": "US",
         "region": "WA", "exemptAmount": 0, "jurisCode": "03736", "jurisName": "BAINBRIDGE ISLAND",
         "jurisType": "CIT", "jurisdictionType": "City", "nonTaxableAmount": 0,
         "rate": 0.017000, "tax": 0.93, "taxableAmount": 54.84, "taxType": "Sales",
         "taxName": "WA CITY TAX", "taxCalculated": 0.93228, "rateType": "General"},
        {"id": 14, "transactionLineId": 1, "transactionId": 8500123456, "country": "US",
         "region": "WA", "exemptAmount": 0, "jurisCode": "EMAR0", "jurisName": "KITSAP TRANSIT (PTBA)",
         "jurisType": "STJ", "jurisdictionType": "Special", "nonTaxableAmount": 0,
         "rate": 0.011000, "tax": 0.81, "taxableAmount": 54.84, "taxType": "Sales",
         "taxName": "WA SPECIAL TAX", "taxCalculated": 0.60324, "rateType": "General"}
      ]
    },
    {
      "id": 2, "transactionId": 8500123456, "lineNumber": "102", "itemCode": "API-CALLS",
      "taxCode": "SW052000", "quantity": 1234.5678, "lineAmount": 98.76543210987654321,
      "tax": 8.09, "taxCalculated": 8.0987654, "taxableAmount": 98.76543210987654321,
      "details": [
        {"id": 21, "transactionLineId": 2, "country": "US", "region": "WA",
         "jurisName": "WASHINGTON", "jurisType": "STA", "rate": 0.065000, "tax": 6.419753087,
         "taxableAmount": 98.76543210987654321, "taxType": "Sales", "taxName": "WA STATE TAX",
         "taxCalculated": 6.419753087},
        {"id": 22, "transactionLineId": 2, "country": "US", "region": "WA",
         "jurisName": "BAINBRIDGE ISLAND", "jurisType": "CIT", "rate": 0.017, "tax": 1.68,
         "taxableAmount": 98.76543210987654321, "taxType": "Sales", "taxName": "WA CITY TAX",
         "taxCalculated": 1.679012346}
      ]
    },
    {
      "id": 3, "transactionId": 8500123456, "lineNumber": "103", "itemCode": "CREDIT",
      "taxCode": "P0000000", "quantity": 1, "lineAmount": -5.00, "tax": 0,
      "taxCalculated": 0, "details": []
    }
  ],
  "summary": [
    {"country": "US", "region": "WA", "jurisType": "State", "jurisCode": "53",
     "jurisName": "WASHINGTON", "taxAuthorityType": 45, "taxType": "Sales",
     "taxName": "WA STATE TAX", "rateType": "General", "taxable": 153.60543210987654321,
     "rate": 0.065, "tax": 9.98, "taxCalculated": 9.98, "nonTaxable": 0, "exemption": 0}
  ]
}"#;

/// A transaction as commit and void answer it; this client only needs the 2xx.
const COMMITTED: &str = r#"{"id": 8500123456, "code": "dynabill/42 ?#%", "companyId": 712345,
  "status": "Committed", "type": "SalesInvoice", "totalTax": 12.31, "version": 2}"#;

fn detail(description: &str, amount: Decimal, rate: Decimal, jurisdiction: &str) -> TaxDetail {
    TaxDetail {
        description: description.to_owned(),
        amount,
        rate: Some(rate),
        jurisdiction: Some(jurisdiction.to_owned()),
    }
}

fn unavailable_message(error: TaxEngineError) -> String {
    assert_secret_absent(&error);
    match error {
        TaxEngineError::Unavailable(message) => message,
        TaxEngineError::Refused(message) => panic!("expected Unavailable, got Refused({message})"),
    }
}

fn refused_message(error: TaxEngineError) -> String {
    assert_secret_absent(&error);
    match error {
        TaxEngineError::Refused(message) => message,
        TaxEngineError::Unavailable(message) => {
            panic!("expected Refused, got Unavailable({message})")
        }
    }
}

/// Neither the key nor the encoded `account:key` may show in an error.
fn assert_secret_absent(error: &TaxEngineError) {
    let encoded = BASE64_STANDARD.encode(format!("{ACCOUNT_ID}:{LICENSE_KEY}"));
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(LICENSE_KEY), "license key leaked: {text}");
        assert!(
            !text.contains(&encoded),
            "encoded credentials leaked: {text}"
        );
    }
}

#[tokio::test]
async fn create_transaction_posts_a_sales_invoice_with_basic_auth_the_address_and_exact_line_amounts()
 {
    let fake = FakeAvaTax::answering(StatusCode::CREATED, TRANSACTION).await;

    client()
        .create_transaction(&fake.settings(), &invoice(), true)
        .await
        .unwrap();

    let request = fake.only_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/v2/transactions/create");
    let expected_credentials = BASE64_STANDARD.encode(format!("{ACCOUNT_ID}:{LICENSE_KEY}"));
    assert_eq!(
        request.authorization.as_deref(),
        Some(format!("Basic {expected_credentials}").as_str())
    );
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    assert!(
        request
            .avalara_client
            .as_deref()
            .is_some_and(|client| client.starts_with("dynabill; "))
    );

    let body = request.json();
    assert_eq!(body["type"], "SalesInvoice");
    assert_eq!(body["companyCode"], "DYNABILL");
    assert_eq!(body["code"], "dynabill-42");
    assert_eq!(body["date"], "2026-03-01");
    assert_eq!(body["customerCode"], "ACC-7");
    assert_eq!(body["currencyCode"], "USD");
    assert_eq!(body["commit"], true);
    assert_eq!(body["exemptionNo"], "EX-2026-001");
    assert_eq!(
        body["addresses"],
        serde_json::json!({"singleLocation": {
            "line1": "100 Ravine Ln NE", "city": "Bainbridge Island", "region": "WA",
            "postalCode": "98110", "country": "US"
        }})
    );

    let lines = body["lines"].as_array().unwrap();
    let numbers: Vec<&str> = lines
        .iter()
        .map(|line| line["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["101", "102", "103"]);
    // Numbers, not strings, and digit for digit the invoice's decimals.
    let amounts: Vec<String> = lines
        .iter()
        .map(|line| {
            assert!(line["amount"].is_number() && line["quantity"].is_number());
            line["amount"].to_string()
        })
        .collect();
    assert_eq!(amounts, ["54.84", "98.76543210987654321", "-5.00"]);
    assert_eq!(lines[1]["quantity"].to_string(), "1234.5678");
    assert!(
        request.body.contains(r#""amount":54.84,"#),
        "{}",
        request.body
    );
    assert_eq!(lines[0]["itemCode"], "PLAN-PRO");
    assert_eq!(lines[0]["taxCode"], "SW054000");
    assert_eq!(lines[0]["description"], "Pro plan, March 2026");
    assert!(
        lines[2].get("taxCode").is_none(),
        "a line without a tax code sends none"
    );
}

#[tokio::test]
async fn create_transaction_returns_each_jurisdictions_tax_name_amount_and_rate_per_line() {
    let fake = FakeAvaTax::answering(StatusCode::CREATED, TRANSACTION).await;

    let taxes = client()
        .create_transaction(&fake.settings(), &invoice(), true)
        .await
        .unwrap();

    assert_eq!(
        taxes,
        vec![
            LineTaxes {
                number: "101".to_owned(),
                details: vec![
                    detail("WA STATE TAX", dec!(3.56), dec!(0.065000), "WASHINGTON"),
                    detail("WA COUNTY TAX", dec!(0), dec!(0.000000), "KITSAP"),
                    detail(
                        "WA CITY TAX",
                        dec!(0.93),
                        dec!(0.017000),
                        "BAINBRIDGE ISLAND"
                    ),
                    // `tax` (0.81, e.g. after an override), not `taxCalculated`.
                    detail(
                        "WA SPECIAL TAX",
                        dec!(0.81),
                        dec!(0.011000),
                        "KITSAP TRANSIT (PTBA)"
                    ),
                ],
            },
            LineTaxes {
                number: "102".to_owned(),
                details: vec![
                    detail(
                        "WA STATE TAX",
                        dec!(6.419753087),
                        dec!(0.065000),
                        "WASHINGTON"
                    ),
                    detail("WA CITY TAX", dec!(1.68), dec!(0.017), "BAINBRIDGE ISLAND"),
                ],
            },
            LineTaxes {
                number: "103".to_owned(),
                details: vec![],
            },
        ]
    );
}

#[tokio::test]
async fn an_uncommitted_transaction_without_exemption_sends_commit_false_and_no_exemption_number() {
    let fake = FakeAvaTax::answering(StatusCode::OK, TRANSACTION).await;
    let mut document = invoice();
    document.exemption_number = None;
    document.address = TaxAddress {
        postal_code: Some("98110".to_owned()),
        country: Some("US".to_owned()),
        ..TaxAddress::default()
    };

    client()
        .create_transaction(&fake.settings(), &document, false)
        .await
        .unwrap();

    let body = fake.only_request().json();
    assert_eq!(body["commit"], false);
    assert!(body.get("exemptionNo").is_none());
    assert_eq!(
        body["addresses"],
        serde_json::json!({"singleLocation": {"postalCode": "98110", "country": "US"}})
    );
}

#[tokio::test]
async fn a_400_with_an_avatax_error_body_is_refused_with_its_code_and_message() {
    let fake = FakeAvaTax::answering(
        StatusCode::BAD_REQUEST,
        r#"{"error": {"code": "InvalidAddress", "message": "The address value was incomplete.",
            "target": "IncorrectData", "details": [{"code": "InvalidAddress", "number": 309,
            "message": "The address value was incomplete.",
            "description": "The address value NULL was incomplete. You must provide either a valid postal code, line1 + city + region, or line1 + postal code.",
            "faultCode": "Client", "helpLink": "https://developer.avalara.com/avatax/errors/InvalidAddress",
            "severity": "Error"}]}}"#,
    )
    .await;

    let error = client()
        .create_transaction(&fake.settings(), &invoice(), false)
        .await
        .unwrap_err();

    let message = refused_message(error);
    assert!(
        message.contains("InvalidAddress: The address value was incomplete."),
        "{message}"
    );
    assert!(
        message.contains("You must provide either a valid postal code"),
        "{message}"
    );
    assert!(message.contains("400"), "{message}");
}

#[tokio::test]
async fn a_401_for_bad_credentials_is_refused() {
    let fake = FakeAvaTax::answering(
        StatusCode::UNAUTHORIZED,
        r#"{"error": {"code": "AuthenticationException", "message": "Authentication failed.",
            "details": [{"code": "AuthenticationException", "number": 34,
            "message": "Authentication failed.",
            "description": "Missing authentication or unable to authenticate the user or the account.",
            "faultCode": "Client", "severity": "Error"}]}}"#,
    )
    .await;

    let error = client()
        .create_transaction(&fake.settings(), &invoice(), false)
        .await
        .unwrap_err();

    let message = refused_message(error);
    assert!(message.contains("401"), "{message}");
    assert!(
        message.contains("AuthenticationException: Authentication failed."),
        "{message}"
    );
}

#[tokio::test]
async fn a_500_is_unavailable() {
    let fake = FakeAvaTax::answering(StatusCode::INTERNAL_SERVER_ERROR, "upstream failure").await;

    let error = client()
        .create_transaction(&fake.settings(), &invoice(), false)
        .await
        .unwrap_err();

    let message = unavailable_message(error);
    assert!(message.contains("500"), "{message}");
    assert!(message.contains("upstream failure"), "{message}");
}

#[tokio::test]
async fn a_429_rate_limit_is_unavailable_so_the_invoice_is_retried() {
    let fake = FakeAvaTax::answering(
        StatusCode::TOO_MANY_REQUESTS,
        r#"{"error": {"code": "RateLimitExceeded", "message": "Too many requests."}}"#,
    )
    .await;

    let error = client()
        .create_transaction(&fake.settings(), &invoice(), false)
        .await
        .unwrap_err();

    let message = unavailable_message(error);
    assert!(
        message.contains("RateLimitExceeded: Too many requests."),
        "{message}"
    );
}

#[tokio::test]
async fn a_success_answer_that_is_not_a_transaction_is_unavailable() {
    let fake = FakeAvaTax::answering(StatusCode::OK, "<html>Down for maintenance</html>").await;

    let error = client()
        .create_transaction(&fake.settings(), &invoice(), false)
        .await
        .unwrap_err();

    let message = unavailable_message(error);
    assert!(message.contains("could not be read"), "{message}");
}

#[tokio::test]
async fn a_success_answer_missing_a_line_is_unavailable_rather_than_leaving_it_untaxed() {
    let mut transaction: Value = serde_json::from_str(TRANSACTION).unwrap();
    transaction["lines"].as_array_mut().unwrap().remove(1);
    let fake = FakeAvaTax::answering(StatusCode::CREATED, &transaction.to_string()).await;

    let error = client()
        .create_transaction(&fake.settings(), &invoice(), false)
        .await
        .unwrap_err();

    let message = unavailable_message(error);
    assert!(
        message.contains(r#"line "102" is not answered"#),
        "{message}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_unavailable_after_the_timeout() {
    let fake = FakeAvaTax::start(|_| Answer::Hang).await;
    let client = AvaTaxClient::new(Duration::from_millis(300)).unwrap();

    let started = Instant::now();
    let error = client
        .create_transaction(&fake.settings(), &invoice(), false)
        .await
        .unwrap_err();
    let waited = started.elapsed();

    let message = unavailable_message(error);
    assert!(message.contains("no answer within 300ms"), "{message}");
    assert!(
        waited >= Duration::from_millis(300),
        "gave up after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    assert_eq!(
        fake.seen.lock().unwrap().len(),
        1,
        "the request did reach the server"
    );
}

#[tokio::test]
async fn nothing_listening_on_the_base_url_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);

    let error = client()
        .create_transaction(&settings(&format!("http://{address}")), &invoice(), false)
        .await
        .unwrap_err();

    let message = unavailable_message(error);
    assert!(message.contains("could not connect"), "{message}");
}

#[tokio::test]
async fn commit_transaction_posts_commit_true_to_the_escaped_company_and_transaction_path() {
    let fake = FakeAvaTax::answering(StatusCode::OK, COMMITTED).await;
    let mut settings = fake.settings();
    settings.company_code = "ACME CO/EU".to_owned();

    client()
        .commit_transaction(&settings, "dynabill/42 ?#%")
        .await
        .unwrap();

    let request = fake.only_request();
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        "/api/v2/companies/ACME%20CO%2FEU/transactions/dynabill%2F42%20%3F%23%25/commit"
    );
    assert_eq!(request.json(), serde_json::json!({"commit": true}));
    assert!(
        request
            .authorization
            .is_some_and(|value| value.starts_with("Basic "))
    );
}

#[tokio::test]
async fn void_transaction_posts_doc_voided_to_the_escaped_company_and_transaction_path() {
    let fake = FakeAvaTax::answering(StatusCode::OK, COMMITTED).await;

    client()
        .void_transaction(&fake.settings(), "dynabill-42")
        .await
        .unwrap();

    let request = fake.only_request();
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        "/api/v2/companies/DYNABILL/transactions/dynabill-42/void"
    );
    assert_eq!(request.json(), serde_json::json!({"code": "DocVoided"}));
}

#[tokio::test]
async fn voiding_an_unknown_transaction_is_refused_with_avatax_message() {
    let fake = FakeAvaTax::answering(
        StatusCode::NOT_FOUND,
        r#"{"error": {"code": "EntityNotFoundError", "message": "Document not found.",
            "target": "HttpRequest", "details": [{"code": "EntityNotFoundError", "number": 4,
            "message": "Document not found.",
            "description": "The Document with code 'dynabill-404' was not found.",
            "faultCode": "Client", "severity": "Error"}]}}"#,
    )
    .await;

    let error = client()
        .void_transaction(&fake.settings(), "dynabill-404")
        .await
        .unwrap_err();

    let message = refused_message(error);
    assert!(
        message.contains("EntityNotFoundError: Document not found."),
        "{message}"
    );
    assert!(
        message.contains("'dynabill-404' was not found"),
        "{message}"
    );
}

#[tokio::test]
async fn a_commit_during_an_avatax_outage_is_unavailable() {
    let fake = FakeAvaTax::answering(StatusCode::SERVICE_UNAVAILABLE, "").await;

    let error = client()
        .commit_transaction(&fake.settings(), "dynabill-42")
        .await
        .unwrap_err();

    let message = unavailable_message(error);
    assert!(message.contains("503"), "{message}");
}

#[tokio::test]
async fn the_license_key_stays_out_of_errors_even_when_the_server_echoes_it() {
    // A misbehaving server (or proxy) that quotes the credentials back.
    let fake = FakeAvaTax::start(|seen| {
        let authorization = seen.authorization.clone().unwrap_or_default();
        let encoded = authorization.trim_start_matches("Basic ");
        let decoded = String::from_utf8(BASE64_STANDARD.decode(encoded).unwrap()).unwrap();
        let body = serde_json::json!({"error": {
            "code": "AuthenticationException",
            "message": format!("Bad credentials {decoded} sent as {authorization}"),
        }});
        Answer::Respond(StatusCode::FORBIDDEN, body.to_string())
    })
    .await;

    let error = client()
        .create_transaction(&fake.settings(), &invoice(), false)
        .await
        .unwrap_err();

    // `refused_message` checks Display and Debug for the key and its encoding.
    let message = refused_message(error);
    assert!(
        message.contains(&format!("Bad credentials {ACCOUNT_ID}:***")),
        "{message}"
    );
    assert!(message.contains("sent as Basic ***"), "{message}");
}

#[test]
fn the_license_key_stays_out_of_the_debug_output_of_settings_and_client() {
    let settings = settings("https://sandbox-rest.avatax.com");
    let client = client();

    for text in [format!("{settings:?}"), format!("{client:?}")] {
        assert!(!text.contains(LICENSE_KEY), "license key leaked: {text}");
    }
    assert!(
        format!("{settings:?}").contains(ACCOUNT_ID),
        "the rest still prints"
    );
}

#[tokio::test]
async fn an_https_base_url_opens_a_tls_handshake() {
    use tokio::io::AsyncReadExt;

    // A plain TCP listener that reads what the client opens with: a TLS
    // ClientHello starts with a handshake record (0x16) of TLS 1.x (0x03).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let first_bytes = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut bytes = [0u8; 2];
        socket.read_exact(&mut bytes).await.unwrap();
        bytes
    });

    let error = client()
        .create_transaction(&settings(&format!("https://{address}")), &invoice(), false)
        .await
        .unwrap_err();

    assert_eq!(first_bytes.await.unwrap(), [0x16, 0x03]);
    unavailable_message(error);
}
