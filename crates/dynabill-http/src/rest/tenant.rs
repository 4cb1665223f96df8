//! The tenant's own resources: `/v1/settings`, `/v1/tax-rates` (the built-in
//! rate table) and `/v1/test-clock` (with `serve --test-clock`).

use axum::body::Body;
use axum::extract::Path;
use axum::response::Response;
use dynabill_app::model::{TaxRateRecord, Tenant};
use dynabill_app::tenants::SettingsChange;
use dynabill_core::calendar::ProrationPolicy;
use dynabill_core::domain::{TaxMode, TaxRateId};
use dynabill_core::money::Rounding;
use dynabill_core::tax::TaxRule;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::call::{Empty, path_id};
use super::shapes::{CountryCode, TimeZoneName, decimal};
use super::{Call, Reply};
use crate::codes::MethodError;
use crate::error::DoorError;
use crate::fields::MAX_TEXT;
use crate::params::Params;

/// The tenant's billing and tax settings.
#[derive(Serialize, ToSchema)]
pub struct Settings {
    /// The tenant's name.
    #[schema(example = "Acme Billing")]
    name: String,
    /// The default currency of new accounts.
    #[schema(example = "USD")]
    currency: String,
    /// The IANA time zone its dates are in.
    #[schema(example = "America/New_York")]
    time_zone: String,
    /// Whether new invoices go straight past Draft.
    #[schema(example = true)]
    auto_post: bool,
    /// The prefix of invoice numbers.
    #[schema(example = "INV-")]
    invoice_prefix: String,
    /// The local hour the scheduler runs the daily bill run.
    #[schema(example = 2)]
    bill_run_hour: u8,
    /// 1 actual days, 2 30/360.
    #[schema(example = 1)]
    proration_policy: i64,
    /// `half-up` or `half-even`.
    #[schema(example = "half-up")]
    rounding: &'static str,
    /// 0 none, 1 built-in rates, 2 an external tax service, 3 Avalara AvaTax.
    #[schema(example = 0)]
    tax_mode: i64,
    /// The AvaTax API's URL, when set.
    #[schema(example = "https://sandbox-rest.avatax.com")]
    avatax_url: Option<String>,
    /// The AvaTax account ID, when set.
    #[schema(example = "1100012345")]
    avatax_account_id: Option<String>,
    /// The AvaTax company code, when set.
    #[schema(example = "DEFAULT")]
    avatax_company_code: Option<String>,
    /// Whether an AvaTax license key is stored (it is never shown).
    #[schema(example = false)]
    avatax_license_key_set: bool,
}

fn rounding_name(rounding: Rounding) -> &'static str {
    match rounding {
        Rounding::HalfUp => "half-up",
        Rounding::HalfEven => "half-even",
    }
}

impl From<&Tenant> for Settings {
    fn from(t: &Tenant) -> Self {
        let s = &t.settings;
        let avatax = s.avatax.as_ref();
        Settings {
            name: t.name.clone(),
            currency: t.currency.code().to_owned(),
            time_zone: t.time_zone_name.clone(),
            auto_post: s.auto_post,
            invoice_prefix: s.invoice_prefix.clone(),
            bill_run_hour: s.bill_run_hour,
            proration_policy: s.proration_policy.code(),
            rounding: rounding_name(s.rounding),
            tax_mode: s.tax_mode.code(),
            avatax_url: avatax.map(|a| a.base_url.clone()),
            avatax_account_id: avatax.map(|a| a.account_id.clone()),
            avatax_company_code: avatax.map(|a| a.company_code.clone()),
            avatax_license_key_set: avatax.is_some(),
        }
    }
}

/// Changes to the settings: only the fields sent change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the parser below reads the values"
)]
pub struct SettingsChanges {
    /// Whether new invoices go straight past Draft.
    #[serde(default)]
    #[schema(example = false)]
    auto_post: bool,
    /// The prefix of invoice numbers: at most 32 visible ASCII characters.
    #[serde(default)]
    #[schema(
        example = "INV-",
        min_length = 1,
        max_length = 32,
        pattern = r"^[\x21-\x7e]+$"
    )]
    invoice_prefix: String,
    /// The local hour (0 to 23) of the daily bill run.
    #[serde(default)]
    #[schema(example = 2, minimum = 0, maximum = 23)]
    bill_run_hour: u8,
    /// 1 actual days, 2 30/360.
    #[serde(default)]
    #[schema(example = 1, minimum = 1, maximum = 2)]
    proration_policy: u8,
    /// `half-up` or `half-even`.
    #[serde(default)]
    #[schema(example = "half-up", pattern = "^(half-up|half-even)$")]
    rounding: String,
    /// An IANA time zone.
    #[serde(default)]
    #[schema(example = "Europe/Berlin")]
    time_zone: TimeZoneName,
    /// 0 none, 1 built-in rates, 2 an external tax service, 3 Avalara AvaTax (needs the four AvaTax settings).
    #[serde(default)]
    #[schema(example = 1, minimum = 0, maximum = 3)]
    tax_mode: u8,
    /// The AvaTax API's URL (http or https).
    #[serde(default)]
    #[schema(
        example = "https://sandbox-rest.avatax.com",
        pattern = "^https?://[a-z0-9.-]+(:[0-9]{1,5})?$"
    )]
    avatax_url: String,
    /// The AvaTax account ID.
    #[serde(default)]
    #[schema(
        example = "1100012345",
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    avatax_account_id: String,
    /// The AvaTax license key: stored as a secret, never shown again.
    #[serde(default)]
    #[schema(
        example = "0123456789ABCDEF",
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    avatax_license_key: String,
    /// The AvaTax company code.
    #[serde(default)]
    #[schema(
        example = "DEFAULT",
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    avatax_company_code: String,
}

