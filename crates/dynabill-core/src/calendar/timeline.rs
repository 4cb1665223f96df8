//! An item's terms over time, and what a span of it costs under a grid (BILLING.md §3, §4).

use jiff::civil::Date;
use rust_decimal::Decimal;

use super::CalendarError;
use super::grid::Grid;
use super::proration::{Pricing, Terms, checked_discount, fraction};
use super::span::Span;

/// A change of terms from `effective` on; the fields it does not name keep what is in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TermsChange {
    effective: Date,
    quantity: Option<Decimal>,
    unit_price: Option<Decimal>,
    discount_percent: Option<Decimal>,
}

impl TermsChange {
    /// A change that names no field yet.
    pub fn new(effective: Date) -> Self {
        Self {
            effective,
            quantity: None,
            unit_price: None,
            discount_percent: None,
        }
    }

    pub fn with_quantity(self, quantity: Decimal) -> Self {
        Self {
            quantity: Some(quantity),
            ..self
        }
    }

    pub fn with_unit_price(self, unit_price: Decimal) -> Self {
        Self {
            unit_price: Some(unit_price),
            ..self
        }
    }

    /// Refuses a percent outside 0..=100.
    pub fn with_discount_percent(self, percent: Decimal) -> Result<Self, CalendarError> {
        Ok(Self {
            discount_percent: Some(checked_discount(percent)?),
            ..self
        })
    }

    pub fn effective(self) -> Date {
        self.effective
    }

    fn apply_to(self, terms: Terms) -> Terms {
        let terms = self.quantity.map_or(terms, |q| terms.with_quantity(q));
        let terms = self.unit_price.map_or(terms, |p| terms.with_unit_price(p));
        self.discount_percent
            .map_or(terms, |d| terms.with_checked_discount(d))
    }
}

/// One change as it lands: the terms just before it and just after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Transition {
    pub effective: Date,
    pub before: Terms,
    pub after: Terms,
}

/// A maximal stretch of a span over which the terms do not change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stretch {
    pub span: Span,
    pub terms: Terms,
}

/// One line of a cost: a stretch of constant terms inside one full grid period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CostLine {
    pub span: Span,
    pub period: Span,
    pub terms: Terms,
    pub fraction: Decimal,
    pub amount: Decimal,
}

/// What a span costs: its lines, each rounded on its own, and their sum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cost {
    pub lines: Vec<CostLine>,
    pub total: Decimal,
}

/// The initial terms and the changes made to them, kept in effective-date order, then in the
/// order they were made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TermsTimeline {
    initial: Terms,
    changes: Vec<TermsChange>,
}

impl TermsTimeline {
    /// A timeline with `initial` in force at every date until a change says otherwise.
    pub fn new(initial: Terms) -> Self {
        Self {
            initial,
            changes: Vec::new(),
        }
    }

    /// Records `change` after every change effective on or before its date.
    pub fn push(&mut self, change: TermsChange) {
        let position = self
            .changes
            .partition_point(|made| made.effective <= change.effective);
        self.changes.insert(position, change);
    }

    /// [`TermsTimeline::push`] in builder form.
    pub fn with_change(mut self, change: TermsChange) -> Self {
        self.push(change);
        self
    }

    /// The changes in the order they combine.
    pub fn changes(&self) -> &[TermsChange] {
        &self.changes
    }

    /// The terms in force on `date` (a change applies from its effective date on).
    pub fn terms_at(&self, date: Date) -> Terms {
        self.changes
            .iter()
            .take_while(|change| change.effective <= date)
            .fold(self.initial, |terms, change| change.apply_to(terms))
    }

    /// Every change with the terms it replaced and the terms it left, in combining order.
    pub fn transitions(&self) -> Vec<Transition> {
        let mut terms = self.initial;
        let mut transitions = Vec::with_capacity(self.changes.len());
        for change in &self.changes {
            let after = change.apply_to(terms);
            transitions.push(Transition {
                effective: change.effective,
                before: terms,
                after,
            });
            terms = after;
        }
        transitions
    }

    /// The transitions effective inside `span` (its start included).
    pub fn transitions_within(&self, span: Span) -> Vec<Transition> {
        self.transitions()
            .into_iter()
            .filter(|transition| span.contains(transition.effective))
            .collect()
    }

    /// `span` cut where the terms change; adjacent stretches always differ in terms.
    pub fn stretches(&self, span: Span) -> Vec<Stretch> {
        if span.is_empty() {
            return Vec::new();
        }
        let mut stretches = Vec::new();
        let mut from = span.start();
        let mut terms = self.terms_at(from);
        for date in self.change_dates_strictly_inside(span) {
            // Several changes on one date land together; only what they leave matters.
            let next = self.terms_at(date);
            if next != terms {
                stretches.push(Stretch {
                    span: Span::ordered(from, date),
                    terms,
                });
                from = date;
                terms = next;
            }
        }
        stretches.push(Stretch {
            span: Span::ordered(from, span.end()),
            terms,
        });
        stretches
    }

    /// What `span` costs: one line per grid piece and stretch of constant terms inside it,
    /// each `terms × fraction(stretch, P)` rounded on its own.
    pub fn cost(&self, span: Span, grid: Grid, pricing: Pricing) -> Result<Cost, CalendarError> {
        let mut lines = Vec::new();
        let mut total = Decimal::ZERO;
        for piece in grid.pieces(span)? {
            for stretch in self.stretches(piece.span()) {
                let fraction =
                    fraction(stretch.span, piece.period(), pricing.policy, grid.cadence())?;
                let amount =
                    stretch
                        .terms
                        .prorated_amount(fraction, pricing.currency, pricing.rounding)?;
                total = total
                    .checked_add(amount)
                    .ok_or(CalendarError::AmountOverflow)?;
                lines.push(CostLine {
                    span: stretch.span,
                    period: piece.period(),
                    terms: stretch.terms,
                    fraction,
                    amount,
                });
            }
        }
        Ok(Cost { lines, total })
    }

    fn change_dates_strictly_inside(&self, span: Span) -> Vec<Date> {
        let mut dates: Vec<Date> = self
            .changes
            .iter()
            .map(|change| change.effective)
            .filter(|&date| span.start() < date && date < span.end())
            .collect();
        dates.dedup();
        dates
    }
}
