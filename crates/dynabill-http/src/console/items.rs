//! Plan and item actions. Each is a form, then (for the edits the bill run can
//! preview: upsell, cancel and new dates of an item, a one-time charge) a
//! preview of what the next bill run would add before and after the change,
//! then the confirmation, which runs the same use case as the API.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dynabill_app::model::{NewInvoice, RecordKey};
use dynabill_app::recurring::{EditPreview, ItemEdit};
use dynabill_core::domain::{PlanId, RecurringItemId};
use maud::{Markup, html};

use super::session::Console;
use super::views::{self, csrf, money, number, words};
use super::{Form, failure, ok, see_other};
use crate::codes::MethodError;
use crate::error::DoorError;
use crate::ops::{one_time, plans, recurring};
use crate::params::Params;

/// One field of an action's form: API name, label, input type, and a value.
struct Field {
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    value: String,
}

fn field(name: &'static str, label: &'static str, kind: &'static str) -> Field {
    Field {
        name,
        label,
        kind,
        value: String::new(),
    }
}

/// The fields of a recurring item action, and its title.
fn item_fields(action: &str, today: jiff::civil::Date) -> Option<(&'static str, Vec<Field>)> {
    let dated = |mut f: Field| {
        f.value = today.to_string();
        f
    };
    Some(match action {
        "upsell" => (
            "Upsell",
            vec![
                field("Quantity", "New quantity", "number"),
                field("UnitPrice", "New unit price", "text"),
                dated(field("EffectiveDate", "Effective date", "date")),
                field(
                    "ProrationMode",
                    "Proration (1 by day, 2 from the next period)",
                    "number",
                ),
            ],
        ),
        "cancel" => (
            "Cancel item",
            vec![
                dated(field("CancelDate", "Cancel date", "date")),
                field(
                    "CancelAt",
                    "Cancel at (1 the date, 2 end of the billed period)",
                    "number",
                ),
                field("CreditMode", "Credit unused days (1 yes, 0 no)", "number"),
            ],
        ),
        "change-dates" => (
            "Change dates",
            vec![
                field("StartDate", "New start date", "date"),
                field("EndDate", "New end date", "date"),
            ],
        ),
        _ => return None,
    })
}

fn plan_fields(action: &str, today: jiff::civil::Date) -> Option<(&'static str, Vec<Field>)> {
    Some(match action {
        "renew" => (
            "Renew plan",
            vec![
                field("EndDate", "New end date (or a term)", "date"),
                field("RenewalTermMonths", "Term in months", "number"),
            ],
        ),
        "cancel" => (
            "Cancel plan",
            vec![
                Field {
                    value: today.to_string(),
                    ..field("CancelDate", "Cancel date", "date")
                },
                field("CreditMode", "Credit unused days (1 yes, 0 no)", "number"),
            ],
        ),
        "one-time" => (
            "Add a one-time charge",
            vec![
                field("ExtID", "ExtID", "text"),
                field("ProductCode", "Product code", "text"),
                field("ItemName", "Name", "text"),
                Field {
                    value: "1".into(),
                    ..field("Quantity", "Quantity", "number")
                },
                field("UnitPrice", "Unit price", "text"),
                Field {
                    value: today.to_string(),
                    ..field("ChargeDate", "Charge date", "date")
                },
            ],
        ),
        _ => return None,
    })
}

/// The date of the bill run a preview shows: the next one that bills the
/// change, so the change's own date when it is ahead of today.
fn preview_date(action: &str, p: &Params, today: jiff::civil::Date) -> jiff::civil::Date {
    let field = match action {
        "upsell" => "EffectiveDate",
        "cancel" => "CancelDate",
        "change-dates" => "StartDate",
        _ => "ChargeDate",
    };
    p.required_date(field)
        .ok()
        .flatten()
        .map_or(today, |date| date.max(today))
}

/// Whether the action is previewed before it is confirmed.
fn previewed(action: &str) -> bool {
    matches!(
        action,
        "upsell" | "cancel" | "change-dates" | "one-time" | "renew"
    )
}

fn form_page(
    console: &Console,
    title: &str,
    path: &str,
    fields: &[Field],
    previewed: bool,
    problem: Option<&str>,
) -> Markup {
    let body = html! {
        (views::problem(problem))
        form.stack method="post" action=(path) {
            (csrf(console))
            input type="hidden" name="step" value=(if previewed { "preview" } else { "confirm" });
            @for f in fields {
                label { (f.label)
                    input type=(f.kind) name=(f.name) value=(f.value) step=[(f.kind == "number").then_some("any")];
                }
            }
            button type="submit" { @if previewed { "Preview" } @else { "Confirm" } }
        }
    };
    views::page(console, title, "/console/accounts", body)
}

