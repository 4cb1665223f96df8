//! Signing in and out, the account search and the account page.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dynabill_app::model::{
    Account, AccountFilter, EventRecord, InvoiceFilter, ItemFilter, PageRequest, Plan, PlanFilter,
    RecordKey,
};
use dynabill_core::domain::{AccountId, ItemStatus};
use maud::{Markup, html};
use serde::Deserialize;

use super::session::{self, Console};
use super::views::{self, badge, money, number, or_dash, words};
use super::{Form, app_failure, failure, html_response, ok, see_other};
use crate::ServerState;

/// How many accounts a page of the list or the search shows.
const ACCOUNTS_PER_PAGE: u32 = 50;
/// How many of an account's invoices its page shows (the rest: the invoice list).
const INVOICES_ON_ACCOUNT: u32 = 20;
/// How many events the timeline shows: the newest of the account's, its plans',
/// items' and shown invoices' (the rest: `/v1/events`).
const TIMELINE_EVENTS: u32 = 100;

#[derive(Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
}

/// Where to go after signing in: only a console path.
fn next_path(next: Option<&str>) -> &str {
    next.filter(|n| {
        (*n == "/console" || n.starts_with("/console/") || n.starts_with("/console?"))
            && !n.contains("//")
            && !n.contains('\\')
    })
    .unwrap_or("/console")
}

