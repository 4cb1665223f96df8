//! The wire shapes of recurring items (with their history) and one-time items.

use dynabill_app::model::{ItemChange, ItemChangeKind, OneTimeItem, RecurringItem};
use dynabill_core::calendar::CalendarError;
use jiff::civil::Date;
use serde::Serialize;

use super::{Num, day, stamp};

/// The name of a kind of change, as histories show it.
pub fn change_name(kind: ItemChangeKind) -> &'static str {
    match kind {
        ItemChangeKind::Created => "Created",
        ItemChangeKind::Updated => "Updated",
        ItemChangeKind::Upsell => "Upsell",
        ItemChangeKind::Renewal => "Renewal",
        ItemChangeKind::Cancellation => "Cancellation",
        ItemChangeKind::DatesChanged => "DatesChanged",
        ItemChangeKind::Deleted => "Deleted",
    }
}

#[derive(Serialize)]
#[expect(non_snake_case, reason = "the wire's field names")]
pub struct HistoryOut {
    Change: &'static str,
    ChangeType: i64,
    EffectiveDate: String,
    Quantity: Option<Num>,
    UnitPrice: Option<Num>,
    DiscountPercent: Option<Num>,
    StartDate: String,
    EndDate: Option<String>,
    ProrationMode: Option<u8>,
    CreditMode: Option<u8>,
    RecordedAt: String,
}

impl From<&ItemChange> for HistoryOut {
    fn from(c: &ItemChange) -> Self {
        HistoryOut {
            Change: change_name(c.kind),
            ChangeType: c.kind.code(),
            EffectiveDate: day(c.effective_date),
            Quantity: c.quantity.map(Num),
            UnitPrice: c.unit_price.map(Num),
            DiscountPercent: c.discount_percent.map(Num),
            StartDate: day(c.start_date),
            EndDate: c.end_date.map(day),
            ProrationMode: c.prorate.map(u8::from),
            CreditMode: c.credit.map(u8::from),
            RecordedAt: stamp(c.recorded_at),
        }
    }
}

#[derive(Serialize)]
#[expect(non_snake_case, reason = "the wire's field names")]
pub struct RecurringItemOut<'a> {
    ID: String,
    ExtID: &'a str,
    PlanID: String,
    PlanExtID: &'a str,
    AccountID: String,
    ProductCode: &'a str,
    ItemName: &'a str,
    Description: Option<&'a str>,
    Quantity: Num,
    UnitPrice: Num,
    DiscountPercent: Num,
    BillingPeriod: i64,
    BillingPeriodCount: u32,
    BillingTiming: i64,
    StartDate: String,
    EndDate: Option<String>,
    TaxCode: Option<&'a str>,
    ItemStatus: i64,
    ChargedThroughDate: Option<String>,
    NextBillingDate: Option<String>,
    CancelDate: Option<String>,
    CreditMode: Option<u8>,
    Deleted: u8,
    DeletedAt: Option<String>,
    CreatedAt: String,
    UpdatedAt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    History: Option<Vec<HistoryOut>>,
}

impl<'a> RecurringItemOut<'a> {
    /// The item as of `today` (terms in force, status); with its history if asked.
    pub fn new(
        item: &'a RecurringItem,
        today: Date,
        with_history: bool,
    ) -> Result<Self, CalendarError> {
        let f = &item.fields;
        let terms = item.current_terms(today)?;
        Ok(RecurringItemOut {
            ID: item.id.to_string(),
            ExtID: &f.ext_id,
            PlanID: item.plan_id.to_string(),
            PlanExtID: &item.plan_ext_id,
            AccountID: item.account_id.to_string(),
            ProductCode: &f.product_code,
            ItemName: &f.name,
            Description: f.description.as_deref(),
            Quantity: Num(terms.quantity()),
            UnitPrice: Num(terms.unit_price()),
            DiscountPercent: Num(terms.discount_percent()),
            BillingPeriod: f.billing_period.code(),
            BillingPeriodCount: f.period_count,
            BillingTiming: f.timing.code(),
            StartDate: day(f.start_date),
            EndDate: f.end_date.map(day),
            TaxCode: f.tax_code.as_deref(),
            ItemStatus: item.status(today).code(),
            ChargedThroughDate: item.charged_through.map(day),
            NextBillingDate: item.next_billing_date()?.map(day),
            CancelDate: item.cancellation.map(|c| day(c.date)),
            CreditMode: item.cancellation.map(|c| u8::from(c.credit)),
            Deleted: u8::from(item.deleted_at.is_some()),
            DeletedAt: item.deleted_at.map(stamp),
            CreatedAt: stamp(item.created_at),
            UpdatedAt: stamp(item.updated_at),
            History: with_history.then(|| item.changes.iter().map(HistoryOut::from).collect()),
        })
    }
}

#[derive(Serialize)]
#[expect(non_snake_case, reason = "the wire's field names")]
pub struct OneTimeItemOut<'a> {
    ID: String,
    ExtID: &'a str,
    PlanID: String,
    PlanExtID: &'a str,
    AccountID: String,
    ProductCode: &'a str,
    ItemName: &'a str,
    Description: Option<&'a str>,
    Quantity: Num,
    UnitPrice: Num,
    ChargeDate: String,
    TaxCode: Option<&'a str>,
    ItemStatus: i64,
    Deleted: u8,
    DeletedAt: Option<String>,
    CreatedAt: String,
    UpdatedAt: String,
}

impl<'a> From<&'a OneTimeItem> for OneTimeItemOut<'a> {
    fn from(item: &'a OneTimeItem) -> Self {
        let f = &item.fields;
        OneTimeItemOut {
            ID: item.id.to_string(),
            ExtID: &f.ext_id,
            PlanID: item.plan_id.to_string(),
            PlanExtID: &item.plan_ext_id,
            AccountID: item.account_id.to_string(),
            ProductCode: &f.product_code,
            ItemName: &f.name,
            Description: f.description.as_deref(),
            Quantity: Num(f.quantity),
            UnitPrice: Num(f.unit_price),
            ChargeDate: day(f.charge_date),
            TaxCode: f.tax_code.as_deref(),
            ItemStatus: item.status().code(),
            Deleted: u8::from(item.deleted_at.is_some()),
            DeletedAt: item.deleted_at.map(stamp),
            CreatedAt: stamp(item.created_at),
            UpdatedAt: stamp(item.updated_at),
        }
    }
}
