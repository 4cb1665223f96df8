//! The console's page frame and the small pieces every screen uses: money in
//! its currency's minor unit with grouped digits, statuses in words, forms that
//! carry their CSRF token.

use dynabill_core::money::Currency;
use maud::{DOCTYPE, Markup, html};
use rust_decimal::Decimal;

use super::session::{CSRF_FIELD, Console};
use crate::rest::shapes;

/// The stylesheet, vendored in the binary.
pub const CSS: &str = include_str!("console.css");

/// The screens of the navigation bar: path and label.
const NAVIGATION: [(&str, &str); 6] = [
    ("/console", "Home"),
    ("/console/accounts", "Accounts"),
    ("/console/invoices", "Invoices"),
    ("/console/tax", "Tax queue"),
    ("/console/bill-runs", "Bill runs"),
    ("/console/settings", "Settings"),
];

/// A page's head: its title, the viewport, the stylesheet.
fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · dynabill" }
            link rel="stylesheet" href="/console/console.css";
        }
    }
}

/// A whole page of a signed-in user.
pub fn page(console: &Console, title: &str, active: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    a.brand href="/console" { "dynabill" }
                    nav {
                        @for (path, label) in NAVIGATION {
                            a href=(path) aria-current=[(path == active).then_some("page")] { (label) }
                        }
                    }
                    div.who {
                        span title=(format!("Signed in until {}", console.session.expires.strftime("%Y-%m-%d %H:%M UTC"))) {
                            (console.tenant.name) " · " (console.session.user)
                        }
                        form method="post" action="/console/sign-out" {
                            (csrf(console))
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page shown without a session (sign-in, errors before sign-in).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                main.narrow {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden field every form that changes something carries.
pub fn csrf(console: &Console) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(console.session.csrf); }
}

/// A message above a form: what went wrong.
pub fn problem(message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message {
            p.problem role="alert" { (message) }
        }
    }
}

/// An amount in its currency: rounded to the minor unit, digits grouped by
/// thousands, the code after it: `1,234.50 USD`.
pub fn money(value: Decimal, currency: Currency) -> String {
    format!(
        "{} {}",
        shapes::grouped_money(value, currency),
        currency.code()
    )
}

/// A quantity or price without trailing zeros.
pub fn number(value: Decimal) -> String {
    shapes::decimal(value)
}

/// A value's name in words, from its Rust name: `PendingTax` → `Pending tax`.
pub fn words(value: impl std::fmt::Debug) -> String {
    let name = format!("{value:?}");
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if i > 0 && c.is_uppercase() {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A status as a badge, its class from its name.
pub fn badge(value: impl std::fmt::Debug) -> Markup {
    let label = words(value);
    let class = format!("badge {}", label.to_lowercase().replace(' ', "-"));
    html! { span class=(class) { (label) } }
}

/// An optional value, or a dash.
pub fn or_dash(value: Option<&str>) -> &str {
    value.filter(|v| !v.is_empty()).unwrap_or("—")
}

/// A link that keeps a list's filters and moves to the page after `after`.
pub fn next_page(path: &str, filters: &[(&str, String)], after: Option<i64>) -> Markup {
    html! {
        @if let Some(after) = after {
            @let query = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(filters.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (*k, v.as_str())))
                .append_pair("after", &after.to_string())
                .finish();
            p.pager { a rel="next" href=(format!("{path}?{query}")) { "Next page →" } }
        }
    }
}
