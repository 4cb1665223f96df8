//! How the database runs each list's queries: the plans of every list's count and
//! pages, filter by filter, and what would make one of them cost the size of the
//! book (a full scan, an index read whole, a sort of a whole list), so that a test
//! on each backend fails when a filter loses its index.

use dynabill_app::model::{AccountFilter, InvoiceFilter, ItemFilter, PageRequest, PlanFilter};
use dynabill_app::store::StoreResult;
use dynabill_core::domain::{
    AccountId, AccountStatus, InvoiceId, InvoiceStatus, OneTimeItemId, PlanId, PlanStatus,
    RecurringItemId, TenantId,
};
use jiff::Timestamp;
use jiff::civil::date;

use crate::accounts::{account_listing, account_search};
use crate::backend::{Backend, failed};
use crate::events::recent_events_query;
use crate::invoices::{invoice_listing, pending_line_listing};
use crate::items::recurring_item_listing;
use crate::one_time::one_time_listing;
use crate::paging::{Listing, PROBE_KEYS, PageOrder, key_order, last_key_query};
use crate::plans::plan_listing;
use crate::store::SqlStore;

/// What a plan says a statement does, in terms both backends' plans map to.
#[derive(Clone, Debug, Default)]
pub struct QueryPlan {
    /// Each read of a table (by the name or alias the statement gives it).
    pub reads: Vec<TableRead>,
    /// Whether rows are sorted (rather than read in the order asked for).
    pub sorts: bool,
    /// The plan as the database wrote it, for messages.
    pub text: String,
}

/// One read of a table.
#[derive(Clone, Debug)]
pub struct TableRead {
    /// The table's name or alias in the statement.
    pub table: String,
    /// The index read, if any.
    pub index: Option<String>,
    /// The condition that bounds the index range read (empty: the whole table or
    /// index is read).
    pub condition: String,
}

/// The plan of one list query, and what it must show.
#[derive(Clone, Debug)]
pub struct ListQueryPlan {
    /// The list, filter and query (`3/69 ExtID2: page after a cursor`).
    pub case: String,
    /// The listed table as the statement names it (or `list_counts`).
    pub table: &'static str,
    /// Columns the index condition on `table` must name: the filter's own.
    pub expected: Vec<&'static str>,
    /// The page must come in index order, not sorted (lists that can hold the
    /// whole book: unfiltered, by status).
    pub ordered: bool,
    pub plan: QueryPlan,
}

impl ListQueryPlan {
    /// What would make the query cost the size of the book: a table (or index)
    /// read whole, or a list that can hold the whole book sorted for each page.
    pub fn full_reads(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for read in &self.plan.reads {
            if read.condition.is_empty() {
                problems.push(format!("reads all of {} ({:?})", read.table, read.index));
            }
        }
        if self.ordered && self.plan.sorts {
            problems.push("sorts the list instead of reading it in key order".into());
        }
        self.described(problems)
    }

    /// What is wrong with the plan (nothing, for a list served by its index): a
    /// full read, or a read of the listed table whose index range the filter's
    /// columns do not bound.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = self.full_reads();
        let mut unbounded = Vec::new();
        let main: Vec<&TableRead> = self
            .plan
            .reads
            .iter()
            .filter(|r| r.table == self.table)
            .collect();
        if main.is_empty() {
            unbounded.push(format!("does not read {}", self.table));
        }
        for read in main {
            let names = condition_names(&read.condition);
            for column in &self.expected {
                let named = names
                    .iter()
                    .any(|n| n == column || (*column == "id" && n == "rowid"));
                if !named {
                    unbounded.push(format!(
                        "reads {} by {:?} where {column} does not bound it ({})",
                        self.table, read.index, read.condition
                    ));
                }
            }
        }
        problems.extend(self.described(unbounded));
        problems
    }

    fn described(&self, problems: Vec<String>) -> Vec<String> {
        problems
            .into_iter()
            .map(|p| format!("{}: {p}\n{}", self.case, self.plan.text))
            .collect()
    }
}

/// The words of a condition (column names, and the rest).
fn condition_names(condition: &str) -> Vec<String> {
    condition
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// A list and filter whose queries are explained.
struct Case<'a, B: Backend> {
    name: &'static str,
    listing: Listing<'a, B>,
    /// The listed table as its queries name it.
    table: &'static str,
    expected: &'static [&'static str],
    ordered: bool,
}

