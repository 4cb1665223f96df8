//! Billing one item for a run date: fresh pieces, remainders and adjustments (BILLING.md §3, §4).

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use rust_decimal::Decimal;

use super::BillingError;
use super::coverage::{Coverage, Difference, Run, billed_runs};
use super::input::{BillableItem, ChangeEvent, ChangeKind, OneTimeCharge};
use super::ledger::{BilledPiece, Book, EntryKey, LedgerEntry, Region};
use super::line::{InvoiceLine, LineSource, LineType};
use crate::calendar::{CalendarError, Piece, Pricing, Span, Terms, fraction};
use crate::domain::BillingTiming;

/// What one run bills for one item: its new lines and the ledger entries to store with them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemBill {
    pub lines: Vec<InvoiceLine>,
    pub entries: Vec<LedgerEntry>,
}

impl ItemBill {
    /// Whether the run owes nothing and records nothing for the item.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.entries.is_empty()
    }
}

/// Bills `item` for the run date `run_date`, given its whole `ledger`.
///
/// Fresh pieces that are due (in advance: starting on or before the run date; in arrears:
/// ending on or before it, the final partial of an ended item included) get one `LineType` 1
/// line per stretch of constant terms. A due piece a renewal reopened gets its remainder as
/// `LineType` 3. Every billed piece gets, for each change effective on or before the run date
/// and before the piece's billed end that it does not yet reflect, the credit of what it billed
/// and the charge of what it is worth now, wherever they differ. Running it again with the
/// ledger it returns adds nothing.
pub fn bill_item(
    item: &BillableItem,
    ledger: &[LedgerEntry],
    run_date: Date,
    pricing: Pricing,
) -> Result<ItemBill, BillingError> {
    item.check()?;
    let book = Book::read(item.id, ledger)?;
    let mut run = ItemRun::new(item, run_date, pricing)?;
    for piece in book.billed_pieces()? {
        run.revisit(&piece)?;
    }
    for piece in run.due.values().copied().collect::<Vec<_>>() {
        if !book.is_billed(piece.span().start()) {
            run.bill_fresh(piece)?;
        }
    }
    Ok(run.bill)
}

/// Bills a Pending one-time item: a `LineType` 2 line once its charge date is on or before the
/// run date, `quantity × unit_price` rounded, never prorated.
pub fn bill_one_time(
    charge: &OneTimeCharge,
    run_date: Date,
    pricing: Pricing,
) -> Result<Option<InvoiceLine>, BillingError> {
    if charge.charge_date > run_date {
        return Ok(None);
    }
    let next_day = charge
        .charge_date
        .tomorrow()
        .map_err(|_| CalendarError::DateOutOfRange)?;
    let service = Span::new(charge.charge_date, next_day)?;
    let terms = Terms::new(charge.quantity, charge.unit_price);
    Ok(Some(InvoiceLine {
        line_type: LineType::OneTime,
        source: LineSource::OneTime { item: charge.id },
        plan: charge.plan,
        currency: pricing.currency,
        service,
        period: service,
        terms,
        fraction: Decimal::ONE,
        amount: terms.one_time_amount(pricing.currency, pricing.rounding)?,
    }))
}

/// The state of one `bill_item` call.
struct ItemRun<'a> {
    item: &'a BillableItem,
    run_date: Date,
    pricing: Pricing,
    known: i64,
    /// Effective dates of the changes that can move an amount, sorted, without repeats.
    dates: Vec<Date>,
    /// Every change known: what fresh pieces and remainders bill.
    current: Coverage,
    /// The item's due pieces under its current dates, by start.
    due: BTreeMap<Date, Piece>,
    bill: ItemBill,
}

impl<'a> ItemRun<'a> {
    fn new(item: &'a BillableItem, run_date: Date, pricing: Pricing) -> Result<Self, BillingError> {
        let mut dates: Vec<Date> = item
            .changes
            .iter()
            .filter(|change| !change.is_inert())
            .map(|change| change.effective)
            .collect();
        dates.sort_unstable();
        dates.dedup();
        let due = due_pieces(item, run_date)?
            .into_iter()
            .map(|piece| (piece.span().start(), piece))
            .collect();
        Ok(Self {
            item,
            run_date,
            pricing,
            known: item.known_seq(),
            dates,
            current: Coverage::of(&item.changes)?,
            due,
            bill: ItemBill::default(),
        })
    }

    /// A due piece never billed: one base line per run of constant terms, zero amounts kept.
    fn bill_fresh(&mut self, piece: Piece) -> Result<(), BillingError> {
        let start = piece.span().start();
        let runs = billed_runs(piece.span(), &self.dates, &self.current);
        self.push_lines(
            start,
            piece.period(),
            EntryKey::Base,
            LineType::Recurring,
            &runs,
        )?;
        self.push_entry(start, piece.span().end(), EntryKey::Base);
        Ok(())
    }

    /// A billed piece: its remainder when a renewal reopened it, then its unsettled changes.
    fn revisit(&mut self, billed: &BilledPiece) -> Result<(), BillingError> {
        let period = self.item.grid.period_containing(billed.start)?;
        // Refuses a ledger piece that strays out of its grid period.
        Piece::new(billed.extent(), period)?;
        let mut regions = billed.regions.clone();
        if let Some(region) = self.remainder(billed, period)? {
            regions.push(region);
        }
        let extent_end = regions.last().map_or(billed.start, |r| r.span.end());
        let mut settled = billed.settled.clone();
        for change in self.unsettled(&regions, &settled, extent_end) {
            self.settle(
                billed.start,
                period,
                &regions,
                &settled,
                &change,
                extent_end,
            )?;
            settled.insert(change.seq);
        }
        Ok(())
    }

