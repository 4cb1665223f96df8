//! The ledger: what earlier bill runs billed, per item and piece, and the regions it describes.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;

use super::BillingError;
use crate::calendar::Span;
use crate::domain::RecurringItemId;

/// What a ledger entry records for a piece; its [`code`](EntryKey::code) is the stored key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKey {
    /// 0: the piece's first billing.
    Base,
    /// `+seq`: change `seq` settled for the piece.
    Settled(i64),
    /// `-seq`: the rest of a piece cut short by an old end, billed knowing changes up to `seq`.
    Remainder(i64),
}

impl EntryKey {
    /// The stored key: 0 base, `+seq` settled, `-seq` remainder.
    pub fn code(self) -> i64 {
        match self {
            Self::Base => 0,
            Self::Settled(seq) => seq,
            Self::Remainder(seq) => -seq,
        }
    }

    /// Reads a stored key; `None` only for `i64::MIN`, which no seq can produce.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::Base),
            1.. => Some(Self::Settled(code)),
            _ => code.checked_neg().map(Self::Remainder),
        }
    }
}

/// One row of the ledger: under `entry`, the piece starting `period_start` was billed up to
/// `period_end` (exclusive). `base_seq` is the highest change seq known when it was written;
/// for base and remainder entries, every change up to it is reflected in what they billed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LedgerEntry {
    pub item: RecurringItemId,
    pub period_start: Date,
    pub period_end: Date,
    pub entry: EntryKey,
    pub base_seq: i64,
}

/// The end of the latest billed region of an item (its `ChargedThroughDate`), `None` if nothing
/// is billed yet. Settlement entries never move it; base and remainder entries do.
pub fn billed_through(ledger: &[LedgerEntry]) -> Option<Date> {
    ledger
        .iter()
        .filter(|entry| matches!(entry.entry, EntryKey::Base | EntryKey::Remainder(_)))
        .map(|entry| entry.period_end)
        .max()
}

/// A contiguous part of a billed piece and the changes it reflects: seq up to `through`,
/// plus the changes settled for the piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Region {
    pub span: Span,
    pub through: i64,
}

/// A piece with a base entry, as the ledger describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct BilledPiece {
    pub start: Date,
    /// The base region first, then each remainder, contiguous and in date order.
    pub regions: Vec<Region>,
    pub settled: BTreeSet<i64>,
    pub keys: BTreeSet<EntryKey>,
}

impl BilledPiece {
    /// The billed dates `[start, end of the last region)`.
    pub fn extent(&self) -> Span {
        let end = self
            .regions
            .last()
            .map_or(self.start, |region| region.span.end());
        // Regions are built contiguous from the piece's start, so the end is never before it.
        Span::ordered(self.start, end)
    }
}

/// An item's ledger, grouped by piece.
#[derive(Debug, Default)]
pub(super) struct Book {
    pieces: BTreeMap<Date, Vec<LedgerEntry>>,
}

impl Book {
    /// Groups `ledger` by piece; refuses another item's entries and a key seen twice.
    pub fn read(item: RecurringItemId, ledger: &[LedgerEntry]) -> Result<Self, BillingError> {
        let mut seen = BTreeSet::new();
        let mut pieces: BTreeMap<Date, Vec<LedgerEntry>> = BTreeMap::new();
        for entry in ledger {
            if entry.item != item {
                return Err(BillingError::ForeignLedgerEntry {
                    expected: item,
                    found: entry.item,
                });
            }
            if !seen.insert((entry.period_start, entry.entry)) {
                return Err(BillingError::DuplicateLedgerEntry {
                    period_start: entry.period_start,
                    entry: entry.entry.code(),
                });
            }
            pieces.entry(entry.period_start).or_default().push(*entry);
        }
        Ok(Self { pieces })
    }

    /// Whether the piece starting `start` has a base entry.
    pub fn is_billed(&self, start: Date) -> bool {
        self.pieces
            .get(&start)
            .is_some_and(|entries| entries.iter().any(|e| e.entry == EntryKey::Base))
    }

    /// Every piece with a base entry, in date order.
    pub fn billed_pieces(&self) -> Result<Vec<BilledPiece>, BillingError> {
        let mut billed = Vec::new();
        for (&start, entries) in &self.pieces {
            if let Some(piece) = billed_piece(start, entries)? {
                billed.push(piece);
            }
        }
        Ok(billed)
    }
}

fn billed_piece(start: Date, entries: &[LedgerEntry]) -> Result<Option<BilledPiece>, BillingError> {
    let inconsistent = |reason| BillingError::InconsistentLedger {
        period_start: start,
        reason,
    };
    let Some(base) = entries.iter().find(|e| e.entry == EntryKey::Base) else {
        return Ok(None);
    };
    if base.period_end <= start {
        return Err(inconsistent("the base entry bills no day"));
    }
    let mut regions = vec![Region {
        span: Span::new(start, base.period_end)?,
        through: base.base_seq,
    }];
    let mut remainders: Vec<&LedgerEntry> = entries
        .iter()
        .filter(|e| matches!(e.entry, EntryKey::Remainder(_)))
        .collect();
    remainders.sort_by_key(|e| e.period_end);
    for remainder in remainders {
        let from = regions.last().map_or(start, |region| region.span.end());
        if remainder.period_end <= from {
            return Err(inconsistent(
                "a remainder bills no day past the billed ones",
            ));
        }
        regions.push(Region {
            span: Span::new(from, remainder.period_end)?,
            through: remainder.base_seq,
        });
    }
    let settled = entries
        .iter()
        .filter_map(|e| match e.entry {
            EntryKey::Settled(seq) => Some(seq),
            EntryKey::Base | EntryKey::Remainder(_) => None,
        })
        .collect();
    Ok(Some(BilledPiece {
        start,
        regions,
        settled,
        keys: entries.iter().map(|e| e.entry).collect(),
    }))
}
