//! One-time items.

use dynabill_core::domain::{AccountId, OneTimeItemId, OneTimeStatus, PlanId};
use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;

use super::{Change, RecordKey};

#[derive(Clone, Debug, PartialEq)]
pub struct OneTimeItemFields {
    pub ext_id: String,
    pub product_code: String,
    pub name: String,
    pub description: Option<String>,
    pub quantity: Decimal,
    /// May be negative: a one-off credit.
    pub unit_price: Decimal,
    pub charge_date: Date,
    pub tax_code: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OneTimeItem {
    pub id: OneTimeItemId,
    pub plan_id: PlanId,
    pub plan_ext_id: String,
    pub account_id: AccountId,
    pub fields: OneTimeItemFields,
    pub cancelled_at: Option<Timestamp>,
    /// Set once a bill run has put the item on an invoice.
    pub invoiced: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
    pub version: i64,
}

impl OneTimeItem {
    pub fn status(&self) -> OneTimeStatus {
        if self.invoiced {
            OneTimeStatus::Invoiced
        } else if self.cancelled_at.is_some() {
            OneTimeStatus::Cancelled
        } else {
            OneTimeStatus::Pending
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct OneTimeItemPatch {
    pub ext_id: Change<String>,
    pub plan: Change<RecordKey<PlanId>>,
    pub product_code: Change<String>,
    pub name: Change<String>,
    pub description: Change<Option<String>>,
    pub quantity: Change<Decimal>,
    pub unit_price: Change<Decimal>,
    pub charge_date: Change<Date>,
    pub tax_code: Change<Option<String>>,
}

/// What a write of a one-time item marks besides its fields. A mark, once set,
/// stays (a cancelled item stays cancelled from when it was first cancelled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OneTimeMark {
    /// The fields alone.
    Fields,
    /// Cancelled: no bill run takes it.
    Cancelled,
    /// Deleted: listed only on request.
    Deleted,
    /// Both: what deleting a pending item does.
    CancelledAndDeleted,
}

impl OneTimeMark {
    pub fn cancels(self) -> bool {
        matches!(
            self,
            OneTimeMark::Cancelled | OneTimeMark::CancelledAndDeleted
        )
    }

    pub fn deletes(self) -> bool {
        matches!(
            self,
            OneTimeMark::Deleted | OneTimeMark::CancelledAndDeleted
        )
    }
}
