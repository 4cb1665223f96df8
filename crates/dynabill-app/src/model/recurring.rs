//! Recurring items, their history of changes and the writes that append to it.

use dynabill_core::calendar::{
    BillingDay, BillingPeriod, Cadence, CalendarError, Grid, Span, Terms, TermsChange,
    TermsTimeline,
};
use dynabill_core::domain::{AccountId, BillingTiming, ItemStatus, PlanId, RecurringItemId};
use dynabill_core::insights::monthly_value;
use dynabill_core::items::next_billing_date;
use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;

use super::{Change, RecordKey};

/// Everything about a recurring item a caller may set, except its terms (quantity,
/// price, discount), which live in its timeline of changes.
#[derive(Clone, Debug, PartialEq)]
pub struct RecurringItemFields {
    pub ext_id: String,
    pub product_code: String,
    pub name: String,
    pub description: Option<String>,
    pub tax_code: Option<String>,
    pub billing_period: BillingPeriod,
    pub period_count: u32,
    pub timing: BillingTiming,
    pub start_date: Date,
    /// Exclusive; `None` runs until cancelled. A cancellation sets it.
    pub end_date: Option<Date>,
}

impl RecurringItemFields {
    pub fn cadence(&self) -> Result<Cadence, CalendarError> {
        Cadence::new(self.billing_period, self.period_count)
    }
}

/// What kind of change an entry of an item's history records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemChangeKind {
    Created,
    /// Terms or dates changed through create-or-update, before the first invoice.
    Updated,
    Upsell,
    Renewal,
    Cancellation,
    DatesChanged,
    Deleted,
}

impl ItemChangeKind {
    pub const ALL: [ItemChangeKind; 7] = [
        ItemChangeKind::Created,
        ItemChangeKind::Updated,
        ItemChangeKind::Upsell,
        ItemChangeKind::Renewal,
        ItemChangeKind::Cancellation,
        ItemChangeKind::DatesChanged,
        ItemChangeKind::Deleted,
    ];

    pub fn code(self) -> i64 {
        match self {
            ItemChangeKind::Created => 1,
            ItemChangeKind::Updated => 2,
            ItemChangeKind::Upsell => 3,
            ItemChangeKind::Renewal => 4,
            ItemChangeKind::Cancellation => 5,
            ItemChangeKind::DatesChanged => 6,
            ItemChangeKind::Deleted => 7,
        }
    }

    pub fn from_code(code: i64) -> Option<ItemChangeKind> {
        ItemChangeKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// One entry of a recurring item's history: what changed, from when, and the
/// item's dates once it took effect. Terms fields are `None` when not changed.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemChange {
    /// The entry's position in the order changes were made (its storage ID);
    /// 0 for an entry not stored yet.
    pub seq: i64,
    pub kind: ItemChangeKind,
    pub effective_date: Date,
    pub quantity: Option<Decimal>,
    pub unit_price: Option<Decimal>,
    pub discount_percent: Option<Decimal>,
    pub start_date: Date,
    pub end_date: Option<Date>,
    /// Upsells: whether the change is prorated by day (`true`) or waits for the next period.
    pub prorate: Option<bool>,
    /// Cancellations: whether unused billed time is credited.
    pub credit: Option<bool>,
    pub recorded_at: Timestamp,
}

/// A recorded cancellation of a recurring item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancellation {
    pub date: Date,
    /// `CreditMode` 1: credit the unused part of a billed period.
    pub credit: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RecurringItem {
    pub id: RecurringItemId,
    pub plan_id: PlanId,
    pub plan_ext_id: String,
    pub account_id: AccountId,
    /// The plan's `BillingDay`, which anchors the item's grid when set.
    pub plan_billing_day: Option<u8>,
    pub plan_auto_renew: bool,
    pub fields: RecurringItemFields,
    pub cancellation: Option<Cancellation>,
    /// Billed up to (exclusive); `None` while never invoiced.
    pub charged_through: Option<Date>,
    /// The item's history, oldest first; the first entry is its creation.
    pub changes: Vec<ItemChange>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
    pub version: i64,
}

impl RecurringItem {
    pub fn is_invoiced(&self) -> bool {
        self.charged_through.is_some()
    }

    pub fn grid(&self) -> Result<Grid, CalendarError> {
        let billing_day = self
            .plan_billing_day
            .map(|d| BillingDay::new(u32::from(d)))
            .transpose()?;
        Ok(Grid::new(
            self.fields.cadence()?,
            self.fields.start_date,
            billing_day,
        ))
    }

