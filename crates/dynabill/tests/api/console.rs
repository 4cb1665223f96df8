//! The operator console (`/console`) through the real server: sign-in and its
//! cookie, search, the account page, an upsell previewed then made, a dry run
//! then a bill run followed to its end, the invoice marked paid and downloaded
//! as PDF (the same bytes twice; its text read back with `pdftotext`), and the
//! walls: another tenant's records, forms without their CSRF token, cookies
//! tampered with or whose credential is gone. HTML is read with a parser.

use reqwest::StatusCode;
use scraper::{Html, Selector};
use serde_json::json;

use crate::helpers::{Cred, TestApp, assert_ok};
use crate::on_both_backends_with;

on_both_backends_with!(crate::helpers::spawn_with_test_clock_alone:
    a_user_signs_in_finds_an_account_upsells_with_a_preview_bills_and_is_paid,
    the_console_keeps_tenants_apart_and_refuses_forged_forms,
    an_invoice_pdf_is_the_same_bytes_each_time_and_says_what_the_invoice_says,
    a_plan_renewal_and_a_one_time_charge_are_previewed_then_made,
    a_plan_cancellation_is_previewed_and_the_run_makes_what_it_showed,
    a_long_invoice_pdf_runs_over_numbered_pages,
);

/// The tenant's rate limit counts the console's requests as it counts the API's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_within_the_tenants_rate_limit() {
    let options = dynabill_http::HttpOptions {
        rate_limit: Some(dynabill_http::RateLimit {
            per_second: 0.5,
            burst: 2.0,
        }),
        ..dynabill_http::HttpOptions::default()
    };
    let Some(app) = crate::helpers::spawn_with(crate::helpers::Backend::Sqlite, options).await
    else {
        return;
    };
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.cred).await;
    let statuses: Vec<StatusCode> = {
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(browser.get("/console/settings").await.status);
        }
        seen
    };
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let page = browser.get("/console/settings").await;
    assert!(page.texts("h1").contains(&"Too many requests".to_owned()));
    app.stop().await;
}

/// A console user: a client that follows no redirect, and the session cookie.
pub struct Browser {
    base: String,
    client: reqwest::Client,
    cookie: Option<String>,
}

/// A page as read back: its status, where it redirects, its document.
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub html: Html,
    pub set_cookie: Option<String>,
}

