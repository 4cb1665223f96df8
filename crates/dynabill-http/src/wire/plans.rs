//! The wire shape of an account plan.

use dynabill_app::model::Plan;
use jiff::civil::Date;
use serde::Serialize;

use super::{day, stamp};

#[derive(Serialize)]
#[expect(non_snake_case, reason = "the wire's field names")]
pub struct PlanOut<'a> {
    ID: String,
    ExtID: &'a str,
    AccountID: String,
    AccountExtID: &'a str,
    PlanName: Option<&'a str>,
    StartDate: String,
    EndDate: Option<String>,
    AutoRenew: u8,
    RenewalTermMonths: u32,
    BillingDay: Option<u8>,
    Currency: &'static str,
    PONumber: Option<&'a str>,
    Notes: Option<&'a str>,
    PlanStatus: i64,
    CancelDate: Option<String>,
    Deleted: u8,
    DeletedAt: Option<String>,
    CreatedAt: String,
    UpdatedAt: String,
}

impl<'a> PlanOut<'a> {
    pub fn new(p: &'a Plan, today: Date) -> Self {
        let f = &p.fields;
        PlanOut {
            ID: p.id.to_string(),
            ExtID: &f.ext_id,
            AccountID: p.account_id.to_string(),
            AccountExtID: &p.account_ext_id,
            PlanName: f.name.as_deref(),
            StartDate: day(f.start_date),
            EndDate: f.end_date.map(day),
            AutoRenew: u8::from(f.auto_renew),
            RenewalTermMonths: f.renewal_term_months,
            BillingDay: f.billing_day,
            Currency: f.currency.code(),
            PONumber: f.po_number.as_deref(),
            Notes: f.notes.as_deref(),
            PlanStatus: p.status(today).code(),
            CancelDate: p.cancel_date.map(day),
            Deleted: u8::from(p.deleted_at.is_some()),
            DeletedAt: p.deleted_at.map(stamp),
            CreatedAt: stamp(p.created_at),
            UpdatedAt: stamp(p.updated_at),
        }
    }
}
