//! Home: MRR and ARR per currency, invoices awaiting action, renewals due in
//! 30 days, accounts with billing issues (the insights of docs/INSIGHTS.md).
//!
//! The insights read the whole book (seconds at 100,000 accounts), so Home shows
//! them from a per-tenant cache (`HomeFigures`) refreshed in the background when
//! older than a minute, saying when they were computed; the counts of invoices
//! awaiting action are read each time (maintained counts: cheap).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::Response;
use dynabill_app::insights::{AccountIssues, BillingIssue, MrrReport, Ranked, Renewal};
use dynabill_app::model::{InvoiceFilter, PageRequest, Tenant};
use dynabill_app::{App, AppError};
use dynabill_core::domain::{InvoiceStatus, TenantId};
use jiff::civil::Date;
use maud::html;
use rust_decimal::Decimal;

use super::session::Console;
use super::views::{self, money};
use super::{app_failure, ok};
use crate::ServerState;

/// How long Home's insights are shown before they are computed again.
const FRESH_FOR: Duration = Duration::from_secs(60);
/// How long a request that starts a refresh waits for it before showing what
/// it has (a small book's figures are ready by then).
const WAIT_FOR_REFRESH: Duration = Duration::from_millis(800);

/// Home's insights of one tenant on one day.
struct Figures {
    mrr: MrrReport,
    renewals: Ranked<Renewal>,
    issues: Ranked<AccountIssues>,
    computed: jiff::Timestamp,
    at: Instant,
}

#[derive(Default)]
struct Slot {
    figures: Option<Arc<Figures>>,
    refreshing: bool,
}

/// Home's insights by tenant and day, each computed by one task at a time.
#[derive(Default)]
pub struct HomeFigures {
    slots: Mutex<HashMap<(TenantId, Date), Slot>>,
}

impl HomeFigures {
    /// The figures to show now: fresh ones, or the last ones while a refresh
    /// runs (started here if none is), or `None` when there are none yet.
    async fn get(
        self: &Arc<Self>,
        app: &App,
        tenant: &Tenant,
        today: Date,
    ) -> Option<Arc<Figures>> {
        let key = (tenant.id, today);
        let (shown, start) = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            // A tenant's other days (the test clock moved) are dropped.
            slots.retain(|(t, day), _| *t != tenant.id || *day == today);
            let slot = slots.entry(key).or_default();
            let stale = slot
                .figures
                .as_ref()
                .is_none_or(|f| f.at.elapsed() > FRESH_FOR);
            let start = stale && !slot.refreshing;
            if start {
                slot.refreshing = true;
            }
            (slot.figures.clone(), start)
        };
        if !start {
            return shown;
        }
        let cache = Arc::clone(self);
        let (app, tenant) = (app.clone(), tenant.clone());
        let refresh = tokio::spawn(async move {
            let computed = compute(&app, &tenant).await;
            let mut slots = cache.slots.lock().unwrap_or_else(|p| p.into_inner());
            let slot = slots.entry(key).or_default();
            slot.refreshing = false;
            match computed {
                Ok(figures) => {
                    let figures = Arc::new(figures);
                    slot.figures = Some(Arc::clone(&figures));
                    Some(figures)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "console: home insights not computed");
                    None
                }
            }
        });
        match tokio::time::timeout(WAIT_FOR_REFRESH, refresh).await {
            Ok(Ok(Some(figures))) => Some(figures),
            _ => shown,
        }
    }
}

async fn compute(app: &App, tenant: &Tenant) -> Result<Figures, AppError> {
    let computed = app.clock().now();
    let (mrr, renewals, issues) = tokio::join!(
        app.mrr(tenant, None, None, None),
        app.renewals(tenant, RENEWALS_WITHIN_DAYS, LISTED),
        app.billing_issues(tenant, LISTED),
    );
    Ok(Figures {
        mrr: mrr?,
        renewals: renewals?,
        issues: issues?,
        computed,
        at: Instant::now(),
    })
}

/// Renewals due within this many days are shown.
const RENEWALS_WITHIN_DAYS: i64 = 30;
/// How many renewals and accounts with issues are listed.
const LISTED: usize = 10;

