//! The tax queue, bill runs (a dry run first, then the run on a task of its own
//! with its progress shown) and the tenant's settings.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dynabill_app::billing::BillRunSummary;
use dynabill_app::model::{InvoiceFilter, PageRequest};
use dynabill_core::domain::TenantId;
use dynabill_core::domain::{InvoiceStatus, TaxMode};
use jiff::civil::Date;
use maud::{Markup, PreEscaped, html};

use super::session::Console;
use super::views::{self, csrf, money, words};
use super::{Form, app_failure, failure, ok, see_other};
use crate::ServerState;
use crate::rest::shapes;

/// How many Pending Tax invoices the queue shows.
const TAX_QUEUE_SIZE: u32 = 100;
/// How many of a dry run's invoices are listed (all are counted).
const DRY_RUN_SHOWN: usize = 100;
/// How many finished bill runs are remembered for their progress page.
const JOBS_KEPT: usize = 64;

pub async fn tax_queue(console: Console) -> Response {
    let filter = InvoiceFilter {
        statuses: vec![InvoiceStatus::PendingTax],
        ..InvoiceFilter::default()
    };
    let page = match console
        .app
        .list_invoices(
            &console.tenant,
            &filter,
            PageRequest::first(TAX_QUEUE_SIZE),
            false,
        )
        .await
    {
        Ok(page) => page,
        Err(e) => return app_failure(e),
    };
    let mode = console.tenant.settings.tax_mode;
    let body = html! {
        p.muted { "Tax mode: " (words(mode)) ". " (page.total) " invoices wait in Pending Tax." }
        @if mode == TaxMode::Avalara {
            form.actions method="post" action="/console/tax/retry" {
                (csrf(&console))
                button type="submit" { "Retry now" }
            }
        } @else if mode == TaxMode::External {
            p.muted { "Taxes come from your tax workflow (api_code 10, entity_code 119): these invoices post when it sends them." }
        }
        div.scroll { table {
            thead { tr { th { "Invoice" } th { "Account" } th { "Date" } th.num { "Subtotal" } th { "Attempts" } th { "Next attempt" } th { "Error" } } }
            tbody {
                @for i in &page.items {
                    tr {
                        td { a href=(format!("/console/invoices/{}", i.id)) { (i.number.as_deref().unwrap_or("(unnumbered)")) } }
                        td { a href=(format!("/console/accounts/{}", i.account_id)) { (i.account_ext_id) } }
                        td { (i.invoice_date) }
                        td.num { (money(i.subtotal, i.currency)) }
                        td { (i.tax_attempts) }
                        td { (i.next_tax_attempt.map_or_else(|| "—".to_owned(), |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())) }
                        td { (views::or_dash(i.tax_error.as_deref())) }
                    }
                }
                @if page.items.is_empty() { tr { td colspan="7" { span.muted { "The queue is empty." } } } }
            }
        } }
    };
    ok(views::page(&console, "Tax queue", "/console/tax", body))
}

pub async fn retry_taxes(console: Console, body: Bytes) -> Response {
    if let Err(refused) = Form::read(&console, &body) {
        return refused.into_response();
    }
    match console.app.retry_taxes(&console.tenant, true).await {
        Ok(_) => see_other("/console/tax"),
        Err(e) => app_failure(e),
    }
}

/// Bill runs started from the console, by job ID: their progress and outcome.
#[derive(Default)]
pub struct BillRunJobs {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

struct Job {
    tenant: TenantId,
    date: Date,
    /// Billable accounts when the run started (the progress bar's end).
    accounts: u64,
    seen: AtomicU64,
    outcome: Mutex<Option<Result<BillRunSummary, String>>>,
    started: std::time::Instant,
}

impl BillRunJobs {
    fn start(&self, job: Job) -> Result<(String, Arc<Job>), getrandom::Error> {
        let mut id = [0u8; 12];
        getrandom::fill(&mut id)?;
        let id = hex::encode(id);
        let job = Arc::new(job);
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if jobs.len() >= JOBS_KEPT {
            // Forget the oldest finished run.
            let oldest = jobs
                .iter()
                .filter(|(_, j)| j.outcome.lock().is_ok_and(|o| o.is_some()))
                .min_by_key(|(_, j)| j.started)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                jobs.remove(&oldest);
            }
        }
        jobs.insert(id.clone(), job.clone());
        Ok((id, job))
    }

