//! The console in a real browser: headless Chromium driven by ChromeDriver
//! (W3C WebDriver, spoken here over HTTP with a few calls) against a real server
//! on loopback. A user signs in, finds an account, upsells an item through its
//! preview, runs a dry run then the bill run, opens the invoice, marks it paid
//! and downloads its PDF; another tenant's page and a form without its CSRF
//! token are refused. Each screen is kept as a PNG under
//! `target/console-screenshots/` (a test artifact, not committed).
//!
//! Skipped when Chromium or ChromeDriver is missing, unless
//! `DYNABILL_TEST_REQUIRE_CHROMIUM` is set (CI installs both).

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use super::console::set_today;
use crate::helpers::{Backend, assert_ok};

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A WebDriver session on a ChromeDriver of its own.
struct Driver {
    http: reqwest::Client,
    session: String,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

impl Driver {
    async fn start(chromium: PathBuf, chromedriver: PathBuf) -> Driver {
        let port = {
            let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            socket.local_addr().unwrap().port()
        };
        let driver = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting chromedriver");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--no-first-run", "--disable-background-networking", "--window-size=1280,1000",
                        format!("--user-data-dir={}", profile.path().display())],
                },
            }}}))
            .send()
            .await
            .expect("a WebDriver session")
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        let shots =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Driver {
            http,
            session: format!("{base}/session/{session}"),
            _driver: driver,
            _profile: profile,
            shots,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply: Value = request
            .send()
            .await
            .expect("a WebDriver call")
            .json()
            .await
            .unwrap();
        if reply["value"].get("error").is_some() {
            panic!("WebDriver {path}: {reply}");
        }
        reply["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found[ELEMENT].as_str().expect("an element").to_owned()
    }

    async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        // Whitespace folded: the browser puts each block on a line of its own.
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Clicks a link or a submit button and waits for the page it leads to:
    /// the clicked element gone (the old page unloaded), the new one loaded.
    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
        for _ in 0..100 {
            let probe: Value = self
                .http
                .get(format!("{}/element/{id}/name", self.session))
                .send()
                .await
                .expect("a WebDriver call")
                .json()
                .await
                .unwrap();
            if probe["value"].get("error").is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for _ in 0..100 {
            let state = self
                .call(
                    reqwest::Method::POST,
                    "/execute/sync",
                    Some(json!({"script": "return document.readyState", "args": []})),
                )
                .await;
            if state == "complete" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page after clicking {css} did not load");
    }

    async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The session cookie as the browser holds it (WebDriver sees `HttpOnly` ones).
    async fn cookie(&self) -> String {
        let cookies = self.call(reqwest::Method::GET, "/cookie", None).await;
        let cookie = cookies
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == "dynabill_console")
            .expect("the session cookie");
        assert_eq!(cookie["httpOnly"], json!(true));
        assert_eq!(cookie["sameSite"], json!("Strict"));
        format!("dynabill_console={}", cookie["value"].as_str().unwrap())
    }

    async fn screenshot(&self, name: &str) {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("a PNG");
        std::fs::write(self.shots.join(format!("{name}.png")), bytes).unwrap();
    }

    async fn quit(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_billing_clerk_works_through_the_console_in_chromium() {
    let tools = (
        on_path(&["chromium", "chromium-browser"]),
        on_path(&["chromedriver"]),
    );
    let (Some(chromium), Some(chromedriver)) = tools else {
        assert!(
            std::env::var_os("DYNABILL_TEST_REQUIRE_CHROMIUM").is_none(),
            "DYNABILL_TEST_REQUIRE_CHROMIUM is set but chromium or chromedriver is not on the PATH"
        );
        eprintln!(
            "skipped: chromium or chromedriver not installed (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let Some(app) = crate::helpers::spawn_with_test_clock_alone(Backend::Sqlite).await else {
        return;
    };
    set_today(&app, "2024-01-01", false).await;
    let account = app
        .create_account(
            "ACME-7",
            json!({"AccountName": "Acme Rockets", "Email": "ap@acme.test"}),
        )
        .await;
    app.create_plan(
        "ACME-7-P",
        "ACME-7",
        json!({"StartDate": "2024-01-01", "PlanName": "Launch"}),
    )
    .await;
    let (_, reply) = app
        .post(json!({"api_code": 10, "entity_code": 110, "ExtID": "ACME-7-I", "PlanExtID": "ACME-7-P",
            "ProductCode": "SEAT", "ItemName": "Seats", "Quantity": 2, "UnitPrice": "50.00", "BillingPeriod": 1,
            "StartDate": "2024-01-01"}))
        .await;
    assert_ok(&reply);
    set_today(&app, "2024-01-01", true).await;
    set_today(&app, "2024-01-11", false).await;
    let other = app.new_tenant("elsewhere").await;
    let foreign = app
        .create_account_as(&other, "THEIRS", json!({"AccountName": "Not yours"}))
        .await;

    let browser = Driver::start(chromium, chromedriver).await;
    let base = &app.base;

    // Sign in: the sign-in page first, then home.
    browser.open(&format!("{base}/console/accounts")).await;
    assert!(browser.url().await.contains("/console/sign-in"));
    browser.screenshot("01-sign-in").await;
    browser
        .type_into("input[name=AppKey]", &app.cred.app_key)
        .await;
    browser
        .type_into("input[name=UserName]", &app.cred.user)
        .await;
    browser
        .type_into("input[name=AccessToken]", &app.cred.token)
        .await;
    browser.click("form button[type=submit]").await;
    assert!(
        browser.url().await.ends_with("/console/accounts"),
        "{}",
        browser.url().await
    );
    browser.open(&format!("{base}/console")).await;
    assert!(browser.text("main").await.contains("MRR USD"));
    browser.screenshot("02-home").await;

    // Find the account and open it.
    browser.open(&format!("{base}/console/accounts")).await;
    browser.type_into("input[name=q]", "acme").await;
    browser.click("form[role=search] button").await;
    browser.screenshot("03-accounts").await;
    browser.click("tbody td a").await;
    assert!(
        browser
            .url()
            .await
            .ends_with(&format!("/console/accounts/{account}"))
    );
    assert!(browser.text("h1").await.contains("Acme Rockets"));
    browser.screenshot("04-account").await;

    // Upsell the item from today (the 11th): the preview, then the confirmation.
    browser.click("a[href$='/upsell']").await;
    browser.type_into("input[name=Quantity]", "4").await;
    browser.type_into("input[name=ProrationMode]", "1").await;
    browser.click("main form button[type=submit]").await;
    let preview = browser.text("main").await;
    assert!(
        preview.contains("After this change") && preview.contains("Proration charge"),
        "{preview}"
    );
    browser.screenshot("05-upsell-preview").await;
    browser.click("main form.actions button[type=submit]").await;
    assert!(
        browser
            .url()
            .await
            .ends_with(&format!("/console/accounts/{account}"))
    );
    assert!(browser.text("section.card tbody").await.contains("4"));

    // A dry run for today, then the run, followed to its end.
    browser.open(&format!("{base}/console/bill-runs")).await;
    browser.click("button[value=dry-run]").await;
    let dry = browser.text("main").await;
    assert!(
        dry.contains("Dry run for 2024-01-11") && dry.contains("Invoices 1"),
        "{dry}"
    );
    browser.screenshot("06-dry-run").await;
    browser.click("button[value=run]").await;
    let mut done = false;
    for _ in 0..50 {
        if browser.text("main").await.contains("is done") {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        done,
        "the bill run finishes: {}",
        browser.text("main").await
    );
    browser.screenshot("07-bill-run").await;

    // Its invoice: open, mark paid, download.
    browser.click("main a[href^='/console/invoices?']").await;
    browser
        .click("tbody td a[href^='/console/invoices/']")
        .await;
    let invoice_url = browser.url().await;
    browser
        .type_into("input[name=PaymentReference]", "WIRE-11")
        .await;
    browser.click("form[action$='/pay'] button").await;
    assert!(
        browser.text("main").await.contains("Paid"),
        "{}",
        browser.text("main").await
    );
    browser.screenshot("08-invoice-paid").await;
    let cookie = browser.cookie().await;
    let pdf = app
        .client
        .get(format!("{invoice_url}/pdf"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), 200);
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-"));

    // Another tenant's account: not found. A form without its token: refused.
    browser
        .open(&format!("{base}/console/accounts/{foreign}"))
        .await;
    assert!(browser.text("h1").await.contains("Not found"));
    browser.screenshot("09-foreign-account").await;
    let forged = app
        .client
        .post(format!("{invoice_url}/cancel"))
        .header("Cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("CancelReason=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    browser.quit().await;
    app.stop().await;
}
