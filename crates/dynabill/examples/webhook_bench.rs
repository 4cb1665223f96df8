//! Webhook benchmark: N events delivered to a local receiver that answers at once,
//! through the real worker (fan-out, claims, signing, attempts), on a fresh
//! database; then the same with the receiver down, to show that pending
//! deliveries wait in the database, not in memory.
//!
//! ```sh
//! cargo run --release --example webhook_bench -- --events 20000 [--database-url URL]
//! ```
//!
//! Prints deliveries per second, and the process's resident memory before and
//! after queueing N events for a receiver that refuses connections, as JSON.

#![expect(clippy::float_arithmetic, reason = "timings and rates, never amounts")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dynabill_app::model::{
    AccountPatch, DeliveryFilter, DeliveryStatus, PageRequest, Tenant, WebhookEndpointFields,
};
use dynabill_app::{App, SystemClock};
use dynabill_core::domain::{AccountStatus, AccountType};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Resident memory of this process, in MiB (Linux).
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// `count` account creates: `count` events.
async fn changes(app: &App, tenant: &Tenant, prefix: &str, count: u64) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let app = app.clone();
        let tenant = tenant.clone();
        let prefix = prefix.to_owned();
        tasks.spawn(async move {
            for n in (worker..count).step_by(8) {
                app.upsert_account(
                    &tenant,
                    None,
                    AccountPatch {
                        ext_id: Some(format!("{prefix}{n}")),
                        name: Some(format!("Account {n}")),
                        account_type: Some(AccountType::Business),
                        status: Some(AccountStatus::Active),
                        email: Some("billing@example.com".parse().expect("an e-mail")),
                        ..AccountPatch::default()
                    },
                )
                .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

async fn delivered(app: &App, tenant: &Tenant, endpoint: i64) -> anyhow::Result<i64> {
    let filter = DeliveryFilter {
        endpoint_id: Some(endpoint),
        status: Some(DeliveryStatus::Delivered),
        ..DeliveryFilter::default()
    };
    let page = app
        .list_webhook_deliveries(tenant, &filter, PageRequest::first(1))
        .await?;
    Ok(page.total)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    dynabill::install_crypto_provider();
    let events: u64 = arg("--events").map_or(Ok(20_000), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let url = arg("--database-url")
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let store = dynabill::storage::open(&url).await?;
    let keyring = dynabill_app::secrets::Keyring::generate()?;
    let app = App::new(store, Arc::new(SystemClock))
        .with_private_webhooks()
        .with_keyring(keyring);
    let issued = app.create_tenant("bench", "USD", "UTC", "api").await?;
    let tenant = app.tenant_by_app_key(&issued.app_key).await?;

    // A receiver that answers 204 at once, counting what it got.
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver_url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let fields = |url: &str| WebhookEndpointFields {
        url: url.to_owned(),
        description: None,
        event_types: None,
        enabled: true,
    };
    let up = app
        .create_webhook_endpoint(&tenant, &fields(&receiver_url))
        .await?
        .endpoint;

    // Queue N events with the worker stopped, then time the worker through them.
    changes(&app, &tenant, "A", events).await?;
    let options = dynabill::webhooks::WorkerOptions {
        allow_private: true,
        ..dynabill::webhooks::WorkerOptions::default()
    };
    let started = Instant::now();
    let worker = dynabill::webhooks::spawn(app.clone(), options)?;
    while delivered(&app, &tenant, up.id).await? < i64::try_from(events)? {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seconds = started.elapsed().as_secs_f64();

    // The receiver down (a port nobody listens on): deliveries pile up pending.
    app.update_webhook_endpoint(
        &tenant,
        up.id,
        &dynabill_app::model::WebhookEndpointPatch {
            enabled: Some(false),
            ..Default::default()
        },
    )
    .await?;
    let down = app
        .create_webhook_endpoint(&tenant, &fields("http://127.0.0.1:9/hook"))
        .await?
        .endpoint;
    let rss_before = rss_mib();
    changes(&app, &tenant, "B", events).await?;
    // Let the worker fan them out and try them once.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss_after = rss_mib();
    let pending = app
        .list_webhook_deliveries(
            &tenant,
            &DeliveryFilter {
                endpoint_id: Some(down.id),
                ..DeliveryFilter::default()
            },
            PageRequest::first(1),
        )
        .await?
        .total;
    worker.stop().await;
    app.store().close().await;

    let backend = if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    };
    let report = serde_json::json!({
        "backend": backend,
        "events": events,
        "received": received.load(Ordering::Relaxed),
        "delivery_seconds": (seconds * 1000.0).round() / 1000.0,
        "deliveries_per_second": (events as f64 / seconds).round(),
        "receiver_down_queued": pending,
        "rss_mib_before_queueing": (rss_before * 10.0).round() / 10.0,
        "rss_mib_after_queueing": (rss_after * 10.0).round() / 10.0,
    });
    println!("{report}");
    Ok(())
}