impl Page {
    /// The texts of the elements `selector` picks, whitespace folded.
    pub fn texts(&self, selector: &str) -> Vec<String> {
        let selector = Selector::parse(selector).expect("a selector");
        self.html
            .select(&selector)
            .map(|e| {
                e.text()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    pub fn text(&self) -> String {
        self.texts("main").join(" ")
    }

    /// The value of `attribute` of the first element `selector` picks.
    pub fn attr(&self, selector: &str, attribute: &str) -> Option<String> {
        let selector = Selector::parse(selector).expect("a selector");
        self.html
            .select(&selector)
            .next()
            .and_then(|e| e.value().attr(attribute))
            .map(str::to_owned)
    }

    /// The CSRF token of the page's first action form (the sign-out form has one too).
    pub fn csrf(&self) -> String {
        self.attr("main form input[name=csrf]", "value")
            .or_else(|| self.attr("input[name=csrf]", "value"))
            .expect("a form with its CSRF token")
    }
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Browser {
            base: app.base.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a client"),
            cookie: None,
        }
    }

    async fn read(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.cookie {
            Some(cookie) => request.header("Cookie", cookie),
            None => request,
        };
        let response = request.send().await.expect("a console request");
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let location = header("location");
        let set_cookie = header("set-cookie");
        if let Some(set) = &set_cookie {
            let pair = set.split(';').next().unwrap_or_default().to_owned();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        let body = response.text().await.expect("a body");
        Page {
            status,
            location,
            html: Html::parse_document(&body),
            set_cookie,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.read(request).await
    }

    pub async fn get_bytes(&self, path: &str) -> (StatusCode, String, Vec<u8>) {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", cookie);
        }
        let response = request.send().await.expect("a download");
        let status = response.status();
        let kind = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (
            status,
            kind,
            response.bytes().await.expect("bytes").to_vec(),
        )
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.read(request).await
    }

    /// Signs in as `cred`; the page it lands on.
    pub async fn sign_in(&mut self, cred: &Cred) -> Page {
        let page = self
            .post(
                "/console/sign-in",
                &[
                    ("AppKey", &cred.app_key),
                    ("UserName", &cred.user),
                    ("AccessToken", &cred.token),
                    ("next", "/console"),
                ],
            )
            .await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "sign-in: {}",
            page.text()
        );
        page
    }
}

/// Moves the tenant's test clock to `today`, with its bill run when asked.
pub async fn set_today(app: &TestApp, today: &str, bill_run: bool) {
    let (_, reply) = app
        .send(|client, _| {
            client
                .post(format!("{}/api/testclock", app.base))
                .json(&json!({"Today": today, "BillRun": i32::from(bill_run)}))
        })
        .await;
    assert_ok(&reply);
}

/// An account `ext` with a plan and a monthly item of 3 × 100.00 from 2024-01-01.
async fn seed(app: &TestApp, ext: &str, name: &str, email: &str) -> String {
    let id = app
        .create_account(ext, json!({"AccountName": name, "Email": email}))
        .await;
    app.create_plan(
        &format!("{ext}-P"),
        ext,
        json!({"StartDate": "2024-01-01", "PlanName": "Pro"}),
    )
    .await;
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 110, "ExtID": format!("{ext}-I"), "PlanExtID": format!("{ext}-P"),
            "ProductCode": "SEAT", "ItemName": "Seats", "Quantity": 3, "UnitPrice": "100.00", "BillingPeriod": 1,
            "StartDate": "2024-01-01"}))
        .await;
    assert_ok(&reply);
    id
}