impl<B: Backend> SqlStore<B> {
    /// The plans of every list's count and pages (the first, and one after a
    /// cursor), for each filter the dynamic door offers, as `tenant` would run them
    /// (PostgreSQL plans by its statistics, or their absence, and the tables' sizes:
    /// ask on a seeded book).
    pub async fn list_query_plans(&self, tenant: TenantId) -> StoreResult<Vec<ListQueryPlan>> {
        let filters = Filters::new();
        let mut plans = Vec::new();
        for case in cases::<B>(tenant, &filters) {
            let mut tx = case.listing.begin(self).await?;
            let (count_table, count_expected): (&'static str, Vec<&'static str>) =
                match &case.listing.tally {
                    Some(_) => ("list_counts", vec!["tenant_id", "list"]),
                    None => (case.table, case.expected.to_vec()),
                };
            let rows = case
                .listing
                .count_query(B::EXPLAIN)
                .fetch_rows(&mut tx)
                .await
                .map_err(failed::<B>)?;
            plans.push(ListQueryPlan {
                case: format!("{}: count", case.name),
                table: count_table,
                expected: count_expected,
                ordered: false,
                plan: B::read_plan(&rows).map_err(failed::<B>)?,
            });
            for (which, after) in [("first page", None), ("page after a cursor", Some(1))] {
                let page = PageRequest {
                    size: 100,
                    after,
                    counted: None,
                };
                let rows = case
                    .listing
                    .page_query(B::EXPLAIN, page)
                    .fetch_rows(&mut tx)
                    .await
                    .map_err(failed::<B>)?;
                let mut expected = case.expected.to_vec();
                if case.ordered && after.is_some() {
                    expected.push("id");
                }
                plans.push(ListQueryPlan {
                    case: format!("{}: {which}", case.name),
                    table: case.table,
                    expected,
                    ordered: case.ordered,
                    plan: B::read_plan(&rows).map_err(failed::<B>)?,
                });
            }
            if let PageOrder::Probe { table, tenant } = case.listing.order {
                // Whether keys lie beyond the window: the end of the key index.
                let rows = last_key_query::<B>(B::EXPLAIN, table, tenant)
                    .fetch_rows(&mut tx)
                    .await
                    .map_err(failed::<B>)?;
                plans.push(ListQueryPlan {
                    case: format!("{}: last key", case.name),
                    table,
                    expected: vec!["tenant_id"],
                    ordered: false,
                    plan: B::read_plan(&rows).map_err(failed::<B>)?,
                });
                // The window read first in key order: the key's index, bounded.
                key_order::<B>(&mut tx, true).await?;
                let rows = case
                    .listing
                    .window_query(B::EXPLAIN, PageRequest::first(100), PROBE_KEYS)
                    .fetch_rows(&mut tx)
                    .await
                    .map_err(failed::<B>)?;
                plans.push(ListQueryPlan {
                    case: format!("{}: window in key order", case.name),
                    table: case.table,
                    expected: vec!["id"],
                    ordered: true,
                    plan: B::read_plan(&rows).map_err(failed::<B>)?,
                });
                key_order::<B>(&mut tx, false).await?;
            }
            tx.commit().await.map_err(failed::<B>)?;
        }
        // The console's account search: every branch of its OR by its own index.
        let rows = account_search::<B>(B::EXPLAIN, tenant, "Acme", 51)
            .fetch_rows(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        plans.push(ListQueryPlan {
            case: "console account search".into(),
            table: "accounts",
            expected: Vec::new(),
            ordered: false,
            plan: B::read_plan(&rows).map_err(failed::<B>)?,
        });
        // The console's timeline: the events of an account's records, each by
        // the record index.
        let records = [("account", 1), ("plan", 1), ("plan", 2), ("invoice", 7)];
        let rows = recent_events_query::<B>(B::EXPLAIN, tenant, &records, 100)
            .fetch_rows(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        plans.push(ListQueryPlan {
            case: "console timeline".into(),
            table: "events",
            expected: vec!["object_id"],
            ordered: false,
            plan: B::read_plan(&rows).map_err(failed::<B>)?,
        });
        Ok(plans)
    }
}

/// One filter per list filter of the dynamic door (SPEC §4), alone.
struct Filters {
    accounts: Vec<(&'static str, AccountFilter, &'static [&'static str], bool)>,
    plans: Vec<(&'static str, PlanFilter, &'static [&'static str], bool)>,
    recurring: Vec<(
        &'static str,
        ItemFilter<RecurringItemId>,
        &'static [&'static str],
        bool,
    )>,
    one_time: Vec<(
        &'static str,
        ItemFilter<OneTimeItemId>,
        &'static [&'static str],
        bool,
    )>,
    invoices: Vec<(&'static str, InvoiceFilter, &'static [&'static str], bool)>,
}

/// The filters an item list (75, 110) offers.
fn item_filters<I: From<i64>>(
    entity: &'static [&'static str; 5],
) -> Vec<(&'static str, ItemFilter<I>, &'static [&'static str], bool)> {
    vec![
        (
            entity[0],
            ItemFilter::default(),
            &["tenant_id", "deleted_at"],
            true,
        ),
        (
            entity[1],
            ItemFilter {
                include_deleted: true,
                ..ItemFilter::default()
            },
            &["tenant_id"],
            true,
        ),
        (
            entity[2],
            ItemFilter {
                id: Some(I::from(1)),
                ..ItemFilter::default()
            },
            &["id"],
            false,
        ),
        (
            entity[3],
            ItemFilter {
                ext_id: Some("X".into()),
                ..ItemFilter::default()
            },
            &["ext_id"],
            false,
        ),
        (
            entity[4],
            ItemFilter {
                plan_id: Some(PlanId(1)),
                ..ItemFilter::default()
            },
            &["plan_id"],
            false,
        ),
    ]
}

impl Filters {
    fn new() -> Filters {
        let accounts = vec![
            (
                "3/69",
                AccountFilter::default(),
                &["tenant_id", "deleted_at"][..],
                true,
            ),
            (
                "3/69 IncludeDeleted",
                AccountFilter {
                    include_deleted: true,
                    ..AccountFilter::default()
                },
                &["tenant_id"][..],
                true,
            ),
            (
                "3/69 ID",
                AccountFilter {
                    id: Some(AccountId(1)),
                    ..AccountFilter::default()
                },
                &["id"][..],
                false,
            ),
            (
                "3/69 ExtID",
                AccountFilter {
                    ext_id: Some("X".into()),
                    ..AccountFilter::default()
                },
                &["ext_id"][..],
                false,
            ),
            (
                "3/69 ExtID2",
                AccountFilter {
                    ext_id2: Some("X".into()),
                    ..AccountFilter::default()
                },
                &["ext_id2"][..],
                false,
            ),
            (
                "3/69 AccountStatus",
                AccountFilter {
                    status: Some(AccountStatus::Inactive),
                    ..AccountFilter::default()
                },
                &["status", "deleted_at"][..],
                true,
            ),
            (
                "3/69 AccountStatus IncludeDeleted",
                AccountFilter {
                    status: Some(AccountStatus::Inactive),
                    include_deleted: true,
                    ..AccountFilter::default()
                },
                &["status"][..],
                false,
            ),
            (
                "3/69 UpdatedSince",
                AccountFilter {
                    updated_since: Some(Timestamp::UNIX_EPOCH),
                    ..AccountFilter::default()
                },
                &["updated_at"][..],
                false,
            ),
            (
                "3/69 UpdatedSince IncludeDeleted",
                AccountFilter {
                    updated_since: Some(Timestamp::UNIX_EPOCH),
                    include_deleted: true,
                    ..AccountFilter::default()
                },
                &["updated_at"][..],
                false,
            ),
        ];
        let plans = vec![
            (
                "3/71",
                PlanFilter::default(),
                &["tenant_id", "deleted_at"][..],
                true,
            ),
            (
                "3/71 IncludeDeleted",
                PlanFilter {
                    include_deleted: true,
                    ..PlanFilter::default()
                },
                &["tenant_id"][..],
                true,
            ),
            (
                "3/71 ID",
                PlanFilter {
                    id: Some(PlanId(1)),
                    ..PlanFilter::default()
                },
                &["id"][..],
                false,
            ),
            (
                "3/71 ExtID",
                PlanFilter {
                    ext_id: Some("X".into()),
                    ..PlanFilter::default()
                },
                &["ext_id"][..],
                false,
            ),
            (
                "3/71 AccountID",
                PlanFilter {
                    account_id: Some(AccountId(1)),
                    ..PlanFilter::default()
                },
                &["account_id"][..],
                false,
            ),
            (
                "3/71 AccountExtID",
                PlanFilter {
                    account_ext_id: Some("X".into()),
                    ..PlanFilter::default()
                },
                &["account_id"][..],
                false,
            ),
            // A status is derived from the plan's dates and today, not stored: the
            // tenant's live plans in ID order, each checked.
            (
                "3/71 PlanStatus",
                PlanFilter {
                    status: Some(PlanStatus::Cancelled),
                    ..PlanFilter::default()
                },
                &["tenant_id", "deleted_at"][..],
                true,
            ),
        ];
        let invoices = vec![
            ("3/119", InvoiceFilter::default(), &["tenant_id"][..], true),
            (
                "3/119 ID",
                InvoiceFilter {
                    id: Some(InvoiceId(1)),
                    ..InvoiceFilter::default()
                },
                &["id"][..],
                false,
            ),
            (
                "3/119 AccountID",
                InvoiceFilter {
                    account_id: Some(AccountId(1)),
                    ..InvoiceFilter::default()
                },
                &["account_id"][..],
                false,
            ),
            (
                "3/119 AccountExtID",
                InvoiceFilter {
                    account_ext_id: Some("X".into()),
                    ..InvoiceFilter::default()
                },
                &["account_id"][..],
                false,
            ),
            (
                "3/119 PlanID",
                InvoiceFilter {
                    plan_id: Some(PlanId(1)),
                    ..InvoiceFilter::default()
                },
                &["plan_id"][..],
                false,
            ),
            (
                "3/119 InvoiceStatus (1007/119)",
                InvoiceFilter {
                    statuses: vec![InvoiceStatus::PendingTax],
                    ..InvoiceFilter::default()
                },
                &["status"][..],
                true,
            ),
            (
                "3/119 InvoiceStatus list",
                InvoiceFilter {
                    statuses: vec![InvoiceStatus::Posted, InvoiceStatus::Paid],
                    ..InvoiceFilter::default()
                },
                &["status"][..],
                false,
            ),
            (
                "3/119 InvoiceDateFrom",
                InvoiceFilter {
                    date_from: Some(date(2024, 1, 1)),
                    ..InvoiceFilter::default()
                },
                &["invoice_date"][..],
                false,
            ),
            (
                "3/119 InvoiceDateTo",
                InvoiceFilter {
                    date_to: Some(date(2024, 1, 1)),
                    ..InvoiceFilter::default()
                },
                &["invoice_date"][..],
                false,
            ),
        ];
        Filters {
            accounts,
            plans,
            recurring: item_filters(&[
                "3/110",
                "3/110 IncludeDeleted",
                "3/110 ID",
                "3/110 ExtID",
                "3/110 PlanID (or EXTID naming a plan)",
            ]),
            one_time: item_filters(&[
                "3/75",
                "3/75 IncludeDeleted",
                "3/75 ID",
                "3/75 ExtID",
                "3/75 PlanID (or EXTID naming a plan)",
            ]),
            invoices,
        }
    }
}

fn cases<B: Backend>(tenant: TenantId, filters: &Filters) -> Vec<Case<'_, B>> {
    let today = date(2024, 1, 1);
    let mut cases = Vec::new();
    for (name, filter, expected, ordered) in &filters.accounts {
        cases.push(Case {
            name,
            listing: account_listing::<B>(tenant, filter),
            table: "accounts",
            expected,
            ordered: *ordered,
        });
    }
    for (name, filter, expected, ordered) in &filters.plans {
        cases.push(Case {
            name,
            listing: plan_listing::<B>(tenant, filter, today),
            table: "p",
            expected,
            ordered: *ordered,
        });
    }
    for (name, filter, expected, ordered) in &filters.recurring {
        cases.push(Case {
            name,
            listing: recurring_item_listing::<B>(tenant, filter),
            table: "r",
            expected,
            ordered: *ordered,
        });
    }
    for (name, filter, expected, ordered) in &filters.one_time {
        cases.push(Case {
            name,
            listing: one_time_listing::<B>(tenant, filter),
            table: "o",
            expected,
            ordered: *ordered,
        });
    }
    for (name, filter, expected, ordered) in &filters.invoices {
        cases.push(Case {
            name,
            listing: invoice_listing::<B>(tenant, filter),
            table: "i",
            expected,
            ordered: *ordered,
        });
    }
    for (name, invoice, expected) in [
        ("1007/119 lines awaiting tax", None, &["status"][..]),
        ("1007/119 ID", Some(InvoiceId(1)), &["id"][..]),
    ] {
        cases.push(Case {
            name,
            listing: pending_line_listing::<B>(tenant, invoice),
            table: "i",
            expected,
            ordered: false,
        });
    }
    cases
}