fn settings_change(p: &Params) -> Result<SettingsChange, DoorError> {
    let rounding = match p.text("Rounding", 16)?.as_deref() {
        None => None,
        Some("half-up") => Some(Rounding::HalfUp),
        Some("half-even") => Some(Rounding::HalfEven),
        Some(_) => {
            return Err(DoorError::invalid(
                "Rounding",
                "must be half-up or half-even",
            ));
        }
    };
    Ok(SettingsChange {
        auto_post: p.flag("AutoPost")?,
        invoice_prefix: p.text("InvoicePrefix", 32)?,
        bill_run_hour: p.int_in("BillRunHour", 0..=23)?.map(|h| h as u8),
        proration_policy: p.coded(
            "ProrationPolicy",
            ProrationPolicy::from_code,
            "1 (actual days) or 2 (30/360)",
        )?,
        rounding,
        time_zone: p.text("TimeZone", 64)?,
        tax_mode: p.coded(
            "TaxMode",
            TaxMode::from_code,
            "0 (none), 1 (built-in), 2 (external) or 3 (Avalara)",
        )?,
        avatax_url: p.text("AvataxUrl", MAX_TEXT)?,
        avatax_account_id: p.text("AvataxAccountId", MAX_TEXT)?,
        avatax_license_key: p.text("AvataxLicenseKey", MAX_TEXT)?,
        avatax_company_code: p.text("AvataxCompanyCode", MAX_TEXT)?,
    })
}

/// Get the settings
#[utoipa::path(get, path = "/v1/settings", tag = "Tenant",
    responses((status = 200, description = "The tenant's settings", body = Settings)))]
pub async fn get_settings(call: Call) -> Response {
    call.read(async |call| Ok(Reply::ok(&Settings::from(&call.tenant))))
        .await
}

/// Change the settings
#[utoipa::path(patch, path = "/v1/settings", tag = "Tenant",
    request_body = Option<SettingsChanges>,
    responses((status = 200, description = "The settings as changed", body = Settings)))]
pub async fn update_settings(call: Call, body: Body) -> Response {
    call.write::<SettingsChanges>(body, async |call, p| {
        let tenant = call
            .app
            .update_tenant_settings(&call.tenant.app_key, settings_change(&p)?)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&Settings::from(&tenant)))
    })
    .await
}

/// A rule of the built-in tax rate table.
#[derive(Serialize, ToSchema)]
pub struct TaxRate {
    /// Assigned by dynabill.
    #[schema(example = 3)]
    id: i64,
    /// The tax's name on invoices.
    #[schema(example = "CA State Tax")]
    name: String,
    /// ISO 3166-1 alpha-2 country the rule applies in.
    #[schema(example = "US")]
    country: String,
    /// The state it applies in (`null`: the whole country).
    #[schema(example = "CA")]
    state: Option<String>,
    /// The tax code it applies to (`null`: every line).
    #[schema(example = "SW054000")]
    tax_code: Option<String>,
    /// The rate in percent (decimal string).
    #[schema(example = "7.25")]
    rate: String,
}

impl From<&TaxRateRecord> for TaxRate {
    fn from(r: &TaxRateRecord) -> Self {
        TaxRate {
            id: r.id.0,
            name: r.rule.name.clone(),
            country: r.rule.country.clone(),
            state: r.rule.state.clone(),
            tax_code: r.rule.tax_code.clone(),
            rate: decimal(r.rule.rate),
        }
    }
}

/// A new rule of the rate table.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the parser below reads the values"
)]
pub struct NewTaxRate {
    /// The tax's name on invoices.
    #[schema(
        example = "CA State Tax",
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    name: String,
    /// ISO 3166-1 alpha-2 country code, in upper case.
    #[schema(example = "US")]
    country: CountryCode,
    /// The state it applies in (absent: the whole country).
    #[serde(default)]
    #[schema(example = "CA", max_length = 255, pattern = r"^[^\u0000]*$")]
    state: Option<String>,
    /// The tax code it applies to (absent: every line).
    #[serde(default)]
    #[schema(example = "SW054000", max_length = 255, pattern = r"^[^\u0000]*$")]
    tax_code: Option<String>,
    /// The rate in percent, from 0 to 100 with at most 6 decimals (decimal string).
    #[schema(
        example = "7.25",
        pattern = r"^(100(\.0{1,6})?|[0-9]{1,2}(\.[0-9]{1,6})?)$"
    )]
    rate: String,
}

