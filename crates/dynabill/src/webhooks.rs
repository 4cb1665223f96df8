//! The webhook worker of `serve` (ARCHITECTURE.md, "Webhooks"): it queues each
//! committed event for every endpoint that takes it (a cursor per endpoint, moved
//! in the transaction that writes the deliveries), then sends the due deliveries,
//! signed per the Standard Webhooks specification, and records every attempt.
//!
//! Every server runs one; they share the work through the database: a delivery is
//! claimed with a lease before it is sent, so no two servers send it at once, and
//! one whose sender died is sent again once its lease expires (at least once: a
//! receiver deduplicates by `webhook-id`). Nothing waits in memory: a receiver
//! that is down leaves its deliveries pending in the database.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dynabill_app::App;
use dynabill_app::model::{
    ClaimedDelivery, DeliveryNext, EventFilter, NewDelivery, PageRequest, Tenant, WebhookAttempt,
};
use dynabill_app::webhooks::is_private;
use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sha2::Sha256;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The delay before each retry, after the first attempt (made at once): 8
/// attempts over about a day and a half. Each delay is jittered by up to 10%.
const RETRY_DELAYS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
/// An endpoint failing for this long is disabled.
const FAILING_FOR: Duration = Duration::from_secs(5 * 24 * 3600);
/// How long one attempt may take.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// How long a claim on a delivery lasts by default: longer than an attempt.
pub const LEASE: Duration = Duration::from_secs(60);
/// Deliveries claimed (and sent at once) per round.
const CLAIM: u32 = 32;
/// Events read per round of an endpoint's fan-out.
const FAN_OUT_PAGE: u32 = 500;
/// How much of an answer's body an attempt keeps.
const RESPONSE_KEPT: usize = 1024;
/// How long the worker sleeps when it found nothing to do.
const IDLE: Duration = Duration::from_millis(200);

#[derive(Clone, Copy, Debug)]
pub struct WorkerOptions {
    /// Let endpoints be loopback or private addresses (`--allow-private-webhooks`).
    pub allow_private: bool,
    /// How long a claim lasts (`--webhook-lease-seconds`): after a crash, how
    /// long its claimed deliveries wait before another sender takes them. Kept
    /// above [`TIMEOUT`], a claim outlives its attempt; shorter (tests), an
    /// attempt still in flight when its claim lapses may be sent twice at once.
    pub lease: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            allow_private: false,
            lease: LEASE,
        }
    }
}

pub struct Worker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Worker {
    /// Stops after the round in progress (its attempts are recorded).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Resolves endpoint hosts, refusing names that resolve only to private
/// addresses (a name that resolves to one is not reachable through it: the
/// connection goes to the public addresses alone).
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| !is_private(addr.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client of deliveries: 15 s per attempt, no redirects followed, TLS
/// with the bundled roots, and (unless private webhooks are allowed) no private
/// address reached.
pub fn client(options: WorkerOptions) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(dynabill_avatax::tls_config()?)
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("dynabill-webhooks/", env!("CARGO_PKG_VERSION")));
    if !options.allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    Ok(builder.build()?)
}

pub fn spawn(app: App, options: WorkerOptions) -> anyhow::Result<Worker> {
    let client = client(options)?;
    let owner = format!(
        "{}-{}",
        std::process::id(),
        Timestamp::now().as_microsecond()
    );
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            if *stopped.borrow() {
                return;
            }
            let busy = match round(&app, &client, &owner, options).await {
                Ok(busy) => busy,
                Err(e) => {
                    tracing::warn!(error = %e, "webhooks: a round failed");
                    false
                }
            };
            if !busy {
                tokio::select! {
                    () = tokio::time::sleep(IDLE) => {}
                    _ = stopped.changed() => return,
                }
            }
        }
    });
    Ok(Worker { stop, task })
}

/// One round: fan out what is new, send what is due. True if it did anything.
async fn round(
    app: &App,
    client: &reqwest::Client,
    owner: &str,
    options: WorkerOptions,
) -> anyhow::Result<bool> {
    let queued = fan_out(app).await?;
    let sent = deliver(app, client, owner, options).await?;
    Ok(queued > 0 || sent > 0)
}

