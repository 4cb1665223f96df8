//! One-time items (entity 75): list/get (3), create-or-update (10), delete (11).

use dynabill_app::App;
use dynabill_app::model::{OneTimeItemPatch, RecordKey, Tenant};

use super::{MAX_SCALE, page_reply, plan_key, quantity, required_key};
use crate::envelope::{self, Reply};
use crate::error::{DoorError, from_app};
use crate::fields::{EXT_ID, ID, MAX_LONG_TEXT, MAX_TEXT};
use crate::params::Params;
use crate::wire::OneTimeItemOut;

pub(crate) fn patch(p: &Params) -> Result<OneTimeItemPatch, DoorError> {
    Ok(OneTimeItemPatch {
        ext_id: p.text(EXT_ID, MAX_TEXT)?,
        plan: plan_key(p)?,
        product_code: p.text("ProductCode", MAX_TEXT)?,
        name: p.text("ItemName", MAX_TEXT)?,
        description: p.optional_text("Description", MAX_LONG_TEXT)?,
        quantity: quantity(p)?,
        // May be negative: a one-off credit.
        unit_price: p.decimal("UnitPrice", MAX_SCALE)?,
        charge_date: p.required_date("ChargeDate")?,
        tax_code: p.optional_text("TaxCode", MAX_TEXT)?,
    })
}

pub async fn list(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let (filter, scope) = super::recurring::filter(app, tenant, p, request_id, 75).await?;
    let page = scope.page(p)?;
    if let Some(id) = filter.id {
        app.get_one_time_item(tenant, &RecordKey::Id(id), filter.include_deleted)
            .await
            .map_err(|e| from_app(e, request_id))?;
    }
    let found = app
        .list_one_time_items(tenant, &filter, page)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(page_reply(&found, &scope, OneTimeItemOut::from))
}

pub async fn upsert(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let id = p.id(ID)?;
    let patch = patch(p)?;
    let item = app
        .upsert_one_time_item(tenant, id, patch)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(envelope::written(&item.id.to_string(), &item.fields.ext_id))
}

pub async fn delete(
    app: &App,
    tenant: &Tenant,
    p: &Params,
    request_id: &str,
) -> Result<Reply, DoorError> {
    let key = required_key(p, "to delete a one-time item")?;
    let item = app
        .delete_one_time_item(tenant, &key)
        .await
        .map_err(|e| from_app(e, request_id))?;
    Ok(envelope::written(&item.id.to_string(), &item.fields.ext_id))
}