    fn get(&self, id: &str, tenant: TenantId) -> Option<Arc<Job>> {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.get(id).filter(|j| j.tenant == tenant).cloned()
    }
}

fn run_form(console: &Console, date: Date, problem: Option<&str>) -> Markup {
    html! {
        (views::problem(problem))
        form.row method="post" action="/console/bill-runs" {
            (csrf(console))
            label { "Bill run date" input type="date" name="Date" value=(date) required; }
            button.secondary type="submit" name="step" value="dry-run" { "Dry run" }
            button type="submit" name="step" value="run" { "Run" }
        }
        p.muted { "A dry run writes nothing and lists the invoices the run would create now. The daily bill run runs by itself at " (console.tenant.settings.bill_run_hour) ":00 in " (console.tenant.time_zone_name) "." }
    }
}

pub async fn bill_run_form(console: Console) -> Response {
    let today = console.app.today(&console.tenant);
    ok(views::page(
        &console,
        "Bill runs",
        "/console/bill-runs",
        run_form(&console, today, None),
    ))
}

pub async fn bill_run(State(state): State<ServerState>, console: Console, body: Bytes) -> Response {
    let form = match Form::read(&console, &body) {
        Ok(form) => form,
        Err(refused) => return refused.into_response(),
    };
    let today = console.app.today(&console.tenant);
    let date = match form.params().required_date("Date") {
        Ok(Some(date)) => date,
        Ok(None) => today,
        Err(e) => {
            let page = views::page(
                &console,
                "Bill runs",
                "/console/bill-runs",
                run_form(&console, today, Some(&super::said(&e))),
            );
            let mut response = ok(page);
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            return response;
        }
    };
    if form.get("step") == Some("run") {
        return start_run(&state, &console, date).await;
    }
    let mut upcoming = Vec::new();
    let summary = match console
        .app
        .dry_run_each(&console.tenant, date, &|_| {}, &mut |bill| {
            for invoice in bill.invoices {
                if upcoming.len() < DRY_RUN_SHOWN {
                    upcoming.push((bill.account, invoice));
                }
            }
        })
        .await
    {
        Ok(summary) => summary,
        Err(e) => return app_failure(e),
    };
    let body = html! {
        (run_form(&console, date, None))
        h2 { "Dry run for " (date) }
        (summary_list(&summary))
        @if summary.invoices as usize > upcoming.len() { p.muted { "The first " (upcoming.len()) " of " (summary.invoices) " invoices:" } }
        div.scroll { table {
            thead { tr { th { "Account" } th { "Invoice date" } th.num { "Lines" } th.num { "Total" } } }
            tbody {
                @for (account, invoice) in &upcoming {
                    tr {
                        td { a href=(format!("/console/accounts/{account}")) { (account) } }
                        td { (invoice.invoice_date) }
                        td.num { (invoice.lines.len()) }
                        td.num { (money(invoice.total, invoice.currency)) }
                    }
                }
            }
        } }
    };
    ok(views::page(
        &console,
        "Bill runs",
        "/console/bill-runs",
        body,
    ))
}

/// Starts the run on a task of its own and shows its progress page.
async fn start_run(state: &ServerState, console: &Console, date: Date) -> Response {
    let accounts = match console
        .app
        .list_accounts(
            &console.tenant,
            &dynabill_app::model::AccountFilter::default(),
            PageRequest::first(1),
        )
        .await
    {
        Ok(page) => page.total.max(0) as u64,
        Err(e) => return app_failure(e),
    };
    let job = Job {
        tenant: console.tenant.id,
        date,
        accounts,
        seen: AtomicU64::new(0),
        outcome: Mutex::new(None),
        started: std::time::Instant::now(),
    };
    let (id, job) = match state.console_jobs.start(job) {
        Ok(started) => started,
        Err(e) => return super::internal(&e),
    };
    let app = console.app.clone();
    let tenant = console.tenant.clone();
    tokio::spawn(async move {
        let progress = |seen: u64| job.seen.store(seen, Ordering::Relaxed);
        let outcome = app
            .bill_run(&tenant, date, &progress)
            .await
            .map_err(|e| super::said(&crate::error::from_app(e, "console bill run")));
        if let Ok(mut slot) = job.outcome.lock() {
            *slot = Some(outcome);
        }
    });
    see_other(&format!("/console/bill-runs/{id}"))
}

