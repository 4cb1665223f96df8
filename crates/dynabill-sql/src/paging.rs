//! Lists: a keyset page and the total count of its filter, read from one snapshot;
//! the total from the maintained counts (`list_counts`) where the filter allows,
//! and not at all on a later page whose cursor carries it.

use dynabill_app::model::{ItemFilter, Page, PageRequest};
use dynabill_app::store::{StoreError, StoreResult};
use dynabill_core::domain::TenantId;
use sqlx::Transaction;

use crate::backend::{Backend, Conn, Row, failed};
use crate::query::Query;
use crate::rows::RowOf;
use crate::store::SqlStore;

/// Appends a list's `WHERE` clause.
pub(crate) type Filter<'a, B> = Box<dyn Fn(&mut Query<B>) + Send + Sync + 'a>;

/// What a list reads: `SELECT <columns> <from>`, narrowed by `filter`, paged on `key`.
pub(crate) struct Listing<'a, B: Backend> {
    /// The select list.
    pub columns: &'a str,
    /// `FROM ...` (and its joins); the filter may name any table of it.
    pub from: &'a str,
    /// What a counted total reads instead of `from`, when its joins (a record's
    /// parent, for the columns shown) change neither the count nor the filter.
    pub count_from: Option<&'a str>,
    /// The ID column pages are keyed on.
    pub key: &'a str,
    /// Appends the filter's `WHERE` clause.
    pub filter: Filter<'a, B>,
    /// How the page is read.
    pub order: PageOrder,
    /// The maintained count that is the filter's total, when the filter names
    /// nothing but what `list_counts` counts by; else the total is counted.
    pub tally: Option<Tally>,
}

/// The list of items (recurring or one-time: `list`, read as `columns` from
/// `from`, keyed on `key`) that `filter` selects, narrowed by `push`. Its total is a
/// maintained count unless the filter names a key or a plan.
pub(crate) fn item_listing<'a, B: Backend, I: Send + Sync>(
    tenant: TenantId,
    filter: &'a ItemFilter<I>,
    list: &'static str,
    (columns, from, key): (&'static str, &'static str, &'static str),
    push: fn(&mut Query<B>, TenantId, &ItemFilter<I>),
) -> Listing<'a, B> {
    let counted = filter.id.is_none() && filter.ext_id.is_none() && filter.plan_id.is_none();
    Listing {
        columns,
        from,
        count_from: None,
        key,
        filter: Box::new(move |q: &mut Query<B>| push(q, tenant, filter)),
        order: PageOrder::of(false, counted),
        tally: counted.then_some(Tally {
            tenant,
            list,
            live_only: !filter.include_deleted,
            statuses: Vec::new(),
        }),
    }
}

/// How a page is read, whatever the planner's statistics (or their absence) say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PageOrder {
    /// An index whose leading columns the filter fixes gives the matches in key
    /// order: the page walks it from the cursor and stops (the lists that may hold
    /// the whole book: unfiltered, by stored status, with deleted records).
    Key,
    /// Matches may be few among many records (a range of dates, a status among
    /// deleted records too) and no index gives both them and the key order: the
    /// page is read through the filter's index and sorted. A unary `+` keeps the
    /// key's (and liveness's) indexes out of the planner's choice.
    Filter,
    /// A filter naming a record or a parent: a handful of rows, as the planner likes.
    Planner,
    /// Matches may be few or most of the book (a range of dates): the page is
    /// first sought in key order among the next [`PROBE_KEYS`] keys, where a
    /// filter matching much of the book fills it at once; only the rest of a page
    /// the window did not fill is read as [`PageOrder::Filter`] reads it (the
    /// matches beyond the window, through the filter's index, sorted), and only
    /// when the tenant's `table` has keys beyond the window. A page costs at most
    /// the window plus what `Filter` costs, and a wide range no longer costs a
    /// sort of the whole book.
    Probe {
        /// The listed table, whose `(tenant_id, id)` index gives its last key.
        table: &'static str,
        tenant: TenantId,
    },
}