async fn a_user_signs_in_finds_an_account_upsells_with_a_preview_bills_and_is_paid(app: &TestApp) {
    set_today(app, "2024-01-01", false).await;
    let account = seed(app, "ACME-1", "Acme Widgets", "Billing@Acme.test").await;
    seed(app, "OTHER-1", "Zenith Labs", "ap@zenith.test").await;
    let mut browser = Browser::new(app);

    // Without a session every screen leads to sign-in, keeping where it was going.
    let page = browser.get("/console/invoices?status=3").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location.as_deref(),
        Some("/console/sign-in?next=%2Fconsole%2Finvoices%3Fstatus%3D3")
    );

    // Wrong credentials: refused, no cookie.
    let wrong = Cred {
        token: "dbt_wrong".into(),
        ..app.cred.clone()
    };
    let page = browser
        .post(
            "/console/sign-in",
            &[
                ("AppKey", &wrong.app_key),
                ("UserName", &wrong.user),
                ("AccessToken", &wrong.token),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.set_cookie.is_none());
    assert!(page.text().contains("not accepted"), "{}", page.text());

    let page = browser.sign_in(&app.cred).await;
    let cookie = page.set_cookie.expect("a session cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=28800",
    ] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }

    // Home: the MRR of the two accounts (2 × 300.00).
    let home = browser.get("/console").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.text().contains("MRR USD 600.00 USD"),
        "{}",
        home.text()
    );

    // Search: a name's start in any case, an ExtID, an e-mail in any case.
    for q in ["acme", "ACME-1", "billing@acme.TEST"] {
        let found = browser
            .get(&format!(
                "/console/accounts?q={}",
                form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
            ))
            .await;
        assert_eq!(
            found.texts("tbody td a"),
            vec!["Acme Widgets".to_owned()],
            "search {q:?}"
        );
    }
    let found = browser.get("/console/accounts?q=nobody").await;
    assert!(found.texts("tbody td a").is_empty());

    // The account page: its item with the terms in force, and upsell links.
    let page = browser.get(&format!("/console/accounts/{account}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.texts("h1").contains(&"Acme Widgets".to_owned()));
    let rows = page.texts("section.card tbody tr");
    assert!(
        rows.iter()
            .any(|r| r.contains("Seats") && r.contains("100.00 USD") && r.contains("Active")),
        "{rows:?}"
    );
    let upsell = page
        .attr("a[href$='/upsell']", "href")
        .expect("an upsell link");

    // Bill January, then upsell from the 16th: the preview shows the run of the
    // 16th adding the difference for 16 of 31 days.
    set_today(app, "2024-01-01", true).await;
    let form = browser.get(&upsell).await;
    let csrf = form.csrf();
    let preview = browser
        .post(
            &upsell,
            &[
                ("csrf", &csrf),
                ("step", "preview"),
                ("Quantity", "5"),
                ("EffectiveDate", "2024-01-16"),
                ("ProrationMode", "1"),
            ],
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.text());
    assert!(
        preview.text().contains("bill run dated 2024-01-16"),
        "{}",
        preview.text()
    );
    let cards = preview.texts("section.card");
    assert!(cards[0].contains("No invoice"), "before: {}", cards[0]);
    // Old terms credited, new terms charged, each rounded (BILLING.md §4).
    for expected in ["-154.84 USD", "258.06 USD", "Total 103.22 USD"] {
        assert!(
            cards[1].contains(expected),
            "after: {} lacks {expected}",
            cards[1]
        );
    }
    let (_, before) = app.get("api_code=3&entity_code=110&ExtID=ACME-1-I").await;
    assert_eq!(before["DATA"][0]["Quantity"], json!(3));

    // A bad value is named, and changes nothing.
    let refused = browser
        .post(
            &upsell,
            &[("csrf", &csrf), ("step", "confirm"), ("Quantity", "lots")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.texts(".problem")[0].starts_with("Quantity"),
        "{:?}",
        refused.texts(".problem")
    );

    let done = browser
        .post(
            &upsell,
            &[
                ("csrf", &csrf),
                ("step", "confirm"),
                ("Quantity", "5"),
                ("EffectiveDate", "2024-01-16"),
                ("ProrationMode", "1"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(
        done.location.as_deref(),
        Some(format!("/console/accounts/{account}").as_str())
    );
    let (_, after) = app
        .get("api_code=3&entity_code=110&ExtID=ACME-1-I&IncludeHistory=1")
        .await;
    assert_eq!(
        after["DATA"][0]["History"].as_array().map(Vec::len),
        Some(2),
        "{after}"
    );

    // A dry run for the 16th lists the invoice the run then makes.
    set_today(app, "2024-01-16", false).await;
    let form = browser.get("/console/bill-runs").await;
    let csrf = form.csrf();
    let dry = browser
        .post(
            "/console/bill-runs",
            &[("csrf", &csrf), ("Date", "2024-01-16"), ("step", "dry-run")],
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.text());
    let dry_total = dry
        .texts("main table tbody tr td.num")
        .last()
        .cloned()
        .expect("a dry-run invoice");
    assert_eq!(dry_total, "103.22 USD");
    let (_, invoices) = app
        .get("api_code=3&entity_code=119&AccountExtID=ACME-1")
        .await;
    assert_eq!(
        invoices["TOTAL_COUNT"],
        json!(1),
        "the dry run wrote nothing"
    );

    let started = browser
        .post(
            "/console/bill-runs",
            &[("csrf", &csrf), ("Date", "2024-01-16"), ("step", "run")],
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER);
    let progress = started.location.expect("the run's progress page");
    let mut finished = None;
    for _ in 0..100 {
        let page = browser.get(&progress).await;
        assert_eq!(page.status, StatusCode::OK);
        if page.text().contains("is done") {
            finished = Some(page);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let finished = finished.expect("the bill run finishes");
    assert!(
        finished.text().contains("Invoices 1"),
        "{}",
        finished.text()
    );

    // The new invoice: its page, marked paid, its total as the dry run said.
    let list = browser
        .get("/console/invoices?account=ACME-1&from=2024-01-16")
        .await;
    let link = list
        .attr("tbody td a[href^='/console/invoices/']", "href")
        .expect("the new invoice");
    let invoice = browser.get(&link).await;
    assert!(
        invoice.text().contains(&dry_total),
        "{} lacks {dry_total}",
        invoice.text()
    );
    let csrf = invoice.csrf();
    let paid = browser
        .post(
            &format!("{link}/pay"),
            &[
                ("csrf", &csrf),
                ("PaidDate", "2024-01-20"),
                ("PaymentReference", "WIRE-7"),
            ],
        )
        .await;
    assert_eq!(paid.status, StatusCode::SEE_OTHER);
    let id = link.rsplit('/').next().unwrap();
    let (_, reply) = app
        .get(&format!("api_code=3&entity_code=119&ID={id}"))
        .await;
    assert_eq!(reply["DATA"][0]["InvoiceStatus"], json!(4), "{reply}");
    assert_eq!(reply["DATA"][0]["PaymentReference"], json!("WIRE-7"));

    // Paid twice: refused on the invoice page, named.
    let again = browser
        .post(
            &format!("{link}/pay"),
            &[("csrf", &csrf), ("PaidDate", "2024-01-21")],
        )
        .await;
    assert_eq!(
        again.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        again.text()
    );

    // The account's timeline shows what happened, newest first.
    let page = browser.get(&format!("/console/accounts/{account}")).await;
    let timeline = page.texts("ol.timeline li");
    assert!(timeline[0].contains("invoice.paid"), "{timeline:?}");
    assert!(
        timeline.iter().any(|e| e.contains("recurring_item.upsold")),
        "{timeline:?}"
    );

    // Sign out: the cookie is cleared and the session is gone.
    let csrf = page.csrf();
    let out = browser.post("/console/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.set_cookie.is_some_and(|c| c.contains("Max-Age=0")));
    assert_eq!(browser.get("/console").await.status, StatusCode::SEE_OTHER);
}

async fn a_plan_renewal_and_a_one_time_charge_are_previewed_then_made(app: &TestApp) {
    set_today(app, "2024-01-01", false).await;
    let account = app
        .create_account("R-1", json!({"AccountName": "Renewing Co"}))
        .await;
    let plan = app
        .create_plan(
            "R-1-P",
            "R-1",
            json!({"StartDate": "2024-01-01", "EndDate": "2024-03-01", "AutoRenew": 0}),
        )
        .await;
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 110, "ExtID": "R-1-I", "PlanExtID": "R-1-P",
            "ProductCode": "SEAT", "ItemName": "Seats", "Quantity": 1, "UnitPrice": "40.00", "BillingPeriod": 1,
            "StartDate": "2024-01-01", "EndDate": "2024-03-01"}))
        .await;
    assert_ok(&reply);
    set_today(app, "2024-02-10", true).await;
    let mut browser = Browser::new(app);
    browser.sign_in(&app.cred).await;

    // The renewal: the run of the plan's old end (1 March) bills nothing now,
    // and March's period once renewed.
    let path = format!("/console/plans/{plan}/renew");
    let csrf = browser.get(&path).await.csrf();
    let preview = browser
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("step", "preview"),
                ("RenewalTermMonths", "12"),
            ],
        )
        .await;
    assert_eq!(
        preview.status,
        StatusCode::OK,
        "{} {:?}",
        preview.text(),
        preview.location
    );
    assert!(
        preview.text().contains("bill run dated 2024-03-01"),
        "{}",
        preview.text()
    );
    let cards = preview.texts("section.card");
    assert!(cards[0].contains("No invoice"), "before: {}", cards[0]);
    assert!(
        cards[1].contains("2024-03-01 – 2024-04-01") && cards[1].contains("Total 40.00 USD"),
        "after: {}",
        cards[1]
    );
    let (_, before) = app.get("api_code=3&entity_code=71&ExtID=R-1-P").await;
    assert_eq!(
        before["DATA"][0]["EndDate"],
        json!("2024-03-01"),
        "the preview wrote nothing"
    );
    let done = browser
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("step", "confirm"),
                ("RenewalTermMonths", "12"),
            ],
        )
        .await;
    assert_eq!(
        done.location.as_deref(),
        Some(format!("/console/accounts/{account}").as_str())
    );
    let (_, after) = app.get("api_code=3&entity_code=71&ExtID=R-1-P").await;
    assert_eq!(after["DATA"][0]["EndDate"], json!("2025-03-01"));

    // A one-time charge dated the 20th: the run of the 20th adds it.
    let path = format!("/console/plans/{plan}/one-time");
    let fields = [
        ("csrf", csrf.as_str()),
        ("ExtID", "FEE-1"),
        ("ProductCode", "FEE"),
        ("ItemName", "Onboarding"),
        ("Quantity", "2"),
        ("UnitPrice", "75.50"),
        ("ChargeDate", "2024-02-20"),
    ];
    let preview = browser
        .post(&path, &[&fields[..], &[("step", "preview")]].concat())
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.text());
    let cards = preview.texts("section.card");
    assert!(
        preview.text().contains("bill run dated 2024-02-20"),
        "{}",
        preview.text()
    );
    assert!(
        cards[1].contains("Onboarding") && cards[1].contains("151.00 USD"),
        "after: {}",
        cards[1]
    );
    let (_, none) = app.get("api_code=3&entity_code=75&ExtID=FEE-1").await;
    assert!(
        none["DATA"].as_array().is_none_or(Vec::is_empty),
        "the preview wrote nothing: {none}"
    );
    let done = browser
        .post(&path, &[&fields[..], &[("step", "confirm")]].concat())
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let made = app.get_one("api_code=3&entity_code=75&ExtID=FEE-1").await;
    assert_eq!(made["UnitPrice"], json!(75.5), "{made}");
    assert_eq!(made["Quantity"], json!(2));
}

