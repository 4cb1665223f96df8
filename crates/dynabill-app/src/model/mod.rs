//! The records the use cases read and write, and the shapes of their changes: one
//! module per entity, and here what they share (keys, partial updates, pages).

mod accounts;
mod billing;
mod invoices;
mod one_time;
mod plans;
mod recurring;
mod tenants;

pub use accounts::*;
pub use billing::*;
pub use invoices::*;
pub use one_time::*;
pub use plans::*;
pub use recurring::*;
pub use tenants::*;

/// How a call names one record: its ID (of type `I`) or the caller's `ExtID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordKey<I> {
    Id(I),
    ExtId(String),
}

/// A field of a partial update: absent (keep), or set. For optional fields, set to
/// `None` clears the value.
pub type Change<T> = Option<T>;

/// One keyset page request: records with an ID above `after`, oldest first.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    pub size: u32,
    pub after: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// How many records match the filter, across all pages.
    pub total: i64,
    /// The key to resume after, when there are more records.
    pub next_after: Option<i64>,
}

impl<T> Page<T> {
    /// Builds a page from up to `size + 1` rows fetched in key order: the extra row
    /// only says whether another page exists.
    pub fn from_rows(mut rows: Vec<T>, size: u32, total: i64, key: impl Fn(&T) -> i64) -> Page<T> {
        let size = size as usize;
        let next_after = if rows.len() > size {
            rows.truncate(size);
            rows.last().map(&key)
        } else {
            None
        };
        Page {
            items: rows,
            total,
            next_after,
        }
    }
}