    /// The terms over time, from the history's terms changes in effective-date order
    /// (then the order they were made).
    pub fn timeline(&self) -> Result<TermsTimeline, CalendarError> {
        let mut changes = self.changes.iter().filter(|c| {
            c.quantity.is_some() || c.unit_price.is_some() || c.discount_percent.is_some()
        });
        let Some(first) = changes.next() else {
            return Ok(TermsTimeline::new(Terms::new(Decimal::ZERO, Decimal::ZERO)));
        };
        let initial = Terms::new(
            first.quantity.unwrap_or_default(),
            first.unit_price.unwrap_or_default(),
        )
        .with_discount_percent(first.discount_percent.unwrap_or_default())?;
        let mut timeline = TermsTimeline::new(initial);
        for change in changes {
            let mut step = TermsChange::new(change.effective_date);
            if let Some(q) = change.quantity {
                step = step.with_quantity(q);
            }
            if let Some(p) = change.unit_price {
                step = step.with_unit_price(p);
            }
            if let Some(d) = change.discount_percent {
                step = step.with_discount_percent(d)?;
            }
            timeline.push(step);
        }
        Ok(timeline)
    }

    /// The terms shown on the item: those in force today, or at its start if later.
    pub fn current_terms(&self, today: Date) -> Result<Terms, CalendarError> {
        Ok(self.timeline()?.terms_at(today.max(self.fields.start_date)))
    }

    pub fn status(&self, today: Date) -> ItemStatus {
        ItemStatus::on(
            self.cancellation.is_some(),
            self.fields.start_date,
            self.fields.end_date,
            self.plan_auto_renew,
            today,
        )
    }

    /// The date the item stops for good, if one is known: its end when it was
    /// cancelled or its plan does not renew automatically (an auto-renewing end is
    /// extended by the bill run, as [`ItemStatus`] says). Exclusive.
    pub fn final_end(&self) -> Option<Date> {
        self.fields
            .end_date
            .filter(|_| self.cancellation.is_some() || !self.plan_auto_renew)
    }

    /// Whether the item is in force on `day`: started, and not stopped for good by
    /// then (docs/INSIGHTS.md).
    pub fn in_force_on(&self, day: Date) -> bool {
        self.fields.start_date <= day && self.final_end().is_none_or(|end| day < end)
    }

    /// The item's monthly recurring revenue on `day` (exact, unrounded), `None`
    /// when it is not in force then.
    pub fn mrr_on(&self, day: Date) -> Result<Option<Decimal>, CalendarError> {
        if !self.in_force_on(day) {
            return Ok(None);
        }
        let terms = self.timeline()?.terms_at(day);
        monthly_value(terms, self.fields.cadence()?)
            .map(Some)
            .ok_or(CalendarError::AmountOverflow)
    }

    /// Whether the item had a monthly value above zero on some day before `day`.
    pub fn had_mrr_before(&self, day: Date) -> Result<bool, CalendarError> {
        let start = self.fields.start_date;
        let end = self.final_end().map_or(day, |end| end.min(day));
        if end <= start {
            return Ok(false);
        }
        let cadence = self.fields.cadence()?;
        for stretch in self.timeline()?.stretches(Span::new(start, end)?) {
            let value =
                monthly_value(stretch.terms, cadence).ok_or(CalendarError::AmountOverflow)?;
            if value > Decimal::ZERO {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub fn next_billing_date(&self) -> Result<Option<Date>, CalendarError> {
        next_billing_date(
            self.grid()?,
            self.fields.timing,
            self.fields.start_date,
            self.fields.end_date,
            self.charged_through,
        )
    }
}

/// The fields of a recurring-item create-or-update call; only those sent change.
#[derive(Clone, Debug, Default)]
pub struct RecurringItemPatch {
    pub ext_id: Change<String>,
    pub plan: Change<RecordKey<PlanId>>,
    pub product_code: Change<String>,
    pub name: Change<String>,
    pub description: Change<Option<String>>,
    pub tax_code: Change<Option<String>>,
    pub quantity: Change<Decimal>,
    pub unit_price: Change<Decimal>,
    pub discount_percent: Change<Decimal>,
    pub billing_period: Change<BillingPeriod>,
    pub period_count: Change<u32>,
    pub timing: Change<BillingTiming>,
    pub start_date: Change<Date>,
    pub end_date: Change<Option<Date>>,
}

/// One write to a recurring item: its new fields, its cancellation, an entry for
/// its history, and whether it is deleted. Applied if the item is still at `version`.
#[derive(Clone, Debug)]
pub struct ItemWrite {
    pub id: RecurringItemId,
    pub version: i64,
    pub fields: RecurringItemFields,
    pub cancellation: Option<Cancellation>,
    pub change: ItemChange,
    pub deleted: bool,
}

/// Filters of item lists (recurring and one-time alike; `I` is the item's ID type).
#[derive(Clone, Debug)]
pub struct ItemFilter<I> {
    pub id: Option<I>,
    pub ext_id: Option<String>,
    pub plan_id: Option<PlanId>,
    pub include_deleted: bool,
}

impl<I> Default for ItemFilter<I> {
    fn default() -> Self {
        ItemFilter {
            id: None,
            ext_id: None,
            plan_id: None,
            include_deleted: false,
        }
    }
}