async fn a_plan_cancellation_is_previewed_and_the_run_makes_what_it_showed(app: &TestApp) {
    set_today(app, "2024-01-01", false).await;
    seed(app, "C-1", "Cancelling Co", "ap@cancel.test").await;
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 75, "ExtID": "C-1-FEE", "PlanExtID": "C-1-P",
            "ProductCode": "FEE", "ItemName": "Late fee", "Quantity": 1, "UnitPrice": "20.00", "ChargeDate": "2024-02-20"}))
        .await;
    assert_ok(&reply);
    set_today(app, "2024-02-01", true).await;
    set_today(app, "2024-02-10", false).await;
    let plan = app.get_one("api_code=3&entity_code=71&ExtID=C-1-P").await["ID"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut browser = Browser::new(app);
    browser.sign_in(&app.cred).await;
    let path = format!("/console/plans/{plan}/cancel");
    let csrf = browser.get(&path).await.csrf();
    let fields = [
        ("csrf", csrf.as_str()),
        ("CancelDate", "2024-02-15"),
        ("CreditMode", "1"),
    ];
    let preview = browser
        .post(&path, &[&fields[..], &[("step", "preview")]].concat())
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.text());
    assert!(
        preview.text().contains("bill run dated 2024-02-15"),
        "{}",
        preview.text()
    );
    let cards = preview.texts("section.card");
    assert!(cards[0].contains("No invoice"), "before: {}", cards[0]);
    // February's unused days credited; the fee charged after the end dropped.
    assert!(
        cards[1].contains("Cancellation credit") && !cards[1].contains("Late fee"),
        "after: {}",
        cards[1]
    );
    let total = cards[1]
        .split("Total ")
        .nth(1)
        .expect("a total")
        .trim()
        .to_owned();
    let (_, plans) = app.get("api_code=3&entity_code=71&ExtID=C-1-P").await;
    assert_eq!(
        plans["DATA"][0]["CancelDate"],
        json!(null),
        "the preview wrote nothing"
    );

    let done = browser
        .post(&path, &[&fields[..], &[("step", "confirm")]].concat())
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    set_today(app, "2024-02-15", true).await;
    let (_, invoices) = app
        .get("api_code=3&entity_code=119&AccountExtID=C-1&InvoiceDateFrom=2024-02-15")
        .await;
    let made = &invoices["DATA"][0];
    assert_eq!(invoices["TOTAL_COUNT"], json!(1), "{invoices}");
    assert_eq!(
        format!("{} USD", made["Total"]),
        total,
        "the run made what the preview showed"
    );
}

