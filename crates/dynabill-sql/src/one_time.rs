//! One-time items.

use dynabill_app::model::{OneTimeItem, OneTimeItemFields};
use dynabill_app::store::StoreError;
use dynabill_core::domain::{AccountId, OneTimeItemId, PlanId};

use crate::values::{Value, date_text, from_micros, parse_date, parse_decimal};

#[derive(Debug, sqlx::FromRow)]
pub struct OneTimeItemRow {
    pub id: i64,
    pub plan_id: i64,
    pub plan_ext_id: String,
    pub account_id: i64,
    pub ext_id: String,
    pub product_code: String,
    pub name: String,
    pub description: Option<String>,
    pub quantity: String,
    pub unit_price: String,
    pub charge_date: String,
    pub tax_code: Option<String>,
    pub cancelled_at: Option<i64>,
    pub invoiced: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub version: i64,
}

/// The writable columns of `one_time_items`, in the order [`one_time_values`] gives them.
pub const ONE_TIME_WRITABLE: [&str; 8] = [
    "ext_id",
    "product_code",
    "name",
    "description",
    "quantity",
    "unit_price",
    "charge_date",
    "tax_code",
];

pub fn one_time_values(f: &OneTimeItemFields) -> Vec<Value> {
    use Value::*;
    vec![
        Text(f.ext_id.clone()),
        Text(f.product_code.clone()),
        Text(f.name.clone()),
        OptText(f.description.clone()),
        Text(f.quantity.normalize().to_string()),
        Text(f.unit_price.normalize().to_string()),
        Text(date_text(f.charge_date)),
        OptText(f.tax_code.clone()),
    ]
}

impl TryFrom<OneTimeItemRow> for OneTimeItem {
    type Error = StoreError;

    fn try_from(r: OneTimeItemRow) -> Result<Self, StoreError> {
        Ok(OneTimeItem {
            id: OneTimeItemId(r.id),
            plan_id: PlanId(r.plan_id),
            plan_ext_id: r.plan_ext_id,
            account_id: AccountId(r.account_id),
            fields: OneTimeItemFields {
                ext_id: r.ext_id,
                product_code: r.product_code,
                name: r.name,
                description: r.description,
                quantity: parse_decimal(&r.quantity)?,
                unit_price: parse_decimal(&r.unit_price)?,
                charge_date: parse_date(&r.charge_date)?,
                tax_code: r.tax_code,
            },
            cancelled_at: r.cancelled_at.map(from_micros).transpose()?,
            invoiced: r.invoiced,
            created_at: from_micros(r.created_at)?,
            updated_at: from_micros(r.updated_at)?,
            deleted_at: r.deleted_at.map(from_micros).transpose()?,
            version: r.version,
        })
    }
}
