//! Lists: a keyset page and the total count of its filter, read from one snapshot.

use dynabill_app::model::{Page, PageRequest};
use dynabill_app::store::{StoreError, StoreResult};
use sqlx::Transaction;

use crate::backend::{Backend, Conn, Row, failed};
use crate::query::Query;
use crate::rows::RowOf;
use crate::store::SqlStore;

/// What a list reads: `SELECT <columns> <from>`, narrowed by `filter`, paged on `key`.
pub(crate) struct Listing<'a, B: Backend> {
    /// The select list.
    pub columns: &'a str,
    /// `FROM ...` (and its joins); the filter may name any table of it.
    pub from: &'a str,
    /// The ID column pages are keyed on.
    pub key: &'a str,
    /// Appends the filter's `WHERE` clause.
    pub filter: &'a (dyn Fn(&mut Query<B>) + Sync),
}

impl<B: Backend> Listing<'_, B> {
    /// The total of the filter and the rows of `page`, read in one snapshot (a row
    /// committed between the count and the page is in both or in neither), and the
    /// snapshot, open for what the page's records need besides. Commit it with
    /// [`finish`].
    pub(crate) async fn read<R: Send>(
        &self,
        store: &SqlStore<B>,
        page: PageRequest,
    ) -> StoreResult<(i64, Vec<R>, Transaction<'static, B::Db>)>
    where
        Row<B>: RowOf<R>,
    {
        let mut tx = store.backend().begin_read().await?;
        let total = self.count(&mut tx).await?;
        let mut q = Query::<B>::new(format!("SELECT {} {}", self.columns, self.from));
        (self.filter)(&mut q);
        if let Some(after) = page.after {
            q.push(format_args!(" AND {} > ", self.key)).bind(after);
        }
        q.push(format_args!(" ORDER BY {} LIMIT ", self.key))
            .bind(i64::from(page.size) + 1);
        let rows = q.fetch_all(&mut tx).await.map_err(failed::<B>)?;
        Ok((total, rows, tx))
    }

    async fn count(&self, conn: &mut Conn<B>) -> StoreResult<i64> {
        let mut count = Query::<B>::new(format!("SELECT COUNT(*) {}", self.from));
        (self.filter)(&mut count);
        let (total,): (i64,) = count.fetch_one(conn).await.map_err(failed::<B>)?;
        Ok(total)
    }
}

/// Ends the snapshot of a list and makes its page.
pub(crate) async fn finish<B: Backend, T>(
    tx: Transaction<'static, B::Db>,
    records: Vec<T>,
    page: PageRequest,
    total: i64,
    id: impl Fn(&T) -> i64,
) -> StoreResult<Page<T>> {
    tx.commit().await.map_err(failed::<B>)?;
    Ok(Page::from_rows(records, page.size, total, id))
}

/// Converts rows into records.
pub(crate) fn convert<R, T>(rows: Vec<R>) -> StoreResult<Vec<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}