async fn the_console_keeps_tenants_apart_and_refuses_forged_forms(app: &TestApp) {
    set_today(app, "2024-01-01", false).await;
    let account = seed(app, "A-1", "Alpha", "a@alpha.test").await;
    set_today(app, "2024-01-01", true).await;
    let (_, reply) = app.get("api_code=3&entity_code=119&AccountExtID=A-1").await;
    let invoice = reply["DATA"][0]["ID"]
        .as_str()
        .expect("an invoice")
        .to_owned();

    let other = app.new_tenant("other").await;
    let mut intruder = Browser::new(app);
    intruder.sign_in(&other).await;
    for path in [
        format!("/console/accounts/{account}"),
        format!("/console/invoices/{invoice}"),
        format!("/console/invoices/{invoice}/pdf"),
    ] {
        let page = intruder.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
    }
    let found = intruder.get("/console/accounts?q=alpha").await;
    assert!(found.texts("tbody td a").is_empty());
    let list = intruder.get("/console/invoices").await;
    assert!(list.text().contains("0 invoices"), "{}", list.text());
    let csrf = intruder.get("/console/bill-runs").await.csrf();
    let page = intruder
        .post(
            &format!("/console/invoices/{invoice}/cancel"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);

    // The owner's forms need the owner's token: none, another session's, or a
    // made-up one is refused, and nothing changes.
    let mut owner = Browser::new(app);
    owner.sign_in(&app.cred).await;
    for token in [None, Some(csrf.as_str()), Some("00")] {
        let mut fields = vec![("CancelReason", "forged")];
        if let Some(token) = token {
            fields.push(("csrf", token));
        }
        let page = owner
            .post(&format!("/console/invoices/{invoice}/cancel"), &fields)
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "token {token:?}");
    }
    let (_, reply) = app
        .get(&format!("api_code=3&entity_code=119&ID={invoice}"))
        .await;
    assert_eq!(reply["DATA"][0]["InvoiceStatus"], json!(3), "still Posted");

    // A cookie altered by one character opens nothing, and is cleared.
    let mut forger = Browser::new(app);
    let cookie = owner.cookie.clone().expect("a cookie");
    let mut altered = cookie.clone().into_bytes();
    let last = altered.len() - 2;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    forger.cookie = Some(String::from_utf8(altered).unwrap());
    let page = forger.get("/console").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.set_cookie.is_some_and(|c| c.contains("Max-Age=0")));

    // A session is only as good as its credential: once the user is gone (no
    // request can remove one yet: SQL stands in), its session ends.
    let extra = app
        .app
        .add_api_user(&app.cred.app_key, "clerk")
        .await
        .expect("a second user");
    let clerk = Cred {
        app_key: extra.app_key.clone(),
        user: extra.user_name.clone(),
        token: extra.access_token.clone(),
    };
    let mut session = Browser::new(app);
    session.sign_in(&clerk).await;
    assert_eq!(session.get("/console").await.status, StatusCode::OK);
    app.execute_sql("DELETE FROM api_users WHERE user_name = 'clerk'")
        .await;
    tokio::time::sleep(std::time::Duration::from_secs(6)).await; // past the credential cache
    assert_eq!(session.get("/console").await.status, StatusCode::SEE_OTHER);
}

