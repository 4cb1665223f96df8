//! The tenants' built-in tax rate tables.

use async_trait::async_trait;
use dynabill_app::model::TaxRateRecord;
use dynabill_app::store::{StoreError, StoreResult, TaxRateStore};
use dynabill_core::domain::{TaxRateId, TenantId};
use dynabill_core::tax::TaxRule;

use crate::backend::{Backend, failed};
use crate::query::{Query, select_list};
use crate::store::SqlStore;
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
            id: TaxRateId(r.id),
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

#[async_trait]
impl<B: Backend> TaxRateStore for SqlStore<B> {
    async fn add_tax_rate(&self, tenant: TenantId, rule: &TaxRule) -> StoreResult<TaxRateRecord> {
        let mut q = Query::<B>::new(
            "INSERT INTO tax_rates (tenant_id, name, country, state, tax_code, rate) VALUES (",
        );
        q.bind(tenant)
            .push(", ")
            .bind(&rule.name)
            .push(", ")
            .bind(&rule.country)
            .push(", ")
            .bind(&rule.state)
            .push(", ")
            .bind(&rule.tax_code)
            .push(", ")
            .bind_amount(rule.rate)
            .push(") RETURNING id");
        let (id,): (i64,) = q
            .fetch_one(&mut *self.write_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(TaxRateRecord {
            id: TaxRateId(id),
            rule: rule.clone(),
        })
    }

    async fn list_tax_rates(&self, tenant: TenantId) -> StoreResult<Vec<TaxRateRecord>> {
        let mut q = Query::<B>::new(format!(
            "SELECT {} FROM tax_rates WHERE tenant_id = ",
            select_list::<B>(&["id", "name", "country", "state", "tax_code", "rate"])
        ));
        q.bind(tenant).push(" ORDER BY id");
        let rows: Vec<TaxRateRow> = q
            .fetch_all(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn remove_tax_rate(&self, tenant: TenantId, id: TaxRateId) -> StoreResult<bool> {
        let mut q = Query::<B>::new("DELETE FROM tax_rates WHERE tenant_id = ");
        q.bind(tenant).push(" AND id = ").bind(id);
        let removed = q
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(removed == 1)
    }
}
