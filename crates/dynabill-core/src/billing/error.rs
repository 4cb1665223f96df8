//! Why a bill-run computation was refused.

use jiff::civil::Date;
use rust_decimal::Decimal;

use crate::calendar::CalendarError;
use crate::domain::RecurringItemId;

/// A refused bill-run computation: bad dates or amounts, or inputs that contradict each other.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    #[error("change seq {seq} is not positive (0 and below are reserved for ledger keys)")]
    SeqNotPositive { seq: i64 },
    #[error("change seq {seq} follows seq {previous}: seqs must increase in the order made")]
    SeqNotIncreasing { previous: i64, seq: i64 },
    #[error("ledger entry of item {found} passed to the bill of item {expected}")]
    ForeignLedgerEntry {
        expected: RecurringItemId,
        found: RecurringItemId,
    },
    #[error("ledger holds entry {entry} for the piece starting {period_start} twice")]
    DuplicateLedgerEntry { period_start: Date, entry: i64 },
    #[error("ledger of the piece starting {period_start} is inconsistent: {reason}")]
    InconsistentLedger {
        period_start: Date,
        reason: &'static str,
    },
    #[error("an invoice line in {found} cannot join an invoice in {expected}")]
    MixedCurrency {
        expected: &'static str,
        found: &'static str,
    },
    #[error("credit balance {balance} is negative")]
    NegativeCreditBalance { balance: Decimal },
    #[error("amount overflowed the decimal range")]
    AmountOverflow,
}