pub async fn bill_run_progress(
    State(state): State<ServerState>,
    console: Console,
    Path(id): Path<String>,
) -> Response {
    let Some(job) = state.console_jobs.get(&id, console.tenant.id) else {
        return failure(
            StatusCode::NOT_FOUND,
            "No such bill run (a server restart forgets them).",
        );
    };
    let seen = job.seen.load(Ordering::Relaxed);
    let outcome = job.outcome.lock().ok().and_then(|o| o.clone());
    let body = html! {
        @match &outcome {
            None => {
                // Plain HTML refresh: the page follows the run without a script.
                (PreEscaped("<meta http-equiv=\"refresh\" content=\"1\">"))
                p { "Running the bill run for " (job.date) "…" }
                progress max=(job.accounts.max(1)) value=(seen.min(job.accounts)) {}
                p.muted { (seen) " of about " (job.accounts) " accounts seen" }
            }
            Some(Ok(summary)) => {
                p.notice { "The bill run for " (job.date) " is done." }
                (summary_list(summary))
                p { a href=(format!("/console/invoices?from={0}&to={0}", job.date)) { "Its invoices →" } }
            }
            Some(Err(problem)) => { p.problem { "The bill run for " (job.date) " stopped: " (problem) } }
        }
    };
    ok(views::page(
        &console,
        "Bill run",
        "/console/bill-runs",
        body,
    ))
}

fn summary_list(summary: &BillRunSummary) -> Markup {
    html! {
        dl.fields {
            dt { "Accounts seen" } dd { (summary.accounts_seen) }
            dt { "Accounts billed" } dd { (summary.accounts_billed) }
            dt { "Invoices" } dd { (summary.invoices) }
            dt { "Lines" } dd { (summary.lines) }
            @for (code, total) in &summary.totals {
                dt { "Total " (code) } dd { (code.parse().map_or_else(|_| total.to_string(), |c| money(*total, c))) }
            }
        }
    }
}

pub async fn settings(console: Console) -> Response {
    let rates = match console.app.list_tax_rates(&console.tenant.app_key).await {
        Ok(rates) => rates,
        Err(e) => return app_failure(e),
    };
    let s = &console.tenant.settings;
    let body = html! {
        section.card {
            dl.fields {
                dt { "Tenant" } dd { (console.tenant.name) }
                dt { "AppKey" } dd { (console.tenant.app_key) }
                dt { "Currency" } dd { (console.tenant.currency.code()) }
                dt { "Time zone" } dd { (console.tenant.time_zone_name) }
                dt { "Invoices" } dd { @if s.auto_post { "posted when made" } @else { "made as drafts" } ", numbered " (s.invoice_prefix) "000001…" }
                dt { "Daily bill run" } dd { (s.bill_run_hour) ":00" }
                dt { "Proration" } dd { (words(s.proration_policy)) }
                dt { "Rounding" } dd { (words(s.rounding)) }
                dt { "Tax mode" } dd { (words(s.tax_mode)) }
                @if let Some(avatax) = &s.avatax { dt { "AvaTax company" } dd { (avatax.company_code) } }
            }
            p.muted { "Settings change with " code { "dynabill tenant set" } " or " code { "PATCH /v1/settings" } "." }
        }
        h2 { "Tax rates" }
        div.scroll { table {
            thead { tr { th { "Name" } th { "Country" } th { "State" } th { "Tax code" } th.num { "Rate" } } }
            tbody {
                @for r in &rates {
                    tr {
                        td { (r.rule.name) } td { (r.rule.country) }
                        td { (views::or_dash(r.rule.state.as_deref())) }
                        td { (views::or_dash(r.rule.tax_code.as_deref())) }
                        td.num { (shapes::decimal(r.rule.rate)) "%" }
                    }
                }
                @if rates.is_empty() { tr { td colspan="5" { span.muted { "No built-in tax rates." } } } }
            }
        } }
    };
    ok(views::page(&console, "Settings", "/console/settings", body))
}
