//! Adjustments to periods already billed: proration credits and charges, cancellation credits.

use jiff::civil::Date;
use rust_decimal::Decimal;

use super::CalendarError;
use super::cadence::Cadence;
use super::grid::{Grid, Piece};
use super::proration::{Pricing, Terms, fraction};
use super::span::Span;

/// The kind of an adjustment line, by its wire `LineType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdjustmentKind {
    /// 3: the new terms for the rest of a billed period.
    ProrationCharge,
    /// 4: the old terms taken back for the rest of a billed period.
    ProrationCredit,
    /// 5: the terms taken back for the part of a billed period after a cancellation.
    CancellationCredit,
}

impl AdjustmentKind {
    /// The invoice line's `LineType`.
    pub fn line_type(self) -> i64 {
        match self {
            Self::ProrationCharge => 3,
            Self::ProrationCredit => 4,
            Self::CancellationCredit => 5,
        }
    }
}

/// One adjustment line: `[d, pe)` of a billed period, signed (credits are negative).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AdjustmentLine {
    pub kind: AdjustmentKind,
    pub span: Span,
    pub terms: Terms,
    pub fraction: Decimal,
    pub amount: Decimal,
}

/// The credit for the old terms and the charge for the new ones after a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProrationLines {
    pub credit: AdjustmentLine,
    pub charge: AdjustmentLine,
}

/// The lines a change at `change_date` adds to the billed piece `billed`:
/// `-(before × fraction([d, pe)))` and `+(after × fraction([d, pe)))`, each rounded on its own,
/// with the fraction taken of the full period that contains the piece.
pub fn proration_lines(
    billed: Piece,
    change_date: Date,
    before: Terms,
    after: Terms,
    cadence: Cadence,
    pricing: Pricing,
) -> Result<ProrationLines, CalendarError> {
    let credit = rest_of_piece(
        billed,
        change_date,
        before,
        AdjustmentKind::ProrationCredit,
        cadence,
        pricing,
    )?;
    let charge = rest_of_piece(
        billed,
        change_date,
        after,
        AdjustmentKind::ProrationCharge,
        cadence,
        pricing,
    )?;
    Ok(ProrationLines { credit, charge })
}

/// The credit for the part of the billed piece `billed` from `cancel_date` on:
/// `-(terms × fraction([CancelDate, pe)))`.
pub fn cancellation_credit(
    billed: Piece,
    cancel_date: Date,
    terms: Terms,
    cadence: Cadence,
    pricing: Pricing,
) -> Result<AdjustmentLine, CalendarError> {
    rest_of_piece(
        billed,
        cancel_date,
        terms,
        AdjustmentKind::CancellationCredit,
        cadence,
        pricing,
    )
}

fn rest_of_piece(
    billed: Piece,
    from: Date,
    terms: Terms,
    kind: AdjustmentKind,
    cadence: Cadence,
    pricing: Pricing,
) -> Result<AdjustmentLine, CalendarError> {
    let piece = billed.span();
    if !piece.contains(from) {
        return Err(CalendarError::DateOutsideSpan {
            date: from,
            span: piece,
        });
    }
    let span = Span::ordered(from, piece.end());
    let fraction = fraction(span, billed.period(), pricing.policy, cadence)?;
    let magnitude = terms.prorated_amount(fraction, pricing.currency, pricing.rounding)?;
    let amount = match kind {
        AdjustmentKind::ProrationCharge => magnitude,
        // Both rounding modes are symmetric about zero, so negating after rounding is exact.
        AdjustmentKind::ProrationCredit | AdjustmentKind::CancellationCredit => -magnitude,
    };
    Ok(AdjustmentLine {
        kind,
        span,
        terms,
        fraction,
        amount,
    })
}

/// When an upsell takes effect (wire field `ProrationMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ProrationMode {
    /// 0: no proration; the change waits for the first grid boundary after its date.
    NextPeriod,
    /// 1: prorate by day from the change's own date.
    #[default]
    ByDay,
}

impl ProrationMode {
    /// Reads the wire code: 0 next period, 1 by day.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::NextPeriod),
            1 => Some(Self::ByDay),
            _ => None,
        }
    }

    pub fn code(self) -> i64 {
        match self {
            Self::NextPeriod => 0,
            Self::ByDay => 1,
        }
    }

    /// The date a change requested for `requested` takes effect on `grid`.
    pub fn effective_date(self, grid: Grid, requested: Date) -> Result<Date, CalendarError> {
        match self {
            Self::ByDay => Ok(requested),
            Self::NextPeriod => grid.first_boundary_after(requested),
        }
    }
}
