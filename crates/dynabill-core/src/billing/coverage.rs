//! What a piece is billed for, day by day, under a set of reflected changes, and how two such
//! coverages differ.

use jiff::civil::Date;

use super::input::{ChangeEvent, ChangeKind};
use crate::calendar::{CalendarError, Span, Terms, TermsTimeline};

/// The terms billed on each day under some changes: the terms timeline of their `TermsSet`s,
/// and nothing from the earliest credited cancellation on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Coverage {
    timeline: TermsTimeline,
    cut: Option<Date>,
}

impl Coverage {
    /// The coverage of `changes`, taken in the order made (as `seq` orders them).
    pub fn of<'a>(
        changes: impl IntoIterator<Item = &'a ChangeEvent>,
    ) -> Result<Self, CalendarError> {
        let mut timeline: Option<TermsTimeline> = None;
        let mut cut: Option<Date> = None;
        for change in changes {
            if change.is_inert() {
                continue;
            }
            match change.kind {
                ChangeKind::TermsSet {
                    quantity,
                    unit_price,
                    discount_percent,
                } => match timeline.as_mut() {
                    Some(timeline) => {
                        if let Some(step) = change.terms_change()? {
                            timeline.push(step);
                        }
                    }
                    None => {
                        let initial = Terms::new(
                            quantity.unwrap_or_default(),
                            unit_price.unwrap_or_default(),
                        )
                        .with_discount_percent(discount_percent.unwrap_or_default())?;
                        timeline = Some(TermsTimeline::new(initial));
                    }
                },
                ChangeKind::Cancellation { .. } => {
                    cut = Some(cut.map_or(change.effective, |cut| cut.min(change.effective)));
                }
                ChangeKind::Other => {}
            }
        }
        // An item without terms bills zero, as the app's timeline does.
        let timeline =
            timeline.unwrap_or_else(|| TermsTimeline::new(Terms::new(0.into(), 0.into())));
        Ok(Self { timeline, cut })
    }

    /// The terms billed on `date`, `None` once a credited cancellation took the day back.
    pub fn at(&self, date: Date) -> Option<Terms> {
        if self.cut.is_some_and(|cut| cut <= date) {
            return None;
        }
        Some(self.timeline.terms_at(date))
    }
}

/// A maximal span of constant terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Run {
    pub span: Span,
    pub terms: Terms,
}

/// Runs built day span by day span, merging a span into the previous run when it touches it
/// and has the same terms.
#[derive(Debug, Default)]
pub(super) struct Runs(Vec<Run>);

impl Runs {
    fn push(&mut self, span: Span, terms: Terms) {
        if let Some(last) = self.0.last_mut()
            && last.span.end() == span.start()
            && last.terms == terms
        {
            last.span = Span::ordered(last.span.start(), span.end());
            return;
        }
        self.0.push(Run { span, terms });
    }

    pub fn into_vec(self) -> Vec<Run> {
        self.0
    }
}

/// `window` cut at every date of `dates` strictly inside it. Coverages only change on the
/// effective dates of changes, so each cut has constant terms under any of them.
fn cuts(window: Span, dates: &[Date]) -> Vec<Span> {
    let mut cuts = Vec::new();
    let mut from = window.start();
    for &date in dates {
        if from < date && date < window.end() {
            cuts.push(Span::ordered(from, date));
            from = date;
        }
    }
    if from < window.end() {
        cuts.push(Span::ordered(from, window.end()));
    }
    cuts
}

/// The runs of `window` that `coverage` bills. `dates` must be sorted.
pub(super) fn billed_runs(window: Span, dates: &[Date], coverage: &Coverage) -> Vec<Run> {
    let mut runs = Runs::default();
    for cut in cuts(window, dates) {
        if let Some(terms) = coverage.at(cut.start()) {
            runs.push(cut, terms);
        }
    }
    runs.into_vec()
}

/// Where two coverages of a piece differ: the runs of the old one to take back and of the new
/// one to bill instead. Windows must be added in date order.
#[derive(Debug, Default)]
pub(super) struct Difference {
    pub credits: Runs,
    pub charges: Runs,
}

impl Difference {
    /// Adds the days of `window` (sorted `dates`) where `old` and `new` bill differently.
    pub fn add(&mut self, window: Span, dates: &[Date], old: &Coverage, new: &Coverage) {
        for cut in cuts(window, dates) {
            let (before, after) = (old.at(cut.start()), new.at(cut.start()));
            if before == after {
                continue;
            }
            if let Some(terms) = before {
                self.credits.push(cut, terms);
            }
            if let Some(terms) = after {
                self.charges.push(cut, terms);
            }
        }
    }
}
