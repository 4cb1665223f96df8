//! The scheduler of `serve`: each tenant's bill run, once a day, at its
//! `BillRunHour` in its time zone, and its overdue invoices marked (each tick, from
//! that hour) (or, with the test clock, whenever its set date
//! changes: setting a date clears the day's claim). Several servers on one
//! database run each day's bill run once: the day is claimed in the database
//! first, by one server; the others, at their next tick, join the run while it is
//! unfinished and split its remaining batches with it (taking over the batches of
//! a server that stopped, once their lease expires).
//!
//! A run that fails midway stays unfinished: every server's scheduler (the
//! claimant's too) joins it at its next tick and bills the rest, so a failure (a
//! database outage, say) is retried each tick until the run finishes. A run that
//! was never started for a claimed day (the claimant died in between) is caught up
//! by the next day's run (bill runs bill every missed period), or by hand with
//! `dynabill bill-run`.

use std::time::Duration;

use dynabill_app::App;
use dynabill_app::billing::BillRunOptions;
use dynabill_app::model::Tenant;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the scheduler looks at the tenants: every minute, or every second with
/// the test clock (so that moving a tenant's date is followed at once).
fn tick(app: &App) -> Duration {
    if app.test_clock() {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(60)
    }
}

pub struct Scheduler {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Scheduler {
    /// Stops after the bill run in progress, if any.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

pub fn spawn(app: App) -> Scheduler {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut every = tokio::time::interval(tick(&app));
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stopped.changed() => return,
            }
            if let Err(e) = run_due(&app).await {
                tracing::warn!(error = %e, "scheduler: could not run the due bill runs");
            }
        }
    });
    Scheduler { stop, task }
}

/// Whether `tenant`'s daily bill run is due now. With the test clock, only
/// tenants whose date is set are billed, on that date: a test's tenant is never
/// billed for the real today behind its back.
fn is_due(app: &App, tenant: &Tenant) -> bool {
    if app.test_clock() {
        return tenant.test_today.is_some();
    }
    let local = app.clock().now().to_zoned(tenant.time_zone.clone());
    local.hour() >= i8::try_from(tenant.settings.bill_run_hour).unwrap_or(0)
}

async fn run_due(app: &App) -> Result<(), dynabill_app::AppError> {
    for tenant in app.tenants().await? {
        // Invoices waiting for AvaTax are retried when their backoff has passed.
        match app.retry_taxes(&tenant, false).await {
            Ok((0, _)) => {}
            Ok((attempted, posted)) => {
                tracing::info!(tenant = %tenant.app_key, attempted, posted, "AvaTax retries")
            }
            Err(e) => tracing::warn!(tenant = %tenant.app_key, error = %e, "AvaTax retries failed"),
        }
        if !is_due(app, &tenant) {
            continue;
        }
        // Posted invoices past their due date become overdue (an event each).
        if let Err(e) = app.mark_overdue(&tenant).await {
            tracing::warn!(tenant = %tenant.app_key, error = %e, "could not mark overdue invoices");
        }
        let today = app.today(&tenant);
        let run = if app.store().claim_scheduled_run(tenant.id, today).await? {
            app.bill_run(&tenant, today, &|_| {}).await.map(Some)
        } else {
            // Another server claimed the day: help it while its run lasts, and
            // finish its batches if it stopped.
            app.join_bill_run(&tenant, today, BillRunOptions::default())
                .await
        };
        match run {
            Ok(None) => {}
            Ok(Some(summary)) => {
                app.telemetry().scheduler_ran(tenant.id, app.clock().now());
                tracing::info!(
                    tenant = %tenant.app_key,
                    date = %today,
                    invoices = summary.invoices,
                    accounts = summary.accounts_billed,
                    "scheduled bill run done"
                )
            }
            Err(e) => {
                tracing::error!(tenant = %tenant.app_key, date = %today, error = %e, "scheduled bill run failed")
            }
        }
    }
    Ok(())
}