/// The keys a [`PageOrder::Probe`] page looks through in key order before it
/// reads through the filter's index: a few milliseconds' walk at most.
pub(crate) const PROBE_KEYS: i64 = 2_000;

impl PageOrder {
    /// `Filter` where the filter asks to be read through its index, else `Key`
    /// where the filter's index gives the key order, else `Planner`.
    pub(crate) fn of(by_filter: bool, in_key_order: bool) -> PageOrder {
        match (by_filter, in_key_order) {
            (true, _) => PageOrder::Filter,
            (false, true) => PageOrder::Key,
            (false, false) => PageOrder::Planner,
        }
    }

    /// [`PageOrder::Probe`] instead of [`PageOrder::Filter`]: for a filter by a
    /// range, which may hold few records or most of the book, of `tenant`'s
    /// records in `table` (keyed on `id`).
    pub(crate) fn probing(self, table: &'static str, tenant: TenantId) -> PageOrder {
        match self {
            PageOrder::Filter => PageOrder::Probe { table, tenant },
            order => order,
        }
    }
}

/// Makes the statements that follow on `conn`, in a read transaction, walk an
/// index in key order rather than sort (`on`), or ends that: `Backend::KEY_ORDER`,
/// where the backend needs it.
pub(crate) async fn key_order<B: Backend>(conn: &mut Conn<B>, on: bool) -> StoreResult<()> {
    if let Some((start, end)) = B::KEY_ORDER {
        Query::<B>::new(if on { start } else { end })
            .execute(&mut *conn)
            .await
            .map_err(failed::<B>)?;
    }
    Ok(())
}

/// `SELECT` the last key of `tenant`'s records in `table`, after `prefix`: the
/// end of its `(tenant_id, id)` index.
pub(crate) fn last_key_query<B: Backend>(prefix: &str, table: &str, tenant: TenantId) -> Query<B> {
    let mut q = Query::<B>::new(format!(
        "{prefix}SELECT MAX(id) FROM {table} WHERE tenant_id = "
    ));
    q.bind(tenant);
    q
}

/// A sum of `list_counts`: the records of one tenant's list, live only or all,
/// of some stored statuses or all.
pub(crate) struct Tally {
    pub tenant: TenantId,
    /// The table the triggers count (`list_counts.list`).
    pub list: &'static str,
    /// Only records not deleted.
    pub live_only: bool,
    /// Only records of these statuses; empty: every status.
    pub statuses: Vec<i64>,
}