/// The preview: the invoices before and after, and the confirmation form
/// carrying the same fields.
fn preview_page(
    console: &Console,
    title: &str,
    path: &str,
    form: &Form,
    preview: &EditPreview,
) -> Markup {
    let body = html! {
        p { "What the bill run dated " (preview.date) " would add for this account:" }
        div.split {
            section.card { h2 { "Now" } (invoices(&preview.before)) }
            section.card { h2 { "After this change" } (invoices(&preview.after)) }
        }
        form.actions method="post" action=(path) {
            (csrf(console))
            input type="hidden" name="step" value="confirm";
            @for (name, value) in form.carried() {
                input type="hidden" name=(name) value=(value);
            }
            button type="submit" { "Confirm" }
            a.button.secondary href=(path) { "Change" }
        }
    };
    views::page(console, title, "/console/accounts", body)
}

fn invoices(invoices: &[NewInvoice]) -> Markup {
    html! {
        @if invoices.is_empty() { p.muted { "No invoice." } }
        @for invoice in invoices {
            table.preview {
                thead { tr { th { "Line" } th { "Service period" } th.num { "Quantity" } th.num { "Amount" } } }
                tbody {
                    @for line in &invoice.lines {
                        tr {
                            td { (line.description) " (" (words(line.line_type)) ")" }
                            td { (line.service_start) " – " (line.service_end) }
                            td.num { (number(line.quantity)) }
                            td.num { (money(line.amount, invoice.currency)) }
                        }
                    }
                    tr { th colspan="3" { "Total" } th.num { (money(invoice.total, invoice.currency)) } }
                }
            }
        }
    }
}

/// What an action is about: a recurring item's or a plan's, by ID.
#[derive(Clone, Copy)]
enum Target {
    Item,
    Plan,
}

impl Target {
    fn fields(self, action: &str, today: jiff::civil::Date) -> Option<(&'static str, Vec<Field>)> {
        match self {
            Target::Item => item_fields(action, today),
            Target::Plan => plan_fields(action, today),
        }
    }

    fn path(self, id: i64, action: &str) -> String {
        match self {
            Target::Item => format!("/console/recurring-items/{id}/{action}"),
            Target::Plan => format!("/console/plans/{id}/{action}"),
        }
    }
}

/// One action of one record, as asked: its form's title, fields and path.
struct Action {
    id: i64,
    name: String,
    title: &'static str,
    fields: Vec<Field>,
    path: String,
    today: jiff::civil::Date,
}

impl Action {
    /// The action named in the path, or a 404 page.
    fn of(
        console: &Console,
        target: Target,
        id: &str,
        name: String,
    ) -> Result<Action, NoSuchAction> {
        let today = console.app.today(&console.tenant);
        let (Ok(id), Some((title, fields))) = (id.parse::<i64>(), target.fields(&name, today))
        else {
            return Err(NoSuchAction);
        };
        Ok(Action {
            id,
            path: target.path(id, &name),
            name,
            title,
            fields,
            today,
        })
    }

    fn form(&self, console: &Console) -> Response {
        ok(form_page(
            console,
            self.title,
            &self.path,
            &self.fields,
            previewed(&self.name),
            None,
        ))
    }

    /// The form again with its values and what went wrong (422).
    fn refused(mut self, console: &Console, form: &Form, problem: &str) -> Response {
        for f in &mut self.fields {
            f.value = form.get(f.name).unwrap_or_default().to_owned();
        }
        let page = form_page(
            console,
            self.title,
            &self.path,
            &self.fields,
            previewed(&self.name),
            Some(problem),
        );
        let mut response = ok(page);
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        response
    }

    /// A use case's refusal shown on the form; anything else as a failure page.
    fn shown(self, console: &Console, form: &Form, e: dynabill_app::AppError) -> Response {
        let e = crate::error::from_app(e, &console.request_id);
        match &e {
            DoorError::Field { .. }
            | DoorError::Method(
                MethodError::NotAllowed
                | MethodError::Invalid
                | MethodError::Missing
                | MethodError::Duplicate,
                _,
            ) => self.refused(console, form, &super::said(&e)),
            _ => super::door_failure(&e),
        }
    }

    /// The preview page of `preview`, or the refusal that stopped it.
    fn previewed(
        self,
        console: &Console,
        form: &Form,
        preview: Result<EditPreview, dynabill_app::AppError>,
    ) -> Response {
        match preview {
            Ok(preview) => ok(preview_page(
                console, self.title, &self.path, form, &preview,
            )),
            Err(e) => self.shown(console, form, e),
        }
    }

    /// Where a done action leads: the account's page; or its refusal.
    fn done(
        self,
        console: &Console,
        form: &Form,
        account: Result<dynabill_core::domain::AccountId, dynabill_app::AppError>,
    ) -> Response {
        match account {
            Ok(account) => see_other(&format!("/console/accounts/{account}")),
            Err(e) => self.shown(console, form, e),
        }
    }
}

/// An action the path names that does not exist.
struct NoSuchAction;