/// A list of tax rates (the whole table: it is small).
#[derive(Serialize, ToSchema)]
pub struct TaxRates {
    /// Every rule, in ID order.
    data: Vec<TaxRate>,
}

/// List the tax rates
#[utoipa::path(get, path = "/v1/tax-rates", tag = "Tenant",
    responses((status = 200, description = "The built-in rate table", body = TaxRates)))]
pub async fn list_tax_rates(call: Call) -> Response {
    call.read(async |call| {
        let rates = call
            .app
            .list_tax_rates(&call.tenant.app_key)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&TaxRates {
            data: rates.iter().map(TaxRate::from).collect(),
        }))
    })
    .await
}

/// Add a tax rate
#[utoipa::path(post, path = "/v1/tax-rates", tag = "Tenant",
    request_body = NewTaxRate,
    responses((status = 201, description = "The rule added; `Location` names it", body = TaxRate,
        headers(("Location" = String, description = "/v1/tax-rates/{id}")))))]
pub async fn add_tax_rate(call: Call, body: Body) -> Response {
    call.write::<NewTaxRate>(body, async |call, p| {
        let text = |name: &str| p.optional_text(name, MAX_TEXT).map(Option::flatten);
        let rule = TaxRule {
            name: p.text("Name", MAX_TEXT)?.unwrap_or_default(),
            country: p.text("Country", 2)?.unwrap_or_default(),
            state: text("State")?,
            tax_code: text("TaxCode")?,
            rate: p
                .decimal("Rate", 6)?
                .ok_or_else(|| DoorError::missing("Rate", ""))?,
        };
        let record = call
            .app
            .add_tax_rate(&call.tenant.app_key, rule)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::created(
            format!("/v1/tax-rates/{}", record.id),
            &TaxRate::from(&record),
        ))
    })
    .await
}

/// Remove a tax rate
#[utoipa::path(delete, path = "/v1/tax-rates/{id}", tag = "Tenant",
    params(("id" = i64, Path, description = "The rule's ID", minimum = 1)),
    responses((status = 204, description = "Removed")))]
pub async fn remove_tax_rate(call: Call, Path(id): Path<String>, body: Body) -> Response {
    call.write::<Empty>(body, async |call, _| {
        let id: TaxRateId = path_id(&id, "tax rate")?;
        call.app
            .remove_tax_rate(&call.tenant.app_key, id)
            .await
            .map_err(|_| {
                DoorError::Method(
                    MethodError::NotFound,
                    format!("no tax rate with id {id} exists"),
                )
            })?;
        Ok(Reply::no_content())
    })
    .await
}

/// The test clock of a tenant.
#[derive(Serialize, ToSchema)]
pub struct TestClock {
    /// The tenant's today: the test clock's date when set, else the real one.
    #[schema(example = "2026-03-01")]
    today: String,
    /// Whether a test date is set.
    #[schema(example = true)]
    frozen: bool,
}

/// A move of the test clock.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "a schema: it checks the body; the door's parser reads the values"
)]
pub struct TestClockMove {
    /// The tenant's new today; `null` follows the real clock again.
    #[schema(example = "2026-03-01", format = Date)]
    today: Option<String>,
}

fn clock_on(call: &Call) -> Result<(), DoorError> {
    if call.app.test_clock() {
        return Ok(());
    }
    Err(DoorError::Method(
        MethodError::NotFound,
        "the test clock is off; start the server with --test-clock to use it".into(),
    ))
}

/// Read the test clock
///
/// Only on a server started with `--test-clock`.
#[utoipa::path(get, path = "/v1/test-clock", tag = "Tenant",
    responses((status = 200, description = "The tenant's today", body = TestClock)))]
pub async fn get_test_clock(call: Call) -> Response {
    call.read(async |call| {
        clock_on(call)?;
        Ok(Reply::ok(&TestClock {
            today: call.app.today(&call.tenant).to_string(),
            frozen: call.tenant.test_today.is_some(),
        }))
    })
    .await
}

/// Move the test clock
///
/// Only on a server started with `--test-clock`. Bill runs are not started by
/// this: `POST /v1/bill-runs` runs one for the new today.
#[utoipa::path(post, path = "/v1/test-clock", tag = "Tenant",
    request_body = TestClockMove,
    responses((status = 200, description = "The tenant's new today", body = TestClock)))]
pub async fn move_test_clock(call: Call, body: Body) -> Response {
    call.write::<TestClockMove>(body, async |call, p| {
        clock_on(call)?;
        let today = p.date("Today")?.flatten();
        call.app
            .set_test_today(&call.tenant, today)
            .await
            .map_err(|e| call.fail(e))?;
        let tenant = call
            .app
            .tenant_by_app_key(&call.tenant.app_key)
            .await
            .map_err(|e| call.fail(e))?;
        Ok(Reply::ok(&TestClock {
            today: call.app.today(&tenant).to_string(),
            frozen: tenant.test_today.is_some(),
        }))
    })
    .await
}
