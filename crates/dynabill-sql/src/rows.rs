//! Decoding result rows into the shared row types, stated once for every backend.

use sqlx::{FromRow, Row};

use crate::accounts::AccountRow;
use crate::billing::LedgerRow;
use crate::idempotency::KeyRow;
use crate::invoices::{InvoiceLineRow, InvoiceRow};
use crate::items::{CancelledItemRow, ItemChangeRow, RecurringItemRow};
use crate::one_time::OneTimeItemRow;
use crate::plans::PlanRow;
use crate::tax_rates::TaxRateRow;
use crate::tenants::{CredentialRow, TenantRow};

/// A result row that decodes into `T`.
pub trait RowOf<T> {
    fn decode(&self) -> Result<T, sqlx::Error>;
}

impl<R: Row, T> RowOf<T> for R
where
    T: for<'r> FromRow<'r, R>,
{
    fn decode(&self) -> Result<T, sqlx::Error> {
        T::from_row(self)
    }
}

/// A result row that decodes into every shared row type (and the scalars the
/// queries read). A new row type joins this list.
pub trait Decodes:
    RowOf<TenantRow>
    + RowOf<CredentialRow>
    + RowOf<AccountRow>
    + RowOf<PlanRow>
    + RowOf<RecurringItemRow>
    + RowOf<ItemChangeRow>
    + RowOf<OneTimeItemRow>
    + RowOf<LedgerRow>
    + RowOf<InvoiceRow>
    + RowOf<InvoiceLineRow>
    + RowOf<TaxRateRow>
    + RowOf<KeyRow>
    + RowOf<CancelledItemRow>
    + RowOf<(i64,)>
    + RowOf<(bool,)>
    + Send
{
}

impl<R> Decodes for R where
    R: RowOf<TenantRow>
        + RowOf<CredentialRow>
        + RowOf<AccountRow>
        + RowOf<PlanRow>
        + RowOf<RecurringItemRow>
        + RowOf<ItemChangeRow>
        + RowOf<OneTimeItemRow>
        + RowOf<LedgerRow>
        + RowOf<InvoiceRow>
        + RowOf<InvoiceLineRow>
        + RowOf<TaxRateRow>
        + RowOf<KeyRow>
        + RowOf<CancelledItemRow>
        + RowOf<CancelledItemRow>
        + RowOf<(i64,)>
        + RowOf<(bool,)>
        + Send
{
}