impl IntoResponse for NoSuchAction {
    fn into_response(self) -> Response {
        failure(StatusCode::NOT_FOUND, "No such action.")
    }
}

pub async fn item_form(console: Console, Path((id, action)): Path<(String, String)>) -> Response {
    match Action::of(&console, Target::Item, &id, action) {
        Ok(action) => action.form(&console),
        Err(missing) => missing.into_response(),
    }
}

pub async fn plan_form(console: Console, Path((id, action)): Path<(String, String)>) -> Response {
    match Action::of(&console, Target::Plan, &id, action) {
        Ok(action) => action.form(&console),
        Err(missing) => missing.into_response(),
    }
}

/// A posted action: its form (CSRF checked) and the action, or the refusal.
fn posted(
    console: &Console,
    target: Target,
    id: &str,
    name: String,
    body: &Bytes,
) -> Result<(Form, Action), Box<Response>> {
    let refused = |r: Response| Box::new(r);
    let form = Form::read(console, body).map_err(|f| refused(f.into_response()))?;
    let action = Action::of(console, target, id, name).map_err(|m| refused(m.into_response()))?;
    Ok((form, action))
}

fn item_edit(action: &str, p: &Params) -> Result<ItemEdit, DoorError> {
    Ok(match action {
        "upsell" => ItemEdit::Upsell(recurring::upsell_args(p)?),
        "cancel" => {
            let (at, credit) = recurring::cancel_args(p)?;
            ItemEdit::Cancel { at, credit }
        }
        _ => {
            let (start, end) = recurring::dates_args(p)?;
            ItemEdit::Dates { start, end }
        }
    })
}

pub async fn item_action(
    console: Console,
    Path((id, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (form, action) = match posted(&console, Target::Item, &id, name, &body) {
        Ok(posted) => posted,
        Err(refused) => return *refused,
    };
    let key = RecordKey::Id(RecurringItemId(action.id));
    let p = form.params();
    let edit = match item_edit(&action.name, &p) {
        Ok(edit) => edit,
        Err(e) => return action.refused(&console, &form, &super::said(&e)),
    };
    let (app, tenant) = (&console.app, &console.tenant);
    if form.get("step") == Some("preview") {
        let date = preview_date(&action.name, &p, action.today);
        let preview = app.preview_item_edit(tenant, &key, &edit, date).await;
        return action.previewed(&console, &form, preview);
    }
    let done = match &edit {
        ItemEdit::Upsell(upsell) => {
            app.upsell_recurring_item(tenant, &key, upsell.clone())
                .await
        }
        ItemEdit::Cancel { at, credit } => {
            app.cancel_recurring_item(tenant, &key, *at, *credit).await
        }
        ItemEdit::Dates { start, end } => {
            app.change_recurring_item_dates(tenant, &key, *start, *end)
                .await
        }
    };
    action.done(&console, &form, done.map(|item| item.account_id))
}

pub async fn plan_action(
    console: Console,
    Path((id, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (form, action) = match posted(&console, Target::Plan, &id, name, &body) {
        Ok(posted) => posted,
        Err(refused) => return *refused,
    };
    let key = RecordKey::Id(PlanId(action.id));
    let (app, tenant) = (&console.app, &console.tenant);
    let mut p = form.params();
    let done = match action.name.as_str() {
        "renew" => match plans::renew_args(&p) {
            Ok(renewal) if form.get("step") == Some("preview") => {
                let preview = app.preview_plan_renewal(tenant, &key, &renewal).await;
                return action.previewed(&console, &form, preview);
            }
            Ok(renewal) => app
                .renew_plan(tenant, &key, renewal)
                .await
                .map(|plan| plan.account_id),
            Err(e) => return action.refused(&console, &form, &super::said(&e)),
        },
        "cancel" => match plans::cancel_args(&p) {
            Ok((date, credit)) if form.get("step") == Some("preview") => {
                let preview = app.preview_plan_cancel(tenant, &key, date, credit).await;
                return action.previewed(&console, &form, preview);
            }
            Ok((date, credit)) => app
                .cancel_plan(tenant, &key, date, credit)
                .await
                .map(|plan| plan.account_id),
            Err(e) => return action.refused(&console, &form, &super::said(&e)),
        },
        _ => {
            p.set("PlanID", serde_json::Value::String(action.id.to_string()));
            let patch = match one_time::patch(&p) {
                Ok(patch) => patch,
                Err(e) => return action.refused(&console, &form, &super::said(&e)),
            };
            if form.get("step") == Some("preview") {
                let date = preview_date(&action.name, &p, action.today);
                let preview = app.preview_one_time_item(tenant, patch, date).await;
                return action.previewed(&console, &form, preview);
            }
            app.create_one_time_item(tenant, patch)
                .await
                .map(|item| item.account_id)
        }
    };
    action.done(&console, &form, done)
}