async fn an_invoice_pdf_is_the_same_bytes_each_time_and_says_what_the_invoice_says(app: &TestApp) {
    set_today(app, "2024-01-01", false).await;
    seed(app, "P-1", "Pdf Customer GmbH", "ap@pdf.test").await;
    // Text beyond Latin-1 prints in the built-in font: Cyrillic, Greek, signs.
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 75, "ExtID": "SETUP-1", "PlanExtID": "P-1-P",
            "ProductCode": "SETUP", "ItemName": "Setup fee — Настройка · Ρύθμιση ≥ 1", "Quantity": 1, "UnitPrice": "1234.56", "ChargeDate": "2024-01-01"}))
        .await;
    assert_ok(&reply);
    set_today(app, "2024-01-01", true).await;
    let (_, reply) = app
        .get("api_code=3&entity_code=119&AccountExtID=P-1&IncludeLines=1")
        .await;
    let invoice = &reply["DATA"][0];
    let id = invoice["ID"].as_str().unwrap();
    let number = invoice["InvoiceNumber"].as_str().unwrap().to_owned();

    let mut browser = Browser::new(app);
    browser.sign_in(&app.cred).await;
    let (status, kind, first) = browser
        .get_bytes(&format!("/console/invoices/{id}/pdf"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kind, "application/pdf");
    assert!(first.starts_with(b"%PDF-"));
    let (_, _, second) = browser
        .get_bytes(&format!("/console/invoices/{id}/pdf"))
        .await;
    assert_eq!(
        first, second,
        "two renders of one invoice are byte-identical"
    );

    // The REST face serves the same document; another tenant gets a 404.
    let response = app
        .client
        .get(format!("{}/v1/invoices/{id}/pdf", app.base))
        .header("AppKey", &app.cred.app_key)
        .header("UserName", &app.cred.user)
        .header("AccessToken", &app.cred.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().to_vec(), first);
    let other = app.new_tenant("other").await;
    let (status, _, _) = app
        .rest_as(&other, "GET", &format!("/v1/invoices/{id}/pdf"), None, &[])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let Some(text) = pdf_text(
        &format!(
            "invoice-{}",
            app.database_url.split(':').next().unwrap_or("db")
        ),
        &first,
    ) else {
        return;
    };
    for expected in [
        number.as_str(),
        "Pdf Customer GmbH",
        "300.00",
        "1,234.56",
        "1,534.56 USD",
        "Seats",
        "Setup fee — Настройка · Ρύθμιση ≥ 1",
    ] {
        assert!(
            text.contains(expected),
            "the PDF's text lacks {expected:?}:\n{text}"
        );
    }
}

