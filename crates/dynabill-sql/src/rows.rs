//! Decoding result rows into the shared row types, stated once for every backend.

use sqlx::{FromRow, Row};

use crate::accounts::AccountRow;
use crate::bill_runs::{ExpiredBatchRow, OpenRunRow};
use crate::billing::LedgerRow;
use crate::events::EventRow;
use crate::idempotency::KeyRow;
use crate::invoices::{InvoiceLineRow, InvoiceRow};
use crate::items::{CancelledItemRow, ItemChangeRow, RecurringItemRow};
use crate::one_time::OneTimeItemRow;
use crate::plans::PlanRow;
use crate::secrets::SecretRow;
use crate::tax_rates::TaxRateRow;
use crate::tenants::{CredentialRow, TenantRow};
use crate::webhooks::{AttemptRow, BehindRow, ClaimRow, DeliveryRow, EndpointRow, SigningRow};

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

/// Declares [`Decodes`]: a row that decodes into each of the listed types, for
/// every row that does.
macro_rules! decodes {
    ($($row:ty),+ $(,)?) => {
        /// A result row that decodes into every shared row type (and the scalars the
        /// queries read). A new row type joins the list below.
        pub trait Decodes: $(RowOf<$row> +)+ Send {}

        impl<R> Decodes for R where R: $(RowOf<$row> +)+ Send {}
    };
}

decodes!(
    TenantRow,
    CredentialRow,
    AccountRow,
    PlanRow,
    RecurringItemRow,
    ItemChangeRow,
    OneTimeItemRow,
    LedgerRow,
    InvoiceRow,
    InvoiceLineRow,
    TaxRateRow,
    KeyRow,
    CancelledItemRow,
    ExpiredBatchRow,
    OpenRunRow,
    EventRow,
    EndpointRow,
    BehindRow,
    DeliveryRow,
    AttemptRow,
    ClaimRow,
    SigningRow,
    SecretRow,
    (i64,),
    (Option<i64>,),
    (bool,),
);
