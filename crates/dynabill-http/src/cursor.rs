//! Paging on the wire: `PageSize`, and the opaque `Cursor` that names where the
//! next page starts and carries the total counted with the first page.
//!
//! A cursor is `k2.<after>.<total>.<check>` in URL-safe base64, where `check` is
//! the first 8 bytes of SHA-256 over the list it belongs to (tenant, entity,
//! filters: [`ListScope`]), the position and the total. A cursor altered by hand,
//! cut short, or sent with other filters than the first page's fails the check
//! and is refused (error "2" naming `Cursor`): it would report another list's
//! total. The check is not a secret-keyed MAC: whoever forges one can only make
//! their own `TOTAL_COUNT` wrong, never read another tenant's records (every query
//! is scoped by the tenant the headers authenticate). Cursors servers issued
//! before totals were carried (`k1.<after>`) are still accepted; their next page
//! counts again, and its cursor carries that count.

use std::fmt::{Display, Write};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dynabill_app::model::{Page, PageRequest, Tenant};
use sha2::{Digest, Sha256};

use crate::error::DoorError;
use crate::fields::{CURSOR, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PAGE_SIZE};
use crate::params::Params;

/// The cursor form of servers before totals were carried: `k1.<after>`.
const PLAIN: &str = "k1.";
/// The cursor form carrying the total: `k2.<after>.<total>.<check>`.
const COUNTED: &str = "k2.";
/// Longest cursor accepted (a `k2` cursor is at most about 90 characters).
const MAX_CURSOR: usize = 128;

/// The list a cursor belongs to: the tenant, the entity, and each filter that
/// selects records, by name and value (as parsed, so that spellings of one value
/// agree). Flags that only shape the records (`IncludeLines`, `IncludeHistory`)
/// and `PageSize` are not part of it.
#[derive(Clone, Debug)]
pub struct ListScope(String);

impl ListScope {
    /// The list of `entity` (its code) for `tenant`.
    pub fn new(tenant: &Tenant, entity: i64) -> ListScope {
        ListScope(format!("{}/{entity}", tenant.id.0))
    }

    /// Adds the filter `name` when it is set. Values are length-prefixed, so that
    /// no value can pass for another filter.
    pub fn with(mut self, name: &str, value: Option<impl Display>) -> ListScope {
        if let Some(value) = value {
            let value = value.to_string();
            let _ = write!(self.0, "|{name}:{}:{value}", value.len());
        }
        self
    }

    fn check(&self, after: i64, total: i64) -> String {
        let digest = Sha256::new()
            .chain_update(self.0.as_bytes())
            .chain_update(format!("|{after}|{total}").as_bytes())
            .finalize();
        hex::encode(&digest[..8])
    }

    /// The page a request asks for: `PageSize`, and where `Cursor` says to start.
    pub fn page(&self, p: &Params) -> Result<PageRequest, DoorError> {
        let size = p
            .int_in(PAGE_SIZE, 1..=i64::from(MAX_PAGE_SIZE))?
            .map_or(DEFAULT_PAGE_SIZE, |n| n as u32);
        let Some(Some(cursor)) = p.optional_text(CURSOR, MAX_CURSOR)? else {
            return Ok(PageRequest::first(size));
        };
        let (after, counted) = self.decode(&cursor)?;
        Ok(PageRequest {
            size,
            after: Some(after),
            counted,
        })
    }

    /// The cursor of the page after `page`, if there is one.
    pub fn next_cursor<T>(&self, page: &Page<T>) -> Option<String> {
        page.next_after.map(|after| self.encode(after, page.total))
    }

    fn encode(&self, after: i64, total: i64) -> String {
        let check = self.check(after, total);
        URL_SAFE_NO_PAD.encode(format!("{COUNTED}{after}.{total}.{check}"))
    }

    /// The position and the carried total (none for a plain cursor).
    fn decode(&self, cursor: &str) -> Result<(i64, Option<i64>), DoorError> {
        let unreadable = || {
            DoorError::invalid(
                CURSOR,
                "is not a cursor this server issued (pass NEXT_CURSOR back unchanged)",
            )
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(cursor.trim())
            .map_err(|_| unreadable())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| unreadable())?;
        if let Some(after) = text.strip_prefix(PLAIN) {
            return Ok((after.parse().map_err(|_| unreadable())?, None));
        }
        let fields: Vec<&str> = text
            .strip_prefix(COUNTED)
            .ok_or_else(unreadable)?
            .split('.')
            .collect();
        let [after, total, check] = fields[..] else {
            return Err(unreadable());
        };
        let after: i64 = after.parse().map_err(|_| unreadable())?;
        let total: i64 = total.parse().map_err(|_| unreadable())?;
        if total < 0 || check != self.check(after, total) {
            return Err(DoorError::invalid(
                CURSOR,
                "does not belong to this list: it was altered, or the filters differ from \
                 those of the page that returned it (pass NEXT_CURSOR back unchanged, with the \
                 same filters)",
            ));
        }
        Ok((after, Some(total)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynabill_app::model::Page;

    fn scope(filter: Option<&str>) -> ListScope {
        ListScope(String::from("1/69")).with("ExtID2", filter)
    }

    fn page_of(scope: &ListScope, cursor: &str) -> Result<PageRequest, DoorError> {
        scope.page(&Params::from_query(&format!("Cursor={cursor}")).unwrap())
    }

    fn next(after: i64, total: i64) -> Page<()> {
        Page {
            items: Vec::new(),
            total,
            next_after: Some(after),
        }
    }

    #[test]
    fn a_cursor_carries_its_position_and_total() {
        let s = scope(Some("x"));
        let c = s.next_cursor(&next(42, 1000)).unwrap();
        let p = page_of(&s, &c).unwrap();
        assert_eq!((p.after, p.counted), (Some(42), Some(1000)));
    }

    #[test]
    fn a_cursor_of_another_list_or_altered_is_refused() {
        let s = scope(Some("x"));
        let c = s.next_cursor(&next(42, 1000)).unwrap();
        assert!(page_of(&scope(Some("y")), &c).is_err());
        assert!(page_of(&scope(None), &c).is_err());
        let forged = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(&c).unwrap())
                .unwrap()
                .replace(".1000.", ".7."),
        );
        assert!(page_of(&s, &forged).is_err());
        assert!(page_of(&s, "42").is_err());
        assert!(page_of(&s, &c[..c.len() - 2]).is_err());
    }

    #[test]
    fn plain_cursors_still_name_a_position_and_count_again() {
        let plain = URL_SAFE_NO_PAD.encode("k1.42");
        let p = page_of(&scope(None), &plain).unwrap();
        assert_eq!((p.after, p.counted), (Some(42), None));
    }

    #[test]
    fn values_cannot_pass_for_other_filters() {
        let one = ListScope(String::from("1/69")).with("A", Some("1|B:1:2"));
        let two = ListScope(String::from("1/69"))
            .with("A", Some("1"))
            .with("B", Some("2"));
        assert_ne!(one.0, two.0);
    }
}