impl<B: Backend> Listing<'_, B> {
    /// The total of the filter and the rows of `page`, read in one snapshot (a row
    /// committed between the count and the page is in both or in neither), and the
    /// snapshot, open for what the page's records need besides. Commit it with
    /// [`finish`]. A page that names the total counted with the first page
    /// (`page.counted`) reports that one.
    pub(crate) async fn read<R: Send>(
        &self,
        store: &SqlStore<B>,
        page: PageRequest,
    ) -> StoreResult<(i64, Vec<R>, Transaction<'static, B::Db>)>
    where
        Row<B>: RowOf<R>,
    {
        let mut tx = self.begin(store).await?;
        let total = match page.counted {
            Some(total) => total,
            None => self.count(&mut tx).await?,
        };
        let rows = match self.order {
            PageOrder::Probe { table, tenant } => {
                self.probed_page(&mut tx, page, table, tenant).await?
            }
            _ => self
                .page_query("", page)
                .fetch_all(&mut tx)
                .await
                .map_err(failed::<B>)?,
        };
        Ok((total, rows, tx))
    }

    /// A [`PageOrder::Probe`] page: the matches among the next [`PROBE_KEYS`]
    /// keys in key order, then, if they are too few for the page, the matches
    /// after the window, read through the filter's index.
    async fn probed_page<R: Send>(
        &self,
        conn: &mut Conn<B>,
        page: PageRequest,
        table: &str,
        tenant: TenantId,
    ) -> StoreResult<Vec<R>>
    where
        Row<B>: RowOf<R>,
    {
        let window_end = page.after.unwrap_or(0).saturating_add(PROBE_KEYS);
        key_order::<B>(conn, true).await?;
        let mut rows: Vec<R> = self
            .window_query("", page, window_end)
            .fetch_all(&mut *conn)
            .await
            .map_err(failed::<B>)?;
        key_order::<B>(conn, false).await?;
        let found = u32::try_from(rows.len()).unwrap_or(u32::MAX);
        if found > page.size {
            return Ok(rows);
        }
        // The window reached the tenant's last key: the page is complete (and the
        // read through the filter's index, which would find nothing, is skipped).
        let last = last_key_query::<B>("", table, tenant);
        let (last,) = last
            .fetch_one::<(Option<i64>,)>(&mut *conn)
            .await
            .map_err(failed::<B>)?;
        if last.is_none_or(|last| last <= window_end) {
            return Ok(rows);
        }
        let rest = PageRequest {
            size: page.size - found,
            after: Some(window_end),
            counted: page.counted,
        };
        rows.extend(
            self.page_query("", rest)
                .fetch_all(&mut *conn)
                .await
                .map_err(failed::<B>)?,
        );
        Ok(rows)
    }

    /// `SELECT` the matches of `page` whose keys are at most `window_end`, in key
    /// order (the first read of a [`PageOrder::Probe`] page), after `prefix`.
    pub(crate) fn window_query(
        &self,
        prefix: &str,
        page: PageRequest,
        window_end: i64,
    ) -> Query<B> {
        let mut q = Query::<B>::new(format!("{prefix}SELECT {} {}", self.columns, self.from));
        (self.filter)(&mut q);
        let key = self.key;
        q.push(format_args!(" AND {key} > "))
            .bind(page.after.unwrap_or(0));
        q.push(format_args!(" AND {key} <= ")).bind(window_end);
        q.push(format_args!(" ORDER BY {key} LIMIT "))
            .bind(i64::from(page.size) + 1);
        q
    }

    /// The snapshot the list is read in.
    pub(crate) async fn begin(
        &self,
        store: &SqlStore<B>,
    ) -> StoreResult<Transaction<'static, B::Db>> {
        match self.order {
            PageOrder::Key => store.backend().begin_key_order_read().await,
            PageOrder::Filter | PageOrder::Planner | PageOrder::Probe { .. } => {
                store.backend().begin_read().await
            }
        }
    }

    /// `SELECT` the rows of `page`, after `prefix` (`EXPLAIN`, or nothing).
    pub(crate) fn page_query(&self, prefix: &str, page: PageRequest) -> Query<B> {
        let mut q = Query::<B>::new(format!("{prefix}SELECT {} {}", self.columns, self.from));
        (self.filter)(&mut q);
        let key = match self.order {
            PageOrder::Filter | PageOrder::Probe { .. } => format!("+{}", self.key),
            PageOrder::Key | PageOrder::Planner => self.key.to_owned(),
        };
        if let Some(after) = page.after {
            q.push(format_args!(" AND {key} > ")).bind(after);
        }
        q.push(format_args!(" ORDER BY {key} LIMIT "))
            .bind(i64::from(page.size) + 1);
        q
    }

    /// The statement that reads the filter's total, after `prefix`.
    pub(crate) fn count_query(&self, prefix: &str) -> Query<B> {
        let Some(tally) = &self.tally else {
            let from = self.count_from.unwrap_or(self.from);
            let mut count = Query::<B>::new(format!("{prefix}SELECT COUNT(*) {from}"));
            (self.filter)(&mut count);
            return count;
        };
        // The sum of a few rows (one per shard, status and deletedness).
        let mut q = Query::<B>::new(format!(
            "{prefix}SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM list_counts WHERE tenant_id = "
        ));
        q.bind(tally.tenant).push(" AND list = ").bind(tally.list);
        if tally.live_only {
            q.push(" AND deleted = ").bind(false);
        }
        if !tally.statuses.is_empty() {
            q.and_in("status", &tally.statuses);
        }
        q
    }

    async fn count(&self, conn: &mut Conn<B>) -> StoreResult<i64> {
        let (total,): (i64,) = self
            .count_query("")
            .fetch_one(conn)
            .await
            .map_err(failed::<B>)?;
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
