//! The secrets stored in the book (AvaTax license keys, webhook signing
//! secrets), read and replaced whole: the server's start checks they open with
//! its key, and `dynabill secrets rotate` seals them again.

use async_trait::async_trait;
use dynabill_app::store::{SecretChange, SecretPlace, SecretStore, StoreResult, StoredSecret};
use dynabill_core::domain::TenantId;

use crate::backend::{Backend, failed};
use crate::query::Query;
use crate::store::SqlStore;

/// A secret's row: which column of which table, and the key of its record.
#[derive(Debug, sqlx::FromRow)]
pub struct SecretRow {
    place: String,
    id: i64,
    value: String,
}

/// Each place's table, column and key column.
fn column_of(place: SecretPlace) -> (&'static str, &'static str, i64) {
    match place {
        SecretPlace::AvaTaxLicenseKey(tenant) => ("tenants", "avatax_license_key", tenant.0),
        SecretPlace::WebhookSecret(id) => ("webhook_endpoints", "secret", id),
        SecretPlace::WebhookPreviousSecret(id) => ("webhook_endpoints", "previous_secret", id),
        SecretPlace::KeyCheck => ("key_checks", "sealed", 1),
    }
}

#[async_trait]
impl<B: Backend> SecretStore for SqlStore<B> {
    async fn stored_secrets(&self) -> StoreResult<Vec<StoredSecret>> {
        let rows: Vec<SecretRow> = Query::<B>::new(
            "SELECT 'avatax' AS place, id, avatax_license_key AS value FROM tenants \
             WHERE avatax_license_key IS NOT NULL \
             UNION ALL SELECT 'webhook', id, secret FROM webhook_endpoints \
             UNION ALL SELECT 'previous', id, previous_secret FROM webhook_endpoints \
             WHERE previous_secret IS NOT NULL \
             UNION ALL SELECT 'check', id, sealed FROM key_checks",
        )
        .fetch_all(&mut *self.read_conn().await?)
        .await
        .map_err(failed::<B>)?;
        Ok(rows
            .into_iter()
            .map(|row| StoredSecret {
                place: match row.place.as_str() {
                    "avatax" => SecretPlace::AvaTaxLicenseKey(TenantId(row.id)),
                    "webhook" => SecretPlace::WebhookSecret(row.id),
                    "previous" => SecretPlace::WebhookPreviousSecret(row.id),
                    _ => SecretPlace::KeyCheck,
                },
                value: row.value,
            })
            .collect())
    }

    async fn replace_secrets(&self, changes: &[SecretChange]) -> StoreResult<u64> {
        let mut tx = self.backend().begin_write().await?;
        let mut replaced = 0;
        for change in changes {
            let (table, column, id) = column_of(change.place);
            let mut q = Query::<B>::new(format!("UPDATE {table} SET {column} = "));
            q.bind(change.to.as_str())
                .push(" WHERE id = ")
                .bind(id)
                .push(format!(" AND {column} = "))
                .bind(change.from.as_str());
            replaced += q.execute(&mut tx).await.map_err(failed::<B>)?;
        }
        tx.commit().await.map_err(failed::<B>)?;
        Ok(replaced)
    }

    async fn add_key_check(&self, sealed: &str) -> StoreResult<bool> {
        let mut q = Query::<B>::new("INSERT INTO key_checks (id, sealed) VALUES (1, ");
        q.bind(sealed).push(") ON CONFLICT (id) DO NOTHING");
        let added = q
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(added == 1)
    }
}
