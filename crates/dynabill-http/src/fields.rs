//! Wire names of fields and parameters, and their bounds (SPEC §4, §5).

use dynabill_app::Field;

pub const ID: &str = "ID";
pub const EXT_ID: &str = "ExtID";
pub const API_CODE: &str = "api_code";
pub const ENTITY_CODE: &str = "entity_code";
pub const PAGE_SIZE: &str = "PageSize";
pub const CURSOR: &str = "Cursor";
pub const INCLUDE_DELETED: &str = "IncludeDeleted";

/// Default and largest page sizes (SPEC §2).
pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 1000;
/// Longest ordinary string, and longest long-text field (notes, descriptions, addresses).
pub const MAX_TEXT: usize = 255;
pub const MAX_LONG_TEXT: usize = 4000;

/// The wire name of a field a use case blames.
pub fn wire_name(field: Field) -> &'static str {
    match field {
        Field::Id => ID,
        Field::ExtId => EXT_ID,
        Field::AccountName => "AccountName",
        Field::AccountType => "AccountType",
        Field::AccountStatus => "AccountStatus",
        Field::Email => "Email",
        Field::Currency => "Currency",
        Field::AccountId => "AccountID",
        Field::AccountExtId => "AccountExtID",
        Field::StartDate => "StartDate",
        Field::EndDate => "EndDate",
        Field::BillingDay => "BillingDay",
        Field::RenewalTermMonths => "RenewalTermMonths",
        Field::CancelDate => "CancelDate",
        Field::IdempotencyKey => "Idempotency-Key",
        Field::TenantName => "name",
        Field::TimeZone => "timezone",
        Field::UserName => "user",
        Field::Url => "Url",
        Field::EventTypes => "EventTypes",
        Field::Since => "Since",
        Field::From => "From",
        Field::WithinDays => "WithinDays",
        Field::PlanId => "PlanID",
        Field::PlanExtId => "PlanExtID",
        Field::ProductCode => "ProductCode",
        Field::ItemName => "ItemName",
        Field::Quantity => "Quantity",
        Field::UnitPrice => "UnitPrice",
        Field::DiscountPercent => "DiscountPercent",
        Field::BillingPeriod => "BillingPeriod",
        Field::BillingPeriodCount => "BillingPeriodCount",
        Field::BillingTiming => "BillingTiming",
        Field::ChargeDate => "ChargeDate",
        Field::EffectiveDate => "EffectiveDate",
        Field::InvoicePrefix => "invoice-prefix",
        Field::BillRunHour => "bill-run-hour",
        Field::InvoiceStatus => "InvoiceStatus",
        Field::DueDate => "DueDate",
        Field::PaidDate => "PaidDate",
        Field::TaxMode => "tax-mode",
        Field::AvaTaxUrl => "avatax-url",
        Field::TaxRate => "rate",
        Field::TaxName => "name",
        Field::Country => "Country",
        Field::TaxAmount => "items[].taxes[].amount",
        Field::InvoiceLineId => "items[].id",
    }
}