pub async fn show(State(state): State<ServerState>, console: Console) -> Response {
    let app = &console.app;
    let tenant = &console.tenant;
    let awaiting = |status| async move {
        let filter = InvoiceFilter {
            statuses: vec![status],
            ..InvoiceFilter::default()
        };
        app.list_invoices(tenant, &filter, PageRequest::first(1), false)
            .await
            .map(|page| page.total)
    };
    let today = app.today(tenant);
    let (figures, drafts, pending) = tokio::join!(
        state.home_figures.get(app, tenant, today),
        awaiting(InvoiceStatus::Draft),
        awaiting(InvoiceStatus::PendingTax),
    );
    let (drafts, pending) = match (drafts, pending) {
        (Ok(drafts), Ok(pending)) => (drafts, pending),
        (Err(e), _) | (_, Err(e)) => return app_failure(e),
    };
    let body = html! {
        p.muted {
            "Today is " (today) " in " (tenant.time_zone_name) ". "
            @if let Some(f) = &figures {
                "MRR, renewals and billing issues as computed at " (f.computed.strftime("%H:%M:%S UTC")) " (every minute at most)."
            } @else {
                "MRR, renewals and billing issues are being computed: reload in a moment."
            }
        }
        div.cards {
            @for c in figures.iter().flat_map(|f| &f.mrr.currencies) {
                div {
                    div.label { "MRR " (c.currency.code()) }
                    div.figure { (money(c.mrr, c.currency)) }
                    div.label { "ARR " (money(c.mrr * Decimal::from(12), c.currency)) " · " (c.active_accounts) " accounts · " (c.active_items) " items" }
                }
            }
            @if figures.as_ref().is_some_and(|f| f.mrr.currencies.is_empty()) { div { div.label { "MRR" } div.figure { "none yet" } } }
            div {
                div.label { "Invoices awaiting action" }
                div.figure { (drafts + pending) }
                div.label {
                    a href=(format!("/console/invoices?status={}", InvoiceStatus::Draft.code())) { (drafts) " draft" } " · "
                    a href="/console/tax" { (pending) " pending tax" }
                }
            }
        }
        @if let Some(f) = &figures {
        h2 { "Renewals due in " (RENEWALS_WITHIN_DAYS) " days" }
        div.scroll { table {
            thead { tr { th { "Account" } th { "Plan" } th { "Ends" } th.num { "Days left" } th { "Renews" } th.num { "MRR" } } }
            tbody {
                @for r in &f.renewals.items {
                    tr {
                        td { a href=(format!("/console/accounts/{}", r.account.id)) { (r.account.fields.name) } }
                        td { (r.plan_name.as_deref().unwrap_or(&r.plan_ext_id)) }
                        td { (r.end_date) }
                        td.num { (r.days_left) }
                        td { @if r.auto_renew { "automatically" } @else { "not automatically" } }
                        td.num { (money(r.mrr, r.currency)) }
                    }
                }
                @if f.renewals.items.is_empty() { tr { td colspan="6" { span.muted { "None." } } } }
            }
        } }
        @if f.renewals.total as usize > f.renewals.items.len() { p.muted { (f.renewals.total) " in all." } }
        h2 { "Accounts with billing issues" }
        div.scroll { table {
            thead { tr { th { "Account" } th { "Issues" } } }
            tbody {
                @for a in &f.issues.items {
                    tr {
                        td { a href=(format!("/console/accounts/{}", a.account.id)) { (a.account.fields.name) } }
                        td {
                            @for (n, reason) in a.reasons.iter().enumerate() {
                                @if n > 0 { " · " }
                                (issue(reason))
                            }
                        }
                    }
                }
                @if f.issues.items.is_empty() { tr { td colspan="2" { span.muted { "None." } } } }
            }
        } }
        @if f.issues.total as usize > f.issues.items.len() { p.muted { (f.issues.total) " in all." } }
        }
    };
    ok(views::page(&console, "Home", "/console", body))
}

/// A billing issue in words.
fn issue(reason: &BillingIssue) -> String {
    match reason {
        BillingIssue::Overdue {
            invoices,
            oldest_days_overdue,
            ..
        } => format!("{invoices} overdue (oldest {oldest_days_overdue} days)"),
        BillingIssue::TaxPending { invoices, oldest } => {
            format!("{invoices} waiting for tax since {oldest}")
        }
        BillingIssue::TaxFailed {
            invoices,
            last_error,
            ..
        } => format!("{invoices} failed tax: {last_error}"),
        BillingIssue::StatusBillingIssues => "status: billing issues".to_owned(),
        BillingIssue::CreditBalance(_) => "unused credit".to_owned(),
    }
}