    /// Bills the rest of a due piece past its billed end, if the item's end moved past it.
    fn remainder(
        &mut self,
        billed: &BilledPiece,
        period: Span,
    ) -> Result<Option<Region>, BillingError> {
        let billed_end = billed.extent().end();
        let Some(piece) = self.due.get(&billed.start).copied() else {
            return Ok(None);
        };
        if piece.span().end() <= billed_end {
            return Ok(None);
        }
        let inconsistent = |reason| BillingError::InconsistentLedger {
            period_start: billed.start,
            reason,
        };
        if self.known < 1 {
            return Err(inconsistent(
                "the item outgrew its billing without any change",
            ));
        }
        let key = EntryKey::Remainder(self.known);
        if billed.keys.contains(&key) {
            return Err(inconsistent(
                "the item outgrew its remainder without a new change",
            ));
        }
        let span = Span::new(billed_end, piece.span().end())?;
        let runs = billed_runs(span, &self.dates, &self.current);
        self.push_lines(billed.start, period, key, LineType::ProrationCharge, &runs)?;
        self.push_entry(billed.start, span.end(), key);
        Ok(Some(Region {
            span,
            through: self.known,
        }))
    }

    /// The changes a billed piece still has to settle, in effective-date then seq order.
    fn unsettled(
        &self,
        regions: &[Region],
        settled: &BTreeSet<i64>,
        extent_end: Date,
    ) -> Vec<ChangeEvent> {
        let reflected_everywhere = regions.iter().map(|r| r.through).min().unwrap_or(i64::MAX);
        let mut changes: Vec<ChangeEvent> = self
            .item
            .changes
            .iter()
            .filter(|c| !c.is_inert())
            .filter(|c| c.seq > reflected_everywhere && !settled.contains(&c.seq))
            .filter(|c| c.effective <= self.run_date && c.effective < extent_end)
            .copied()
            .collect();
        changes.sort_by_key(|c| (c.effective, c.seq));
        changes
    }

    /// Settles `change` for the piece: credits and charges per region that does not reflect it.
    fn settle(
        &mut self,
        start: Date,
        period: Span,
        regions: &[Region],
        settled: &BTreeSet<i64>,
        change: &ChangeEvent,
        extent_end: Date,
    ) -> Result<(), BillingError> {
        let mut difference = Difference::default();
        for region in regions.iter().filter(|r| change.seq > r.through) {
            let from = change.effective.max(region.span.start());
            if from >= region.span.end() {
                continue;
            }
            let window = Span::ordered(from, region.span.end());
            let reflects = |c: &&ChangeEvent| c.seq <= region.through || settled.contains(&c.seq);
            let old = Coverage::of(self.item.changes.iter().filter(reflects))?;
            let new = Coverage::of(
                self.item
                    .changes
                    .iter()
                    .filter(|c| reflects(c) || c.seq == change.seq),
            )?;
            difference.add(window, &self.dates, &old, &new);
        }
        let key = EntryKey::Settled(change.seq);
        let credit_type = match change.kind {
            ChangeKind::Cancellation { .. } => LineType::CancellationCredit,
            ChangeKind::TermsSet { .. } | ChangeKind::Other => LineType::ProrationCredit,
        };
        let credits = difference.credits.into_vec();
        let charges = difference.charges.into_vec();
        self.push_lines(start, period, key, credit_type, &credits)?;
        self.push_lines(start, period, key, LineType::ProrationCharge, &charges)?;
        self.push_entry(start, extent_end, key);
        Ok(())
    }

    /// One line per run, signed by its type. Adjustment lines (settlements and renewal
    /// remainders) that round to zero are dropped; base lines show their period even at zero.
    fn push_lines(
        &mut self,
        start: Date,
        period: Span,
        entry: EntryKey,
        line_type: LineType,
        runs: &[Run],
    ) -> Result<(), BillingError> {
        let drop_zero = entry != EntryKey::Base;
        let cadence = self.item.grid.cadence();
        for run in runs {
            let fraction = fraction(run.span, period, self.pricing.policy, cadence)?;
            let magnitude = run.terms.prorated_amount(
                fraction,
                self.pricing.currency,
                self.pricing.rounding,
            )?;
            if magnitude.is_zero() && drop_zero {
                continue;
            }
            // Both rounding modes are symmetric about zero, so negating after rounding is exact.
            let amount = if line_type.is_credit() {
                -magnitude
            } else {
                magnitude
            };
            self.bill.lines.push(InvoiceLine {
                line_type,
                source: LineSource::Recurring {
                    item: self.item.id,
                    period_start: start,
                    entry,
                },
                plan: self.item.plan,
                currency: self.pricing.currency,
                service: run.span,
                period,
                terms: run.terms,
                fraction,
                amount,
            });
        }
        Ok(())
    }

    fn push_entry(&mut self, period_start: Date, period_end: Date, entry: EntryKey) {
        self.bill.entries.push(LedgerEntry {
            item: self.item.id,
            period_start,
            period_end,
            entry,
            base_seq: self.known,
        });
    }
}

/// The pieces of the item's current `[start, end)` due on `run_date`.
fn due_pieces(item: &BillableItem, run_date: Date) -> Result<Vec<Piece>, CalendarError> {
    match item.timing {
        BillingTiming::InAdvance => {
            let until = run_date
                .tomorrow()
                .map_err(|_| CalendarError::DateOutOfRange)?;
            item.grid.periods(item.start, item.end, until)
        }
        BillingTiming::InArrears => Ok(item
            .grid
            .periods(item.start, item.end, run_date)?
            .into_iter()
            .filter(|piece| piece.span().end() <= run_date)
            .collect()),
    }
}
