//! What the app counts for operators, exposed by `GET /metrics` in the
//! Prometheus text format (the `prometheus-client` crate): requests by door,
//! operation and status with their latency; bill runs, their accounts, invoices,
//! lines, duration and failures, per tenant; AvaTax attempts; the scheduler's
//! last run per tenant; webhook attempts and backlog; the database pools.
//!
//! One registry per `App` (no process-wide state): two servers in one process
//! (the tests) count apart.

use std::fmt;
use std::time::Duration;

use dynabill_core::domain::TenantId;
use jiff::Timestamp;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::store::StoreGauges;

/// The `Content-Type` of [`Telemetry::render`].
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Request latencies: 1 ms to about 33 s, doubling.
fn request_buckets() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 16,
    ))
}

/// Bill run durations: 10 ms to about 1.5 hours, quadrupling.
fn bill_run_buckets() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.01, 4.0, 10,
    ))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `dynamic`, `rest`, `testclock` or `other`.
    pub door: &'static str,
    /// The dynamic door's `api_code/entity_code`, the REST route (`POST
    /// /v1/accounts`), or the path served.
    pub operation: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    door: &'static str,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: i64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantOutcome {
    tenant: i64,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: &'static str,
    state: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The app's counters and gauges, and the registry that shows them.
pub struct Telemetry {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms<RouteLabels>,
    storage_unavailable: Counter,
    bill_runs: Family<TenantOutcome, Counter>,
    bill_run_accounts: Family<TenantLabels, Counter>,
    bill_run_invoices: Family<TenantLabels, Counter>,
    bill_run_lines: Family<TenantLabels, Counter>,
    bill_run_seconds: Histograms<TenantLabels>,
    tax_attempts: Family<TenantOutcome, Counter>,
    scheduler_last_run: Family<TenantLabels, Gauge>,
    webhook_attempts: Family<Outcome, Counter>,
    webhook_backlog: Gauge,
    pool_connections: Family<PoolLabels, Gauge>,
    acquired: Counter,
    acquire_wait_us: Counter,
    acquire_failures: Counter,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Telemetry")
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl Telemetry {
    pub fn new() -> Telemetry {
        let mut registry = Registry::with_prefix("dynabill");
        let telemetry = Telemetry {
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(request_buckets),
            storage_unavailable: Counter::default(),
            bill_runs: Family::default(),
            bill_run_accounts: Family::default(),
            bill_run_invoices: Family::default(),
            bill_run_lines: Family::default(),
            bill_run_seconds: Family::new_with_constructor(bill_run_buckets),
            tax_attempts: Family::default(),
            scheduler_last_run: Family::default(),
            webhook_attempts: Family::default(),
            webhook_backlog: Gauge::default(),
            pool_connections: Family::default(),
            acquired: Counter::default(),
            acquire_wait_us: Counter::default(),
            acquire_failures: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "Requests answered, by door, operation and HTTP status",
            telemetry.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by door and operation",
            telemetry.request_seconds.clone(),
        );
        registry.register(
            "storage_unavailable",
            "Requests answered 503 because the database could not serve them",
            telemetry.storage_unavailable.clone(),
        );
        registry.register(
            "bill_runs",
            "Bill runs (this process's part of each), by tenant and outcome (completed, failed)",
            telemetry.bill_runs.clone(),
        );
        registry.register(
            "bill_run_accounts",
            "Accounts read by bill runs, by tenant",
            telemetry.bill_run_accounts.clone(),
        );
        registry.register(
            "bill_run_invoices",
            "Invoices created by bill runs, by tenant",
            telemetry.bill_run_invoices.clone(),
        );
        registry.register(
            "bill_run_lines",
            "Invoice lines created by bill runs, by tenant",
            telemetry.bill_run_lines.clone(),
        );
        registry.register(
            "bill_run_duration_seconds",
            "How long bill runs took, by tenant",
            telemetry.bill_run_seconds.clone(),
        );
        registry.register(
            "tax_attempts",
            "AvaTax attempts, by tenant and outcome (posted, pending: failed and kept for a retry)",
            telemetry.tax_attempts.clone(),
        );
        registry.register(
            "scheduler_last_run_timestamp_seconds",
            "When the scheduler last completed a tenant's daily bill run (Unix seconds)",
            telemetry.scheduler_last_run.clone(),
        );
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts, by outcome (delivered, retrying, failed, disabled)",
            telemetry.webhook_attempts.clone(),
        );
        registry.register(
            "webhook_backlog",
            "Webhook deliveries waiting to be sent",
            telemetry.webhook_backlog.clone(),
        );
        registry.register(
            "db_connections",
            "Database connections by pool and state (in_use, idle, max)",
            telemetry.pool_connections.clone(),
        );
        registry.register(
            "db_acquires",
            "Connections taken from the pools (with the BEGIN of a transaction)",
            telemetry.acquired.clone(),
        );
        registry.register(
            "db_acquire_wait_microseconds",
            "Time spent waiting for those connections, in microseconds",
            telemetry.acquire_wait_us.clone(),
        );
        registry.register(
            "db_acquire_failures",
            "Connections that could not be had in time, or at all",
            telemetry.acquire_failures.clone(),
        );
        Telemetry {
            registry,
            ..telemetry
        }
    }