/// Queues the events each enabled endpoint has not been given yet, a page at a
/// time. Returns how many deliveries it queued.
async fn fan_out(app: &App) -> anyhow::Result<usize> {
    let behind = app.store().endpoints_behind().await?;
    if behind.is_empty() {
        return Ok(0);
    }
    let tenants: HashMap<i64, Tenant> = app
        .tenants()
        .await?
        .into_iter()
        .map(|t| (t.id.0, t))
        .collect();
    let mut queued = 0;
    for (tenant_id, endpoint) in behind {
        let Some(tenant) = tenants.get(&tenant_id.0) else {
            continue;
        };
        let filter = EventFilter {
            after_sequence: Some(endpoint.fanned_out_to),
            ..EventFilter::default()
        };
        // No total: counting a backlog would cost its size every round.
        let page = PageRequest {
            counted: Some(0),
            ..PageRequest::first(FAN_OUT_PAGE)
        };
        let page = app.list_events(tenant, &filter, page).await?;
        let Some(last) = page.items.last() else {
            continue;
        };
        let today = app.today(tenant);
        let mut deliveries = Vec::new();
        for event in page.items.iter().filter(|e| endpoint.wants(&e.kind)) {
            let payload = dynabill_http::event_payload(event, today)
                .map_err(|e| anyhow::anyhow!("rendering event {}: {e}", event.id))?;
            deliveries.push(NewDelivery {
                event_id: event.id.clone(),
                event_type: event.kind.clone(),
                sequence: Some(event.sequence),
                payload,
            });
        }
        let now = app.clock().now();
        let moved = app
            .store()
            .fan_out(
                tenant.id,
                endpoint.id,
                endpoint.fanned_out_to,
                last.sequence,
                &deliveries,
                now,
            )
            .await?;
        if moved {
            queued += deliveries.len().max(1);
        }
    }
    Ok(queued)
}

/// Claims the due deliveries and sends them all at once. Returns how many.
async fn deliver(
    app: &App,
    client: &reqwest::Client,
    owner: &str,
    options: WorkerOptions,
) -> anyhow::Result<usize> {
    let Some(due) = app.store().next_delivery_due().await? else {
        return Ok(0);
    };
    let cutoffs = app.webhook_cutoffs().await?;
    let now = app.clock().now();
    let latest = cutoffs
        .iter()
        .map(|(_, c)| *c)
        .max()
        .unwrap_or(now)
        .max(now);
    if due > latest {
        return Ok(0);
    }
    let lease_until = now.checked_add(options.lease)?;
    let claimed = app
        .store()
        .claim_deliveries(owner, now, &cutoffs, lease_until, CLAIM)
        .await?;
    let count = claimed.len();
    // Each endpoint's deliveries in order, one after another (so a healthy
    // receiver gets them in sequence order); endpoints side by side.
    let mut by_endpoint: Vec<Vec<ClaimedDelivery>> = Vec::new();
    for delivery in claimed {
        match by_endpoint
            .iter_mut()
            .find(|group| group[0].endpoint_id == delivery.endpoint_id)
        {
            Some(group) => group.push(delivery),
            None => by_endpoint.push(vec![delivery]),
        }
    }
    let rounds = by_endpoint
        .into_iter()
        .map(|group| send_in_order(app, client, owner, options, group));
    futures_util::future::join_all(rounds).await;
    Ok(count)
}

/// Sends one endpoint's claimed deliveries in order. After a failed attempt, or
/// once half the lease has gone, the rest are given back unsent (no attempt
/// counted): a failing receiver holds up only itself, and no claim outlives its
/// lease while it waits.
async fn send_in_order(
    app: &App,
    client: &reqwest::Client,
    owner: &str,
    options: WorkerOptions,
    group: Vec<ClaimedDelivery>,
) {
    let started = Instant::now();
    let mut rest = group.into_iter();
    for delivery in rest.by_ref() {
        let (attempt, gone, retry_after) = send(app, client, &delivery, options).await;
        let next = next_step(&delivery, &attempt, gone, retry_after);
        app.telemetry().webhook_attempt(match &next {
            DeliveryNext::Delivered => "delivered",
            DeliveryNext::RetryAt(_) => "retrying",
            DeliveryNext::GiveUp { disable: None } => "failed",
            DeliveryNext::GiveUp { disable: Some(_) } => "disabled",
        });
        let now = app.clock().now();
        match app
            .store()
            .record_attempt(&delivery, owner, &attempt, &next, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                delivery = delivery.id,
                "webhooks: lost the claim on a delivery before recording it"
            ),
            Err(e) => {
                tracing::warn!(delivery = delivery.id, error = %e, "webhooks: could not record an attempt")
            }
        }
        if next != DeliveryNext::Delivered || started.elapsed() > options.lease / 2 {
            break;
        }
    }
    let unsent: Vec<i64> = rest.map(|d| d.id).collect();
    if !unsent.is_empty()
        && let Err(e) = app.store().release_deliveries(&unsent, owner).await
    {
        tracing::warn!(error = %e, "webhooks: could not give back claims (they lapse with their lease)");
    }
}