/// An invoice of 101 lines runs over numbered pages, every line on one of them.
async fn a_long_invoice_pdf_runs_over_numbered_pages(app: &TestApp) {
    set_today(app, "2024-01-01", false).await;
    seed(app, "L-1", "Long Customer", "ap@long.test").await;
    for n in 0..100 {
        let (_, reply) = app
            .post(json!({"api_code": 10, "entity_code": 75, "ExtID": format!("L-OT-{n}"), "PlanExtID": "L-1-P",
                "ProductCode": "EXTRA", "ItemName": format!("Extra {n:03}"), "Quantity": 1, "UnitPrice": "1.00",
                "ChargeDate": "2024-01-01"}))
            .await;
        assert_ok(&reply);
    }
    set_today(app, "2024-01-01", true).await;
    let (_, reply) = app.get("api_code=3&entity_code=119&AccountExtID=L-1").await;
    let id = reply["DATA"][0]["ID"].as_str().unwrap().to_owned();
    let mut browser = Browser::new(app);
    browser.sign_in(&app.cred).await;
    let (status, _, pdf) = browser
        .get_bytes(&format!("/console/invoices/{id}/pdf"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let Some(text) = pdf_text(
        &format!(
            "invoice-long-{}",
            app.database_url.split(':').next().unwrap_or("db")
        ),
        &pdf,
    ) else {
        return;
    };
    let pages = text.matches("Page ").count();
    assert!(pages >= 2, "a long invoice runs over pages:\n{text}");
    for page in 1..=pages {
        assert!(
            text.contains(&format!("Page {page} / {pages}")),
            "page {page} of {pages} is numbered:\n{text}"
        );
    }
    for n in 0..100 {
        assert!(
            text.contains(&format!("Extra {n:03}")),
            "line {n} is printed"
        );
    }
    assert!(text.contains("400.00 USD"), "the total:\n{text}");
}

/// A template naming a fallback font: a Chinese invoice, its words and the
/// customer's name printed in that font (Droid Sans Fallback, Debian's
/// `fonts-droid-fallback`, which `.ci/run` installs), the rest in the built-in
/// one, and all of it read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_with_its_own_font_prints_chinese() {
    let font = std::path::Path::new("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf");
    if !font.exists() {
        assert!(
            std::env::var_os("DYNABILL_TEST_REQUIRE_PDFTOTEXT").is_none(),
            "DYNABILL_TEST_REQUIRE_PDFTOTEXT is set but {} is missing (apt-get install fonts-droid-fallback)",
            font.display()
        );
        eprintln!("skipped: {} missing", font.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let template = format!(
        "title = \"发票\"\nseller = [\"北京示例科技有限公司\"]\n[labels]\namount_due = \"应付金额\"\n[fonts]\nfallback = \"{}\"\n",
        font.display()
    );
    std::fs::write(dir.path().join("invoice.toml"), template).unwrap();
    let template =
        dynabill_http::pdf::InvoiceTemplate::from_file(&dir.path().join("invoice.toml")).unwrap();
    let options = dynabill_http::HttpOptions {
        invoice_template: Some(template),
        ..dynabill_http::HttpOptions::default()
    };
    let Some(app) =
        crate::helpers::spawn_with_options_and_test_clock(crate::helpers::Backend::Sqlite, options)
            .await
    else {
        return;
    };
    set_today(&app, "2024-01-01", false).await;
    seed(&app, "CN-1", "上海客户有限公司", "ap@cn.test").await;
    set_today(&app, "2024-01-01", true).await;
    let (_, reply) = app
        .get("api_code=3&entity_code=119&AccountExtID=CN-1")
        .await;
    let id = reply["DATA"][0]["ID"].as_str().unwrap().to_owned();
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.cred).await;
    let (status, _, pdf) = browser
        .get_bytes(&format!("/console/invoices/{id}/pdf"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let Some(text) = pdf_text("invoice-chinese", &pdf) else {
        return;
    };
    for expected in [
        "发票",
        "北京示例科技有限公司",
        "上海客户有限公司",
        "应付金额",
        "300.00 USD",
    ] {
        assert!(
            text.contains(expected),
            "the PDF's text lacks {expected:?}:\n{text}"
        );
    }
}

/// A template whose font is missing or is no TrueType font is refused, naming it.
#[test]
fn a_template_with_a_bad_font_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("not-a-font.ttf"), b"hello").unwrap();
    for (font, expected) in [
        ("missing.ttf", "missing.ttf"),
        ("not-a-font.ttf", "not a font file"),
    ] {
        let text = format!("[fonts]\nregular = \"{font}\"\n");
        let error = dynabill_http::pdf::InvoiceTemplate::from_toml(&text, dir.path()).unwrap_err();
        assert!(error.contains(expected), "{error}");
    }
    let error =
        dynabill_http::pdf::InvoiceTemplate::from_toml("[fonts]\nbold = \"x.ttf\"\n", dir.path())
            .unwrap_err();
    assert!(error.contains("without `regular`"), "{error}");
}

/// The text of a PDF as `pdftotext` (poppler-utils) reads it; `None` when it is
/// not installed and not required (`DYNABILL_TEST_REQUIRE_PDFTOTEXT`). The
/// document is kept as `target/console-screenshots/{name}.pdf` (an artifact).
fn pdf_text(name: &str, pdf: &[u8]) -> Option<String> {
    let kept = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/console-screenshots");
    std::fs::create_dir_all(&kept).unwrap();
    let path = kept.join(format!("{name}.pdf"));
    std::fs::write(&path, pdf).unwrap();
    match std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "pdftotext failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        Err(_) if std::env::var_os("DYNABILL_TEST_REQUIRE_PDFTOTEXT").is_none() => {
            eprintln!("skipped: pdftotext not installed (apt-get install poppler-utils)");
            None
        }
        Err(e) => panic!("DYNABILL_TEST_REQUIRE_PDFTOTEXT is set but pdftotext does not run: {e}"),
    }
}
