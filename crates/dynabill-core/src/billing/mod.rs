//! Bill runs, pure: which invoice lines an item owes on a run date, given what is already billed.
//!
//! BILLING.md §3–§5 in code. Nothing here reads a clock or a database: the run date is an
//! argument, what earlier runs billed arrives as a [`LedgerEntry`] list, and what this run bills
//! leaves as an [`ItemBill`] (new lines and new ledger entries) for the caller to store, all or
//! nothing, next to the invoice.
//!
//! # The ledger
//!
//! Every billed piece of an item (a grid period cut by the item's dates) is keyed by its start
//! date. Under that key, [`EntryKey`] says what was billed; `(item, period_start, entry code)` is
//! unique, and the database enforces it, so two concurrent runs can never bill a piece twice.
//!
//! - [`EntryKey::Base`] (code 0): the piece's first billing, reflecting every change whose
//!   `seq` is at most the entry's `base_seq`.
//! - [`EntryKey::Settled`] (code `+seq`): change `seq` was settled for the piece, by proration
//!   or cancellation-credit lines or by none when it changed nothing there.
//! - [`EntryKey::Remainder`] (code `-seq`): a renewal extended an item whose old end had cut the
//!   piece short, and the rest of the piece was billed with every change up to `seq` known. It
//!   is negative, not `+seq`, so that it can never collide with the settlement of change `seq`
//!   itself (a renewal and a mid-period upsell between two runs would otherwise want one key).
//!
//! A billed piece is thus a few contiguous regions (the base, then any remainders), each
//! reflecting the changes up to its `base_seq` plus the changes settled for the piece. A change
//! is settled once, for every region that does not yet reflect it: the lines credit what the
//! region was billed and charge what it is worth with the change, wherever the two differ.
//!
//! # Decisions BILLING.md leaves open
//!
//! - **Zero amounts.** Base lines (`LineType` 1) and remainder lines are kept at 0.00: they show
//!   a service period on the invoice (a free item still prints its period). Adjustment lines
//!   (3, 4, 5) whose amount rounds to zero are dropped; their change is still settled.
//! - **Inert changes are never settled.** A change that cannot move any amount (kind
//!   [`ChangeKind::Other`], a [`ChangeKind::TermsSet`] naming no field, a cancellation without
//!   credit) gets no ledger entry: the app records every descriptive edit as a change effective
//!   at the item's start, and settling it would add an entry to every billed piece each time.
//! - **Cancellations.** A cancellation with credit takes back, from its date, whatever the piece
//!   was billed (the terms then reflected, stretch by stretch); afterwards those days are billed
//!   nothing, whatever terms change later. Without credit the customer keeps paying for the
//!   billed days. Both rules apply to in-advance and in-arrears items alike: an in-arrears item
//!   only has a billed piece after its cancel date when the cancellation was backdated.
//! - **A piece without a base entry is unbilled**, whatever other entries it has (an invoice
//!   cancelled with `Rebill` 1 removes its entries): it is billed afresh from current terms.
//! - **The ledger passed in must be the item's whole ledger.** A piece missing from it is billed
//!   again.
//! - **Line order**: pieces already billed in date order (a remainder, then each change's credits
//!   then charges, changes in effective-date then `seq` order), then fresh pieces in date order.
//! - **Credits** carry a negative amount and the (positive) terms they take back.
//! - **Credit balance** on a negative total is added after the invoice; a positive total consumes
//!   it first (BILLING.md §5). Across several invoices of one run the caller chooses the order.

mod coverage;
mod error;
mod input;
mod invoice;
mod ledger;
mod line;
mod run;

pub use error::BillingError;
pub use input::{BillableItem, ChangeEvent, ChangeKind, OneTimeCharge};
pub use invoice::{
    CreditMovement, InvoiceGroup, InvoiceTotals, apply_credit, due_date, group_lines,
};
pub use ledger::{EntryKey, LedgerEntry, billed_through};
pub use line::{InvoiceLine, LineSource, LineType};
pub use run::{ItemBill, bill_item, bill_one_time};
