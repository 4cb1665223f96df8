//! What a bill run reads about an item: its grid, dates and history of changes.

use jiff::civil::Date;
use rust_decimal::Decimal;

use super::BillingError;
use crate::calendar::{CalendarError, Grid, TermsChange};
use crate::domain::{BillingTiming, OneTimeItemId, PlanId, RecurringItemId};

/// A recurring item as billing sees it. `end` is exclusive and already moved by any
/// cancellation or renewal; `changes` is the whole history, in the order made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillableItem {
    pub id: RecurringItemId,
    pub plan: PlanId,
    pub grid: Grid,
    pub timing: BillingTiming,
    pub start: Date,
    pub end: Option<Date>,
    pub changes: Vec<ChangeEvent>,
}

/// One entry of an item's history. `seq` is positive and strictly increasing in the order made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChangeEvent {
    pub seq: i64,
    pub effective: Date,
    pub kind: ChangeKind,
}

/// What a change does to billing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// Creation, update, upsell or a renewal's price: the fields named apply from `effective` on.
    /// The first one naming any field gives the initial terms (fields it leaves out are 0).
    TermsSet {
        quantity: Option<Decimal>,
        unit_price: Option<Decimal>,
        discount_percent: Option<Decimal>,
    },
    /// The item ends at `effective`; with `credit`, billed days from then on are credited.
    Cancellation { credit: bool },
    /// Dates changed, deleted, a renewal without a price, a descriptive edit: no billing effect.
    Other,
}

/// A one-time item still Pending: billed once, on the first run on or after its charge date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OneTimeCharge {
    pub id: OneTimeItemId,
    pub plan: PlanId,
    pub quantity: Decimal,
    /// May be negative: a one-off credit.
    pub unit_price: Decimal,
    pub charge_date: Date,
}

impl BillableItem {
    /// Refuses a history whose seqs are not positive and increasing, or an end before the start.
    pub(super) fn check(&self) -> Result<(), BillingError> {
        if let Some(end) = self.end {
            crate::calendar::Span::new(self.start, end)?;
        }
        let mut previous = None;
        for change in &self.changes {
            if change.seq < 1 {
                return Err(BillingError::SeqNotPositive { seq: change.seq });
            }
            if let Some(previous) = previous
                && change.seq <= previous
            {
                return Err(BillingError::SeqNotIncreasing {
                    previous,
                    seq: change.seq,
                });
            }
            previous = Some(change.seq);
        }
        Ok(())
    }

    /// The highest seq of the history, 0 for an item without one.
    pub(super) fn known_seq(&self) -> i64 {
        self.changes.last().map_or(0, |change| change.seq)
    }
}

impl ChangeEvent {
    /// Whether the change can never move an amount (see the module docs: never settled).
    pub(super) fn is_inert(&self) -> bool {
        match self.kind {
            ChangeKind::TermsSet {
                quantity,
                unit_price,
                discount_percent,
            } => quantity.is_none() && unit_price.is_none() && discount_percent.is_none(),
            ChangeKind::Cancellation { credit } => !credit,
            ChangeKind::Other => true,
        }
    }

    /// The change as a step of a terms timeline, for a `TermsSet`.
    pub(super) fn terms_change(&self) -> Result<Option<TermsChange>, CalendarError> {
        let ChangeKind::TermsSet {
            quantity,
            unit_price,
            discount_percent,
        } = self.kind
        else {
            return Ok(None);
        };
        let mut step = TermsChange::new(self.effective);
        if let Some(quantity) = quantity {
            step = step.with_quantity(quantity);
        }
        if let Some(unit_price) = unit_price {
            step = step.with_unit_price(unit_price);
        }
        if let Some(percent) = discount_percent {
            step = step.with_discount_percent(percent)?;
        }
        Ok(Some(step))
    }
}
