//! Invoice lines as a bill run produces them.

use jiff::civil::Date;
use rust_decimal::Decimal;

use super::ledger::EntryKey;
use crate::calendar::{AdjustmentKind, Span, Terms};
use crate::domain::{OneTimeItemId, PlanId, RecurringItemId};
use crate::money::Currency;

/// An invoice line's `LineType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LineType {
    /// 1: a recurring item's period.
    Recurring,
    /// 2: a one-time item.
    OneTime,
    /// 3: new terms for part of a billed period, or the rest of a period a renewal reopened.
    ProrationCharge,
    /// 4: old terms taken back for part of a billed period.
    ProrationCredit,
    /// 5: billed days taken back after a cancellation.
    CancellationCredit,
}

impl LineType {
    pub fn code(self) -> i64 {
        match self {
            Self::Recurring => 1,
            Self::OneTime => 2,
            Self::ProrationCharge => 3,
            Self::ProrationCredit => 4,
            Self::CancellationCredit => 5,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(Self::Recurring),
            2 => Some(Self::OneTime),
            3 => Some(Self::ProrationCharge),
            4 => Some(Self::ProrationCredit),
            5 => Some(Self::CancellationCredit),
            _ => None,
        }
    }

    /// Whether lines of this type take money back (their amounts are negative or zero).
    pub fn is_credit(self) -> bool {
        match self {
            Self::ProrationCredit | Self::CancellationCredit => true,
            Self::Recurring | Self::OneTime | Self::ProrationCharge => false,
        }
    }
}

impl From<AdjustmentKind> for LineType {
    fn from(kind: AdjustmentKind) -> Self {
        match kind {
            AdjustmentKind::ProrationCharge => Self::ProrationCharge,
            AdjustmentKind::ProrationCredit => Self::ProrationCredit,
            AdjustmentKind::CancellationCredit => Self::CancellationCredit,
        }
    }
}

/// What a line bills: a recurring item's piece under one ledger entry, or a one-time item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LineSource {
    Recurring {
        item: RecurringItemId,
        period_start: Date,
        entry: EntryKey,
    },
    OneTime {
        item: OneTimeItemId,
    },
}

/// One invoice line. `service` is half-open (the wire prints `end - 1`); `period` is the full
/// grid period the fraction divides by (the service day itself for a one-time line). `terms`
/// are those billed or taken back; a credit's `amount` is negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InvoiceLine {
    pub line_type: LineType,
    pub source: LineSource,
    pub plan: PlanId,
    pub currency: Currency,
    pub service: Span,
    pub period: Span,
    pub terms: Terms,
    /// Rounded to 9 places half-up (BILLING.md §2).
    pub fraction: Decimal,
    /// Rounded to the currency's minor unit under the tenant's rounding, discount included.
    pub amount: Decimal,
}
