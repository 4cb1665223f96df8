//! Console benchmark: the server time of the console's screens on a seeded
//! book (issue 17: home, account search, account page, invoice list, invoice
//! page, invoice PDF).
//!
//! ```sh
//! cargo run --release --example bill_run_bench -- --accounts 100000 --seed-only --database-url URL
//! dynabill bill-run --date 2024-01-01 --app-key KEY --database-url URL
//! cargo run --release --example console_bench -- --database-url URL --app-key KEY [--requests 50]
//! ```
//!
//! It starts the real server on the database (with a fresh secret key, for the
//! session cookie), adds an API user to the tenant, signs in through
//! `/console/sign-in`, and requests each screen `--requests` times, one request
//! at a time, on loopback: varied accounts and invoices (spread over the book),
//! searches by a name's start, ExtID and e-mail. Home is requested once first
//! (its insights are computed then, in the background; the timed requests show
//! them from the cache, as users do). Prints one JSON line per screen: p50, p90
//! and max in milliseconds, the time to the whole answer; then the process's
//! peak resident memory (server and client together).

#![expect(clippy::float_arithmetic, reason = "timings, never amounts")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use dynabill::server::RunningServer;
use dynabill_app::{App, SystemClock};

#[path = "common/mod.rs"]
mod common;
use common::{arg, peak_rss_mib};

struct Session {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Session {
    async fn time(&self, path: &str) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("Cookie", &self.cookie)
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        let took = started.elapsed();
        anyhow::ensure!(status.is_success(), "{path}: {status}");
        anyhow::ensure!(!body.is_empty(), "{path}: an empty answer");
        Ok(took)
    }
}

fn report(screen: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| (d.as_secs_f64() * 10_000.0).round() / 10.0;
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{}",
        serde_json::json!({"screen": screen, "requests": times.len(),
            "p50_ms": ms(at(0.5)), "p90_ms": ms(at(0.9)), "max_ms": ms(at(1.0))})
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = arg("--database-url").ok_or_else(|| anyhow::anyhow!("--database-url is required"))?;
    let key = arg("--app-key").ok_or_else(|| anyhow::anyhow!("--app-key is required"))?;
    let requests: usize = arg("--requests").map_or(Ok(50), |r| r.parse())?;
    dynabill::install_crypto_provider();
    let store = dynabill::storage::open(&url).await?;
    let app = App::new(store, Arc::new(SystemClock))
        .with_keyring(dynabill_app::secrets::Keyring::generate()?);
    let tenant = app.tenant_by_app_key(&key).await?;
    let user = format!("console-{}", std::process::id());
    let issued = app.add_api_user(&key, &user).await?;
    let server = RunningServer::start(
        app.clone(),
        "127.0.0.1:0".parse()?,
        dynabill_http::HttpOptions::default(),
    )
    .await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let base = server.url();
    let form = format!(
        "AppKey={}&UserName={}&AccessToken={}",
        issued.app_key, issued.user_name, issued.access_token
    );
    let signed_in = http
        .post(format!("{base}/console/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await?;
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow::anyhow!("no session cookie: {}", signed_in.status()))?
        .to_owned();
    let session = Session { http, base, cookie };

    let accounts = app
        .list_accounts(
            &tenant,
            &Default::default(),
            dynabill_app::model::PageRequest::first(1),
        )
        .await?
        .total
        .max(1);
    let invoices = app
        .list_invoices(
            &tenant,
            &Default::default(),
            dynabill_app::model::PageRequest::first(1),
            false,
        )
        .await?
        .total;
    eprintln!("{accounts} accounts, {invoices} invoices");
    // Spread over the book: account IDs 1..=accounts (as bill_run_bench seeds them).
    let spread = |n: usize, of: i64| ((n as i64 * 7919) % of.max(1)) + 1;

    let first_home = Instant::now();
    session.time("/console").await?;
    eprintln!(
        "home, first request: {:.1} ms",
        first_home.elapsed().as_secs_f64() * 1000.0
    );
    // Let the background computation of Home's insights finish.
    let waiting = Instant::now();
    loop {
        let page = session
            .http
            .get(format!("{}/console", session.base))
            .header("Cookie", &session.cookie)
            .send()
            .await?
            .text()
            .await?;
        if page.contains("as computed at") || waiting.elapsed() > Duration::from_secs(600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "home's insights computed in about {:.1} s",
        waiting.elapsed().as_secs_f64()
    );

    let mut screens: Vec<(&str, Vec<String>)> = vec![
        (
            "home",
            (0..requests).map(|_| "/console".to_owned()).collect(),
        ),
        (
            "account search (name start)",
            (0..requests)
                .map(|n| format!("/console/accounts?q=Account+{}", spread(n, accounts)))
                .collect(),
        ),
        (
            "account search (ExtID)",
            (0..requests)
                .map(|n| format!("/console/accounts?q=A{}", spread(n, accounts) - 1))
                .collect(),
        ),
        (
            "account search (e-mail, every account shares it)",
            (0..requests)
                .map(|_| "/console/accounts?q=billing%40example.com".to_owned())
                .collect(),
        ),
        (
            "account page",
            (0..requests)
                .map(|n| format!("/console/accounts/{}", spread(n, accounts)))
                .collect(),
        ),
        (
            "invoice list",
            (0..requests)
                .map(|_| "/console/invoices".to_owned())
                .collect(),
        ),
        (
            "invoice list (Posted, a date range)",
            (0..requests)
                .map(|_| "/console/invoices?status=3&from=2024-01-01&to=2024-01-31".to_owned())
                .collect(),
        ),
    ];
    if invoices > 0 {
        screens.push((
            "invoice page",
            (0..requests)
                .map(|n| format!("/console/invoices/{}", spread(n, invoices)))
                .collect(),
        ));
        screens.push((
            "invoice PDF",
            (0..requests)
                .map(|n| format!("/console/invoices/{}/pdf", spread(n, invoices)))
                .collect(),
        ));
    }
    for (screen, paths) in screens {
        let mut times = Vec::with_capacity(paths.len());
        for path in &paths {
            times.push(session.time(path).await?);
        }
        report(screen, times);
    }
    println!("{}", serde_json::json!({"peak_rss_mib": peak_rss_mib()}));
    server.shutdown().await?;
    Ok(())
}
