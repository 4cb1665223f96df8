//! dynabill-sql: the storage of dynabill written once for both SQL backends.
//!
//! [`SqlStore`] implements every storage trait of `dynabill-app` over a
//! [`Backend`]: what differs between SQLite and PostgreSQL (connections, the few
//! places where their SQL differs, error mapping, bulk writes) is the backend's;
//! every query whose text and meaning are the same on both is here, once.
//!
//! Both backends select dates as `YYYY-MM-DD` text, amounts as decimal text, codes
//! as BIGINT and timestamps as integer microseconds since the Unix epoch, so one
//! row type per table (`*Row`) and one conversion to the domain serve both.
//!
//! One module per entity: its row type, its conversions, its writable columns and
//! its queries.

mod accounts;
mod backend;
mod bill_runs;
mod billing;
mod events;
mod idempotency;
mod invoices;
mod items;
mod list_plans;
mod one_time;
mod paging;
mod plans;
mod query;
mod rows;
mod secrets;
mod store;
mod tax_rates;
mod tenants;
mod values;
mod webhooks;

pub use backend::{
    Backend, BoxFuture, Conn, Done, PoolWaits, Row, Shape, SqlDb, Unique, begin_detached,
};
pub use list_plans::{ListQueryPlan, QueryPlan, TableRead};
pub use query::{Query, select_list, shape_of};
pub use rows::{Decodes, RowOf};
pub use store::SqlStore;
pub use values::{Value, date_text, from_micros, micros};

pub use accounts::AccountRow;
pub use bill_runs::{ExpiredBatchRow, OpenRunRow};
pub use billing::{LedgerRow, snapshot_reads};
pub use events::EventRow;
pub use idempotency::KeyRow;
pub use invoices::{InvoiceLineRow, InvoiceRow};
pub use items::{CancelledItemRow, ItemChangeRow, RecurringItemRow, history_read};
pub use one_time::OneTimeItemRow;
pub use plans::PlanRow;
pub use secrets::SecretRow;
pub use tax_rates::TaxRateRow;
pub use tenants::{CredentialRow, TenantRow};
