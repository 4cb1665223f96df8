//! Account plans.

use dynabill_core::domain::{AccountId, PlanId, PlanStatus};
use dynabill_core::money::Currency;
use jiff::Timestamp;
use jiff::civil::Date;

use super::{Change, RecordKey};

/// Everything about a plan a caller may set (its account is fixed at creation).
#[derive(Clone, Debug, PartialEq)]
pub struct PlanFields {
    pub ext_id: String,
    pub name: Option<String>,
    pub start_date: Date,
    pub end_date: Option<Date>,
    pub auto_renew: bool,
    pub renewal_term_months: u32,
    pub billing_day: Option<u8>,
    pub currency: Currency,
    pub po_number: Option<String>,
    pub notes: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub id: PlanId,
    pub account_id: AccountId,
    pub account_ext_id: String,
    pub fields: PlanFields,
    /// The date the plan was cancelled from, when it was.
    pub cancel_date: Option<Date>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
    pub version: i64,
}

impl Plan {
    pub fn status(&self, today: Date) -> PlanStatus {
        PlanStatus::on(
            self.cancel_date.is_some(),
            self.fields.end_date,
            self.fields.auto_renew,
            today,
        )
    }
}

#[derive(Clone, Debug, Default)]
pub struct PlanPatch {
    pub ext_id: Change<String>,
    pub account: Change<RecordKey<AccountId>>,
    pub name: Change<Option<String>>,
    pub start_date: Change<Date>,
    pub end_date: Change<Option<Date>>,
    pub auto_renew: Change<bool>,
    pub renewal_term_months: Change<u32>,
    pub billing_day: Change<Option<u8>>,
    pub currency: Change<Currency>,
    pub po_number: Change<Option<String>>,
    pub notes: Change<Option<String>>,
}

#[derive(Clone, Debug, Default)]
pub struct PlanFilter {
    pub id: Option<PlanId>,
    pub ext_id: Option<String>,
    pub account_id: Option<AccountId>,
    pub account_ext_id: Option<String>,
    pub status: Option<PlanStatus>,
    pub include_deleted: bool,
}
