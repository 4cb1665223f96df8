//! The records the use cases read and write, and the shapes of their changes: one
//! module per entity, and here what they share (keys, partial updates, pages).

mod accounts;
mod billing;
mod events;
mod invoices;
mod one_time;
mod plans;
mod recurring;
mod tenants;
mod webhooks;

pub use accounts::*;
pub use billing::*;
pub use events::*;
pub use invoices::*;
pub use one_time::*;
pub use plans::*;
pub use recurring::*;
pub use tenants::*;
pub use webhooks::*;

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
    /// The total of the filter as counted when its first page was read (a later
    /// page's cursor carries it): the store reports it instead of counting again.
    /// `None`: count now.
    pub counted: Option<i64>,
}

impl PageRequest {
    /// The first page of `size` records.
    pub fn first(size: u32) -> PageRequest {
        PageRequest {
            size,
            after: None,
            counted: None,
        }
    }

    /// The page that follows `page`, if there is one: it reports `page`'s total.
    pub fn next<T>(self, page: &Page<T>) -> Option<PageRequest> {
        page.next_after.map(|after| PageRequest {
            size: self.size,
            after: Some(after),
            counted: Some(page.total),
        })
    }
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
