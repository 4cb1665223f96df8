//! Tenants and their billing settings.

use dynabill_core::calendar::ProrationPolicy;
use dynabill_core::domain::{TaxMode, TenantId};
use dynabill_core::money::Currency;
use dynabill_core::money::Rounding;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::tax_engine::AvaTaxSettings;

/// A tenant as the use cases see it once its caller is authenticated.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: TenantId,
    pub app_key: String,
    pub name: String,
    pub currency: Currency,
    pub time_zone_name: String,
    pub time_zone: TimeZone,
    pub settings: TenantSettings,
    /// With `serve --test-clock`: the tenant's "today", when set.
    pub test_today: Option<Date>,
    pub created_at: Timestamp,
}

/// The per-tenant billing settings (`dynabill tenant set`).
#[derive(Clone, Debug, PartialEq)]
pub struct TenantSettings {
    /// New invoices go straight past Draft.
    pub auto_post: bool,
    /// Prefix of invoice numbers, e.g. `INV-` gives `INV-000001`.
    pub invoice_prefix: String,
    /// Local hour (0..=23, tenant time zone) at which the scheduler runs the daily bill run.
    pub bill_run_hour: u8,
    pub proration_policy: ProrationPolicy,
    pub rounding: Rounding,
    pub tax_mode: TaxMode,
    /// Needed with `TaxMode` 3.
    pub avatax: Option<AvaTaxSettings>,
}

impl Default for TenantSettings {
    fn default() -> Self {
        TenantSettings {
            auto_post: true,
            invoice_prefix: "INV-".to_owned(),
            bill_run_hour: 2,
            proration_policy: ProrationPolicy::ActualDays,
            rounding: Rounding::HalfUp,
            tax_mode: TaxMode::None,
            avatax: None,
        }
    }
}
