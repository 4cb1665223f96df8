//! The tenants' built-in tax rate tables.

use dynabill_app::model::TaxRateRecord;
use dynabill_app::store::StoreError;
use dynabill_core::tax::TaxRule;

use crate::values::parse_decimal;

/// A row of `tax_rates`.
#[derive(Debug, sqlx::FromRow)]
pub struct TaxRateRow {
    pub id: i64,
    pub name: String,
    pub country: String,
    pub state: Option<String>,
    pub tax_code: Option<String>,
    pub rate: String,
}

impl TryFrom<TaxRateRow> for TaxRateRecord {
    type Error = StoreError;

    fn try_from(r: TaxRateRow) -> Result<Self, StoreError> {
        Ok(TaxRateRecord {
            id: r.id,
            rule: TaxRule {
                name: r.name,
                country: r.country,
                state: r.state,
                tax_code: r.tax_code,
                rate: parse_decimal(&r.rate)?,
            },
        })
    }
}