fn sign_in_page(next: &str, problem: Option<&str>) -> Markup {
    views::bare(
        "Sign in",
        html! {
            p.muted { "Sign in with your tenant's API credentials." }
            (views::problem(problem))
            form.stack method="post" action="/console/sign-in" {
                input type="hidden" name="next" value=(next);
                label { "AppKey" input name="AppKey" required autocomplete="username"; }
                label { "User name" input name="UserName" required; }
                label { "Access token" input name="AccessToken" type="password" required autocomplete="current-password"; }
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub async fn sign_in_form(Query(query): Query<SignInQuery>) -> Response {
    ok(sign_in_page(next_path(query.next.as_deref()), None))
}

/// Signs in. The sign-in form has no session yet, so no CSRF token: the cookie
/// is `SameSite=Strict`, and a forged sign-in could only sign the victim in as
/// the forger.
pub async fn sign_in(
    State(state): State<ServerState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let next = next_path(Some(field("next"))).to_owned();
    let secure = session::is_secure(&headers);
    match session::sign_in(
        &state.app,
        field("AppKey").trim(),
        field("UserName").trim(),
        field("AccessToken").trim(),
        secure,
    )
    .await
    {
        Ok(Some(cookie)) => {
            let mut response = see_other(&next);
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        Ok(None) => html_response(
            StatusCode::UNAUTHORIZED,
            sign_in_page(&next, Some("These credentials were not accepted.")),
        ),
        Err(page) => page,
    }
}

pub async fn sign_out(console: Console, body: Bytes) -> Response {
    if let Err(refused) = Form::read(&console, &body) {
        return refused.into_response();
    }
    let mut response = see_other("/console/sign-in");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::cleared(console.secure));
    response
}

#[derive(Deserialize)]
pub struct AccountsQuery {
    q: Option<String>,
    after: Option<i64>,
}

/// The accounts: a search by name (its start), ExtID or e-mail, or the whole
/// list in pages.
pub async fn list(console: Console, Query(query): Query<AccountsQuery>) -> Response {
    let text = query.q.as_deref().map(str::trim).unwrap_or_default();
    let (accounts, total, next) = if text.is_empty() {
        let page = PageRequest {
            size: ACCOUNTS_PER_PAGE,
            after: query.after,
            counted: None,
        };
        match console
            .app
            .list_accounts(&console.tenant, &AccountFilter::default(), page)
            .await
        {
            Ok(page) => (page.items, Some(page.total), page.next_after),
            Err(e) => return app_failure(e),
        }
    } else {
        match console
            .app
            .search_accounts(&console.tenant, text, ACCOUNTS_PER_PAGE + 1)
            .await
        {
            Ok(found) => (found, None, None),
            Err(e) => return app_failure(e),
        }
    };
    let more_found = total.is_none() && accounts.len() > ACCOUNTS_PER_PAGE as usize;
    let shown = &accounts[..accounts.len().min(ACCOUNTS_PER_PAGE as usize)];
    let body = html! {
        form.row method="get" action="/console/accounts" role="search" {
            label { "Name (its start), ExtID or e-mail"
                input type="search" name="q" value=(text) autofocus; }
            button type="submit" { "Search" }
        }
        @if let Some(total) = total {
            p.muted { (total) " accounts" }
        } @else if more_found {
            p.muted { "More than " (ACCOUNTS_PER_PAGE) " accounts match; the first " (ACCOUNTS_PER_PAGE) " by name are shown. Refine the search." }
        } @else {
            p.muted { (shown.len()) " found" }
        }
        (accounts_table(shown))
        (views::next_page("/console/accounts", &[], next))
    };
    ok(views::page(&console, "Accounts", "/console/accounts", body))
}

fn accounts_table(accounts: &[Account]) -> Markup {
    html! {
        div.scroll { table {
            thead { tr { th { "Name" } th { "ExtID" } th { "E-mail" } th { "Status" } th.num { "Credit" } } }
            tbody {
                @for a in accounts {
                    tr {
                        td { a href=(format!("/console/accounts/{}", a.id)) { (a.fields.name) } }
                        td { (a.fields.ext_id) }
                        td { (a.fields.email.as_str()) }
                        td { (badge(a.fields.status)) }
                        td.num { (money(a.credit_balance, a.fields.currency)) }
                    }
                }
            }
        } }
    }
}

/// The account page: details, credit, plans with their items, invoices, and
/// the timeline of its events.
pub async fn show(console: Console, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return failure(StatusCode::NOT_FOUND, "No such account.");
    };
    let app = &console.app;
    let tenant = &console.tenant;
    let account = match app
        .get_account(tenant, &RecordKey::Id(AccountId(id)), true)
        .await
    {
        Ok(account) => account,
        Err(e) => return app_failure(e),
    };
    let today = app.today(tenant);
    let plans = match app
        .list_plans(
            tenant,
            &PlanFilter {
                account_id: Some(account.id),
                ..PlanFilter::default()
            },
            PageRequest::first(100),
        )
        .await
    {
        Ok(page) => page.items,
        Err(e) => return app_failure(e),
    };
    let mut blocks = Vec::with_capacity(plans.len());
    let mut timeline_keys = vec![("account", account.id.0)];
    for plan in &plans {
        timeline_keys.push(("plan", plan.id.0));
        let items = app
            .list_recurring_items(
                tenant,
                &ItemFilter {
                    plan_id: Some(plan.id),
                    ..ItemFilter::default()
                },
                PageRequest::first(200),
            )
            .await;
        let one_time = app
            .list_one_time_items(
                tenant,
                &ItemFilter {
                    plan_id: Some(plan.id),
                    ..ItemFilter::default()
                },
                PageRequest::first(200),
            )
            .await;
        let (items, one_time) = match (items, one_time) {
            (Ok(items), Ok(one_time)) => (items.items, one_time.items),
            (Err(e), _) | (_, Err(e)) => return app_failure(e),
        };
        timeline_keys.extend(items.iter().map(|i| ("recurring_item", i.id.0)));
        timeline_keys.extend(one_time.iter().map(|i| ("one_time_item", i.id.0)));
        blocks.push(plan_block(&console, plan, &items, &one_time, today));
    }
    let invoices = match app
        .list_invoices(
            tenant,
            &InvoiceFilter {
                account_id: Some(account.id),
                ..InvoiceFilter::default()
            },
            PageRequest::first(INVOICES_ON_ACCOUNT),
            false,
        )
        .await
    {
        Ok(page) => page,
        Err(e) => return app_failure(e),
    };
    timeline_keys.extend(invoices.items.iter().map(|i| ("invoice", i.id.0)));
    let events = match app
        .recent_events(tenant, &timeline_keys, TIMELINE_EVENTS)
        .await
    {
        Ok(events) => events,
        Err(e) => return app_failure(e),
    };
    let f = &account.fields;
    let body = html! {
        @if account.deleted_at.is_some() { p.problem { "This account was deleted." } }
        div.split {
            section.card {
                dl.fields {
                    dt { "ExtID" } dd { (f.ext_id) }
                    dt { "Status" } dd { (badge(f.status)) }
                    dt { "E-mail" } dd { (f.email.as_str()) }
                    dt { "Type" } dd { (words(f.account_type)) }
                    dt { "Currency" } dd { (f.currency.code()) }
                    dt { "Invoice name" } dd { (or_dash(f.invoice_name.as_deref())) }
                    dt { "Address" } dd { (address(&account)) }
                    dt { "Contact" } dd { (or_dash(f.contact_person.as_deref())) }
                    dt { "Phone" } dd { (or_dash(f.phone.as_deref())) }
                    dt { "Account manager" } dd { (or_dash(f.account_manager.as_deref())) }
                    dt { "Tax exempt" } dd { @if f.tax_exempt { "yes " (or_dash(f.tax_exemption_number.as_deref())) } @else { "no" } }
                    dt { "Invoices" } dd { (words(f.invoice_grouping)) ", due " (words(f.due_date_method)) " " (f.due_date_days) }
                }
            }
            section.card.cards {
                div { div.label { "Credit balance" } div.figure { (money(account.credit_balance, f.currency)) } }
                div { div.label { "Invoices" } div.figure { (invoices.total) } }
                div { div.label { "Plans" } div.figure { (plans.len()) } }
            }
        }
        h2 { "Plans and items" }
        @if blocks.is_empty() { p.muted { "No plans." } }
        @for block in blocks { (block) }
        h2 { "Invoices" }
        (super::invoices::table(&invoices.items))
        @if invoices.total > invoices.items.len() as i64 {
            p { a href=(format!("/console/invoices?account={}", account.id)) { "All " (invoices.total) " invoices →" } }
        }
        h2 { "Timeline" }
        @if events.is_empty() { p.muted { "Nothing recorded yet." } }
        ol.timeline {
            @for event in &events {
                li {
                    time datetime=(event.occurred_at.to_string()) { (event.occurred_at.strftime("%Y-%m-%d %H:%M UTC")) }
                    (event.kind) " · " (object_label(&event.object))
                }
            }
        }
    };
    ok(views::page(
        &console,
        &account.fields.name,
        "/console/accounts",
        body,
    ))
}

fn address(account: &Account) -> String {
    let f = &account.fields;
    let parts: Vec<&str> = [
        f.address.as_deref(),
        f.city.as_deref(),
        f.state.as_deref(),
        f.zip.as_deref(),
        f.country.as_ref().map(|c| c.alpha2()),
    ]
    .into_iter()
    .flatten()
    .filter(|p| !p.is_empty())
    .collect();
    if parts.is_empty() {
        "—".to_owned()
    } else {
        parts.join(", ")
    }
}

fn plan_block(
    console: &Console,
    plan: &Plan,
    items: &[dynabill_app::model::RecurringItem],
    one_time: &[dynabill_app::model::OneTimeItem],
    today: jiff::civil::Date,
) -> Markup {
    let currency = plan.fields.currency;
    let live = plan.cancel_date.is_none();
    html! {
        section.card {
            h3 {
                (plan.fields.name.as_deref().unwrap_or(&plan.fields.ext_id)) " "
                (badge(plan.status(today)))
            }
            p.muted {
                "ExtID " (plan.fields.ext_id) " · from " (plan.fields.start_date)
                @if let Some(end) = plan.fields.end_date { " to " (end) }
                @if plan.fields.auto_renew { " · renews automatically every " (plan.fields.renewal_term_months) " months" }
                @if let Some(cancel) = plan.cancel_date { " · cancelled from " (cancel) }
            }
            @if live {
                div.actions {
                    a.button.secondary href=(format!("/console/plans/{}/renew", plan.id)) { "Renew" }
                    a.button.secondary href=(format!("/console/plans/{}/cancel", plan.id)) { "Cancel plan" }
                    a.button.secondary href=(format!("/console/plans/{}/one-time", plan.id)) { "Add a one-time charge" }
                }
            }
            div.scroll { table {
                thead { tr {
                    th { "Item" } th { "Status" } th.num { "Quantity" } th.num { "Unit price" } th.num { "Discount" }
                    th { "Period" } th { "Term" } th { "Next billing" } th { "Charged through" } th { "Actions" }
                } }
                tbody {
                    @for item in items {
                        @let terms = item.current_terms(today).ok();
                        @let status = item.status(today);
                        tr {
                            td { (item.fields.name) br; span.muted { (item.fields.ext_id) } }
                            td { (badge(status)) }
                            td.num { (terms.map_or_else(String::new, |t| number(t.quantity()))) }
                            td.num { (terms.map_or_else(String::new, |t| money(t.unit_price(), currency))) }
                            td.num { (terms.map_or_else(String::new, |t| format!("{}%", number(t.discount_percent())))) }
                            td { (words(item.fields.billing_period)) @if item.fields.period_count > 1 { " ×" (item.fields.period_count) } }
                            td { (item.fields.start_date) " – " (item.fields.end_date.map_or_else(|| "open".to_owned(), |d| d.to_string())) }
                            td { (item.next_billing_date().ok().flatten().map_or_else(|| "—".to_owned(), |d| d.to_string())) }
                            td { (item.charged_through.map_or_else(|| "—".to_owned(), |d| d.to_string())) }
                            td {
                                @if !matches!(status, ItemStatus::Cancelled | ItemStatus::Expired) {
                                    a href=(format!("/console/recurring-items/{}/upsell", item.id)) { "Upsell" } " · "
                                    a href=(format!("/console/recurring-items/{}/cancel", item.id)) { "Cancel" }
                                    @if !item.is_invoiced() {
                                        " · " a href=(format!("/console/recurring-items/{}/change-dates", item.id)) { "Change dates" }
                                    }
                                }
                            }
                        }
                    }
                    @for item in one_time {
                        tr {
                            td { (item.fields.name) " (one-time)" br; span.muted { (item.fields.ext_id) } }
                            td { (badge(item.status())) }
                            td.num { (number(item.fields.quantity)) }
                            td.num { (money(item.fields.unit_price, currency)) }
                            td.num { "—" }
                            td { "once" }
                            td { (item.fields.charge_date) }
                            td { "—" } td { "—" } td {}
                        }
                    }
                }
            } }
            @if console.tenant.test_today.is_some() { p.muted { "Test clock: today is " (today) "." } }
        }
    }
}

/// A record of the timeline in a few words.
fn object_label(record: &EventRecord) -> String {
    match record {
        EventRecord::Account(a) => format!("account {}", a.fields.ext_id),
        EventRecord::Plan(p) => format!("plan {}", p.fields.ext_id),
        EventRecord::RecurringItem(i) => format!("item {}", i.fields.ext_id),
        EventRecord::OneTimeItem(i) => format!("one-time item {}", i.fields.ext_id),
        EventRecord::Invoice(i) => format!(
            "invoice {} ({})",
            i.number.as_deref().unwrap_or("unnumbered"),
            money(i.total, i.currency)
        ),
        EventRecord::BillRun(_) => "bill run".to_owned(),
    }
}