    /// Counts an answered request.
    pub fn request(&self, labels: RequestLabels, took: Duration) {
        self.request_seconds
            .get_or_create(&RouteLabels {
                door: labels.door,
                operation: labels.operation.clone(),
            })
            .observe(took.as_secs_f64());
        if labels.status == 503 {
            self.storage_unavailable.inc();
        }
        self.requests.get_or_create(&labels).inc();
    }

    /// Counts this process's part of a bill run.
    pub fn bill_run(&self, tenant: TenantId, summary: Option<(u64, u64, u64)>, took: Duration) {
        let labels = TenantLabels { tenant: tenant.0 };
        let outcome = if summary.is_some() {
            "completed"
        } else {
            "failed"
        };
        self.bill_runs
            .get_or_create(&TenantOutcome {
                tenant: tenant.0,
                outcome,
            })
            .inc();
        self.bill_run_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if let Some((accounts, invoices, lines)) = summary {
            self.bill_run_accounts
                .get_or_create(&labels)
                .inc_by(accounts);
            self.bill_run_invoices
                .get_or_create(&labels)
                .inc_by(invoices);
            self.bill_run_lines.get_or_create(&labels).inc_by(lines);
        }
    }

    /// Counts an AvaTax attempt: `posted`, or `pending` (failed, kept for a retry).
    pub fn tax_attempt(&self, tenant: TenantId, posted: bool) {
        let outcome = if posted { "posted" } else { "pending" };
        self.tax_attempts
            .get_or_create(&TenantOutcome {
                tenant: tenant.0,
                outcome,
            })
            .inc();
    }

    /// Notes that the scheduler completed a tenant's daily bill run at `at`.
    pub fn scheduler_ran(&self, tenant: TenantId, at: Timestamp) {
        self.scheduler_last_run
            .get_or_create(&TenantLabels { tenant: tenant.0 })
            .set(at.as_second());
    }

    /// Counts a webhook attempt by its outcome.
    pub fn webhook_attempt(&self, outcome: &'static str) {
        self.webhook_attempts
            .get_or_create(&Outcome { outcome })
            .inc();
    }

    /// The metrics in the Prometheus text format, with the gauges read from
    /// storage now.
    pub fn render(&self, gauges: &StoreGauges) -> String {
        for pool in &gauges.pools {
            for (state, value) in [
                ("in_use", pool.size.saturating_sub(pool.idle)),
                ("idle", pool.idle),
                ("max", pool.max),
            ] {
                self.pool_connections
                    .get_or_create(&PoolLabels {
                        pool: pool.name,
                        state,
                    })
                    .set(i64::from(value));
            }
        }
        self.webhook_backlog.set(gauges.webhook_backlog);
        // Storage keeps these totals; the counters show them as they are.
        for (counter, total) in [
            (&self.acquired, gauges.acquired),
            (&self.acquire_wait_us, gauges.waited_us),
            (&self.acquire_failures, gauges.failed_acquires),
        ] {
            counter
                .inner()
                .store(total, std::sync::atomic::Ordering::Relaxed);
        }
        let mut text = String::new();
        // Writing to a String does not fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PoolGauge;

    #[test]
    fn the_text_shows_each_count_under_its_labels() {
        let telemetry = Telemetry::new();
        let tenant = TenantId(7);
        telemetry.tax_attempt(tenant, false);
        telemetry.tax_attempt(tenant, false);
        telemetry.tax_attempt(tenant, true);
        telemetry.scheduler_ran(tenant, Timestamp::from_second(1_800_000_000).unwrap());
        telemetry.bill_run(tenant, None, Duration::from_millis(5));
        let text = telemetry.render(&StoreGauges {
            pools: vec![PoolGauge {
                name: "main",
                size: 3,
                idle: 1,
                max: 6,
            }],
            webhook_backlog: 4,
            acquired: 10,
            waited_us: 2500,
            failed_acquires: 1,
        });
        for line in [
            "dynabill_tax_attempts_total{tenant=\"7\",outcome=\"pending\"} 2",
            "dynabill_tax_attempts_total{tenant=\"7\",outcome=\"posted\"} 1",
            "dynabill_scheduler_last_run_timestamp_seconds{tenant=\"7\"} 1800000000",
            "dynabill_bill_runs_total{tenant=\"7\",outcome=\"failed\"} 1",
            "dynabill_db_connections{pool=\"main\",state=\"in_use\"} 2",
            "dynabill_db_connections{pool=\"main\",state=\"idle\"} 1",
            "dynabill_db_connections{pool=\"main\",state=\"max\"} 6",
            "dynabill_webhook_backlog 4",
            "dynabill_db_acquires_total 10",
            "dynabill_db_acquire_wait_microseconds_total 2500",
            "dynabill_db_acquire_failures_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