/// What comes after an attempt: delivered (2xx), the endpoint disabled (410, or
/// failing for five days), the next retry (honouring `Retry-After` on 429 and
/// 503), or no more attempts.
fn next_step(
    delivery: &ClaimedDelivery,
    attempt: &WebhookAttempt,
    gone: bool,
    retry_after: Option<Duration>,
) -> DeliveryNext {
    if attempt.status_code.is_some_and(|s| (200..300).contains(&s)) {
        return DeliveryNext::Delivered;
    }
    if gone {
        return DeliveryNext::GiveUp {
            disable: Some("the endpoint answered 410 Gone".to_owned()),
        };
    }
    let since = delivery.failing_since.unwrap_or(attempt.attempted_at);
    if attempt
        .attempted_at
        .duration_since(since)
        .is_positive_and_at_least(FAILING_FOR)
    {
        return DeliveryNext::GiveUp {
            disable: Some(format!(
                "every attempt failed for five days (since {since})"
            )),
        };
    }
    let made = usize::try_from(delivery.attempts).unwrap_or(usize::MAX);
    let Some(delay) = RETRY_DELAYS.get(made) else {
        return DeliveryNext::GiveUp { disable: None };
    };
    let delay = retry_after.map_or(jittered(*delay), |asked| {
        asked.max(*delay).min(RETRY_DELAYS[6])
    });
    match attempt.attempted_at.checked_add(delay) {
        Ok(at) => DeliveryNext::RetryAt(at),
        Err(_) => DeliveryNext::GiveUp { disable: None },
    }
}

trait AtLeast {
    fn is_positive_and_at_least(&self, d: Duration) -> bool;
}

impl AtLeast for SignedDuration {
    fn is_positive_and_at_least(&self, d: Duration) -> bool {
        self.is_positive() && self.unsigned_abs() >= d
    }
}

/// `delay` give or take up to 10%, so that retries of many deliveries spread out
/// (in whole milliseconds: integer arithmetic).
fn jittered(delay: Duration) -> Duration {
    let mut bytes = [0u8; 2];
    let draw =
        getrandom::fill(&mut bytes).map_or(1000, |()| u64::from(u16::from_le_bytes(bytes)) % 2001);
    // 900..=1100 thousandths of the delay.
    let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(
        millis / 1000 * (900 + draw / 10) + millis % 1000 * (900 + draw / 10) / 1000,
    )
}

/// The signatures of a delivery: `v1,` and the base64 HMAC-SHA256 of
/// `id.timestamp.body` with each secret's key, space-separated.
pub fn signatures(secrets: &[String], id: &str, timestamp: i64, body: &str) -> String {
    secrets
        .iter()
        .filter_map(|secret| {
            let key = STANDARD
                .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
                .ok()?;
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body.as_bytes());
            Some(format!(
                "v1,{}",
                STANDARD.encode(mac.finalize().into_bytes())
            ))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The address a URL names literally, if it does.
fn literal_address(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// POSTs a delivery once: the attempt, whether the endpoint answered 410, and
/// the `Retry-After` of a 429 or 503.
async fn send(
    app: &App,
    client: &reqwest::Client,
    delivery: &ClaimedDelivery,
    options: WorkerOptions,
) -> (WebhookAttempt, bool, Option<Duration>) {
    let attempted_at = Timestamp::now();
    let started = Instant::now();
    let failed = |error: String| WebhookAttempt {
        attempted_at,
        status_code: None,
        duration_ms: elapsed_ms(started),
        error: Some(error),
        response: None,
    };
    let url = match reqwest::Url::parse(&delivery.url) {
        Ok(url) => url,
        Err(e) => return (failed(format!("not a URL: {e}")), false, None),
    };
    if !options.allow_private && literal_address(&url).is_some_and(is_private) {
        return (failed("refused: a private address".to_owned()), false, None);
    }
    let secrets = match app.signing_secrets(delivery) {
        Ok(secrets) => secrets,
        Err(e) => {
            tracing::error!(delivery = delivery.id, error = %e, "cannot open an endpoint's signing secret");
            return (
                failed(
                    "not sent: the signing secret cannot be opened with this server's key"
                        .to_owned(),
                ),
                false,
                None,
            );
        }
    };
    let timestamp = attempted_at.as_second();
    let signature = signatures(&secrets, &delivery.event_id, timestamp, &delivery.payload);
    let request = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.payload.clone());
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            let error = if e.is_timeout() {
                "timed out after 15 s".to_owned()
            } else {
                format!("no answer: {e}")
            };
            return (failed(error), false, None);
        }
    };
    let status = response.status();
    let retry_after = (status.as_u16() == 429 || status.as_u16() == 503)
        .then(|| response.headers().get("retry-after"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut kept = Vec::new();
    while kept.len() < RESPONSE_KEPT {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                kept.extend_from_slice(&chunk[..chunk.len().min(RESPONSE_KEPT - kept.len())])
            }
            _ => break,
        }
    }
    let body = String::from_utf8_lossy(&kept).into_owned();
    let ok = status.is_success();
    let attempt = WebhookAttempt {
        attempted_at,
        status_code: Some(status.as_u16()),
        duration_ms: elapsed_ms(started),
        error: (!ok).then(|| format!("the endpoint answered {}", status.as_u16())),
        response: (!body.is_empty()).then_some(body),
    };
    (attempt, status.as_u16() == 410, retry_after)
}

fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signatures(&[secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn delays_grow_and_jitter_stays_within_a_tenth() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(100));
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
        assert!(RETRY_DELAYS.windows(2).all(|w| w[0] <= w[1]));
    }
}
