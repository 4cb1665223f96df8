//! Webhook endpoints, the deliveries of events to them, and their attempts
//! (ARCHITECTURE.md, "Webhooks").

use std::collections::HashMap;

use async_trait::async_trait;
use dynabill_app::model::{
    ClaimedDelivery, DeliveryFilter, DeliveryNext, DeliveryStatus, NewDelivery, Page, PageRequest,
    WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEndpointFields,
};
use dynabill_app::store::{StoreError, StoreResult, WebhookStore};
use dynabill_core::domain::TenantId;
use jiff::Timestamp;

use crate::backend::{Backend, Conn, failed};
use crate::paging::{Listing, PageOrder, finish};
use crate::query::{Query, select_list};
use crate::store::SqlStore;
use crate::values::{Value, coded, from_micros, micros};

/// A row of `webhook_endpoints` (without its secrets).
#[derive(Debug, sqlx::FromRow)]
pub struct EndpointRow {
    id: i64,
    url: String,
    description: Option<String>,
    event_types: Option<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    fanned_out_to: i64,
    failing_since: Option<i64>,
    previous_secret_until: Option<i64>,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

const ENDPOINT_COLUMNS: [&str; 12] = [
    "id",
    "url",
    "description",
    "event_types",
    "enabled",
    "disabled_reason",
    "fanned_out_to",
    "failing_since",
    "previous_secret_until",
    "created_at",
    "updated_at",
    "version",
];

impl TryFrom<EndpointRow> for WebhookEndpoint {
    type Error = StoreError;

    fn try_from(r: EndpointRow) -> Result<Self, StoreError> {
        let event_types = r
            .event_types
            .as_deref()
            .map(serde_json::from_str::<Vec<String>>)
            .transpose()
            .map_err(|e| StoreError::Other(anyhow::anyhow!("bad event types: {e}")))?;
        Ok(WebhookEndpoint {
            id: r.id,
            url: r.url,
            description: r.description,
            event_types,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            fanned_out_to: r.fanned_out_to,
            failing_since: r.failing_since.map(from_micros).transpose()?,
            previous_secret_until: r.previous_secret_until.map(from_micros).transpose()?,
            created_at: from_micros(r.created_at)?,
            updated_at: from_micros(r.updated_at)?,
            version: r.version,
        })
    }
}

fn event_types_text(types: &Option<Vec<String>>) -> Option<String> {
    types
        .as_ref()
        .map(|t| serde_json::Value::from(t.clone()).to_string())
}

/// An endpoint with its tenant.
#[derive(Debug, sqlx::FromRow)]
pub struct BehindRow {
    tenant_id: i64,
    #[sqlx(flatten)]
    endpoint: EndpointRow,
}

/// A row of `webhook_deliveries` (without its payload).
#[derive(Debug, sqlx::FromRow)]
pub struct DeliveryRow {
    id: i64,
    endpoint_id: i64,
    event_id: String,
    event_type: String,
    sequence: Option<i64>,
    status: i64,
    attempts: i64,
    next_attempt_at: Option<i64>,
    created_at: i64,
    delivered_at: Option<i64>,
}

const DELIVERY_COLUMNS: &str = "id, endpoint_id, event_id, event_type, sequence, status, \
    attempts, next_attempt_at, created_at, delivered_at";

impl TryFrom<DeliveryRow> for WebhookDelivery {
    type Error = StoreError;

    fn try_from(r: DeliveryRow) -> Result<Self, StoreError> {
        Ok(WebhookDelivery {
            id: r.id,
            endpoint_id: r.endpoint_id,
            event_id: r.event_id,
            event_type: r.event_type,
            sequence: r.sequence,
            status: coded("delivery status", r.status, DeliveryStatus::from_code)?,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at.map(from_micros).transpose()?,
            created_at: from_micros(r.created_at)?,
            delivered_at: r.delivered_at.map(from_micros).transpose()?,
            attempt_log: Vec::new(),
        })
    }
}

/// A row of `webhook_attempts`.
#[derive(Debug, sqlx::FromRow)]
pub struct AttemptRow {
    attempted_at: i64,
    status_code: Option<i64>,
    duration_ms: i64,
    error: Option<String>,
    response: Option<String>,
}

impl TryFrom<AttemptRow> for WebhookAttempt {
    type Error = StoreError;

    fn try_from(r: AttemptRow) -> Result<Self, StoreError> {
        Ok(WebhookAttempt {
            attempted_at: from_micros(r.attempted_at)?,
            status_code: r.status_code.and_then(|c| u16::try_from(c).ok()),
            duration_ms: r.duration_ms,
            error: r.error,
            response: r.response,
        })
    }
}

/// A claimed delivery, as the claim returns it.
#[derive(Debug, sqlx::FromRow)]
pub struct ClaimRow {
    id: i64,
    tenant_id: i64,
    endpoint_id: i64,
    event_id: String,
    payload: String,
    attempts: i64,
}

/// What a claim needs of an endpoint: where, and the secrets to sign with.
#[derive(Debug, sqlx::FromRow)]
pub struct SigningRow {
    id: i64,
    url: String,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_until: Option<i64>,
    failing_since: Option<i64>,
}

const DELIVERY_INSERT: [&str; 10] = [
    "tenant_id",
    "endpoint_id",
    "event_id",
    "event_type",
    "sequence",
    "payload",
    "status",
    "next_attempt_at",
    "created_at",
    "updated_at",
];

async fn insert_deliveries<B: Backend>(
    conn: &mut Conn<B>,
    tenant: TenantId,
    endpoint: i64,
    deliveries: &[NewDelivery],
    now: Timestamp,
) -> StoreResult<()> {
    let per_statement = (B::BINDS_PER_STATEMENT / DELIVERY_INSERT.len()).max(1);
    for chunk in deliveries.chunks(per_statement) {
        let rows = chunk
            .iter()
            .map(|d| {
                vec![
                    Value::Int(tenant.0),
                    Value::Int(endpoint),
                    Value::Text(d.event_id.clone()),
                    Value::Text(d.event_type.clone()),
                    Value::OptInt(d.sequence),
                    Value::Text(d.payload.clone()),
                    Value::Int(DeliveryStatus::Pending.code()),
                    Value::Int(micros(now)),
                    Value::Int(micros(now)),
                    Value::Int(micros(now)),
                ]
            })
            .collect();
        B::insert_rows(conn, "webhook_deliveries", &DELIVERY_INSERT, rows, false)
            .await
            .map_err(failed::<B>)?;
    }
    Ok(())
}

fn endpoint_select<B: Backend>() -> String {
    format!(
        "SELECT {} FROM webhook_endpoints",
        select_list::<B>(&ENDPOINT_COLUMNS)
    )
}

impl<B: Backend> SqlStore<B> {
    async fn endpoint(
        conn: &mut Conn<B>,
        tenant: TenantId,
        id: i64,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        let mut q = Query::<B>::new(endpoint_select::<B>());
        q.push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id)
            .push(" AND deleted_at IS NULL");
        let row: Option<EndpointRow> = q.fetch_optional(conn).await.map_err(failed::<B>)?;
        row.map(TryInto::try_into).transpose()
    }
}

#[async_trait]
impl<B: Backend> WebhookStore for SqlStore<B> {
    async fn insert_webhook_endpoint(
        &self,
        tenant: TenantId,
        fields: &WebhookEndpointFields,
        secret: &str,
        now: Timestamp,
    ) -> StoreResult<WebhookEndpoint> {
        // It takes the events from the last one committed on.
        self.number_events(Some(tenant)).await?;
        let conn = &mut *self.write_conn().await?;
        // Sent the events after the tenant's last one (numbered: committed).
        let mut q = Query::<B>::new(
            "INSERT INTO webhook_endpoints (tenant_id, url, description, event_types, enabled, \
             secret, fanned_out_to, created_at, updated_at) SELECT ",
        );
        q.bind(tenant)
            .push(", ")
            .bind(&fields.url)
            .push(", ")
            .bind(&fields.description)
            .push(", ")
            .bind(event_types_text(&fields.event_types))
            .push(", ")
            .bind(fields.enabled)
            .push(", ")
            .bind(secret)
            .push(", COALESCE(MAX(sequence), 0), ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(" FROM events WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND sequence IS NOT NULL RETURNING id");
        let (id,): (i64,) = q.fetch_one(&mut *conn).await.map_err(failed::<B>)?;
        Self::endpoint(conn, tenant, id)
            .await?
            .ok_or(StoreError::Stale)
    }

    async fn list_webhook_endpoints(&self, tenant: TenantId) -> StoreResult<Vec<WebhookEndpoint>> {
        let mut q = Query::<B>::new(endpoint_select::<B>());
        q.push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND deleted_at IS NULL ORDER BY id");
        let rows: Vec<EndpointRow> = q
            .fetch_all(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn find_webhook_endpoint(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        Self::endpoint(&mut *self.read_conn().await?, tenant, id).await
    }

    async fn update_webhook_endpoint(
        &self,
        tenant: TenantId,
        id: i64,
        version: i64,
        fields: &WebhookEndpointFields,
        now: Timestamp,
    ) -> StoreResult<WebhookEndpoint> {
        self.number_events(Some(tenant)).await?;
        let conn = &mut *self.write_conn().await?;
        let mut q = Query::<B>::new("UPDATE webhook_endpoints SET url = ");
        q.bind(&fields.url)
            .push(", description = ")
            .bind(&fields.description)
            .push(", event_types = ")
            .bind(event_types_text(&fields.event_types))
            // Enabled again, it takes the events from now on (`recover` resends
            // the ones in between).
            .push(", fanned_out_to = CASE WHEN ")
            .bind(fields.enabled)
            .push(" AND NOT enabled THEN (SELECT COALESCE(MAX(sequence), 0) FROM events WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND sequence IS NOT NULL) ELSE fanned_out_to END")
            .push(", enabled = ")
            .bind(fields.enabled)
            .push(", disabled_reason = CASE WHEN ")
            .bind(fields.enabled)
            .push(" THEN NULL ELSE disabled_reason END")
            .push(", failing_since = CASE WHEN ")
            .bind(fields.enabled)
            .push(" THEN NULL ELSE failing_since END")
            .push(", version = version + 1, updated_at = ")
            .bind(now)
            .push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id)
            .push(" AND version = ")
            .bind(version)
            .push(" AND deleted_at IS NULL");
        if q.execute(&mut *conn).await.map_err(failed::<B>)? == 0 {
            return Err(StoreError::Stale);
        }
        Self::endpoint(conn, tenant, id)
            .await?
            .ok_or(StoreError::Stale)
    }

    async fn remove_webhook_endpoint(
        &self,
        tenant: TenantId,
        id: i64,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.backend().begin_write().await?;
        let mut q = Query::<B>::new("UPDATE webhook_endpoints SET enabled = ");
        q.bind(false)
            .push(", deleted_at = ")
            .bind(now)
            .push(", updated_at = ")
            .bind(now)
            .push(", version = version + 1 WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id)
            .push(" AND deleted_at IS NULL");
        if q.execute(&mut tx).await.map_err(failed::<B>)? == 0 {
            return Ok(false);
        }
        fail_pending::<B>(&mut tx, id, now).await?;
        tx.commit().await.map_err(failed::<B>)?;
        Ok(true)
    }

    async fn rotate_webhook_secret(
        &self,
        tenant: TenantId,
        id: i64,
        secret: &str,
        previous_until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        let conn = &mut *self.write_conn().await?;
        let mut q = Query::<B>::new(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = ",
        );
        q.bind(previous_until)
            .push(", secret = ")
            .bind(secret)
            .push(", version = version + 1, updated_at = ")
            .bind(now)
            .push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id)
            .push(" AND deleted_at IS NULL");
        if q.execute(&mut *conn).await.map_err(failed::<B>)? == 0 {
            return Ok(None);
        }
        Self::endpoint(conn, tenant, id).await
    }

    async fn insert_deliveries(
        &self,
        tenant: TenantId,
        endpoint: i64,
        deliveries: &[NewDelivery],
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.backend().begin_write().await?;
        insert_deliveries::<B>(&mut tx, tenant, endpoint, deliveries, now).await?;
        tx.commit().await.map_err(failed::<B>)
    }

    async fn endpoints_behind(&self) -> StoreResult<Vec<(TenantId, WebhookEndpoint)>> {
        self.number_events(None).await?;
        let mut columns = vec!["e.tenant_id".to_owned()];
        columns.extend(ENDPOINT_COLUMNS.iter().map(|c| format!("e.{c}")));
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        // The tenant's last numbered event, from the index `events_sequence`.
        let q = Query::<B>::new(format!(
            "SELECT {} FROM webhook_endpoints e WHERE e.enabled AND e.deleted_at IS NULL \
             AND e.fanned_out_to < (SELECT COALESCE(MAX(v.sequence), 0) FROM events v \
             WHERE v.tenant_id = e.tenant_id AND v.sequence IS NOT NULL) ORDER BY e.id",
            select_list::<B>(&columns)
        ));
        let rows: Vec<BehindRow> = q
            .fetch_all(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        rows.into_iter()
            .map(|r| Ok((TenantId(r.tenant_id), r.endpoint.try_into()?)))
            .collect()
    }

    async fn fan_out(
        &self,
        tenant: TenantId,
        endpoint: i64,
        from: i64,
        to: i64,
        deliveries: &[NewDelivery],
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.backend().begin_write().await?;
        let mut q = Query::<B>::new("UPDATE webhook_endpoints SET fanned_out_to = ");
        q.bind(to)
            .push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(endpoint)
            .push(" AND fanned_out_to = ")
            .bind(from)
            .push(" AND enabled AND deleted_at IS NULL");
        if q.execute(&mut tx).await.map_err(failed::<B>)? == 0 {
            return Ok(false);
        }
        insert_deliveries::<B>(&mut tx, tenant, endpoint, deliveries, now).await?;
        tx.commit().await.map_err(failed::<B>)?;
        Ok(true)
    }

    async fn next_delivery_due(&self) -> StoreResult<Option<Timestamp>> {
        // Served by the partial index `webhook_deliveries_due`.
        let q =
            Query::<B>::new("SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 1");
        let (due,): (Option<i64>,) = q
            .fetch_one(&mut *self.read_conn().await?)
            .await
            .map_err(failed::<B>)?;
        due.map(from_micros).transpose()
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
        cutoffs: &[(TenantId, Timestamp)],
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let mut tx = self.backend().begin_write().await?;
        let mut q = Query::<B>::new("UPDATE webhook_deliveries SET lease_owner = ");
        q.bind(owner)
            .push(", lease_until = ")
            .bind(lease_until)
            .push(
                " WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 1 \
                 AND (next_attempt_at <= ",
            )
            .bind(now);
        for (tenant, cutoff) in cutoffs {
            q.push(" OR (tenant_id = ")
                .bind(*tenant)
                .push(" AND next_attempt_at <= ")
                .bind(*cutoff)
                .push(")");
        }
        q.push(
            ") AND EXISTS (SELECT 1 FROM webhook_endpoints w \
             WHERE w.id = webhook_deliveries.endpoint_id AND w.deleted_at IS NULL)",
        )
        .push(" AND (lease_until IS NULL OR lease_until < ")
        .bind(now)
        .push(") ORDER BY next_attempt_at, id LIMIT ")
        .bind(i64::from(limit))
        .push(B::SKIP_LOCKED)
        .push(") RETURNING id, tenant_id, endpoint_id, event_id, payload, attempts");
        let mut claimed: Vec<ClaimRow> = q.fetch_all(&mut tx).await.map_err(failed::<B>)?;
        // `RETURNING` keeps no order: deliveries are queued in their events' order.
        claimed.sort_unstable_by_key(|c| c.id);
        if claimed.is_empty() {
            tx.commit().await.map_err(failed::<B>)?;
            return Ok(Vec::new());
        }
        let mut ids: Vec<i64> = claimed.iter().map(|c| c.endpoint_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut q = Query::<B>::new(
            "SELECT id, url, secret, previous_secret, previous_secret_until, failing_since \
             FROM webhook_endpoints WHERE 1 = 1",
        );
        q.and_in("id", &ids);
        let endpoints: HashMap<i64, SigningRow> = q
            .fetch_all::<SigningRow>(&mut tx)
            .await
            .map_err(failed::<B>)?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
        tx.commit().await.map_err(failed::<B>)?;
        let now_micros = micros(now);
        claimed
            .into_iter()
            .map(|c| {
                let endpoint = endpoints.get(&c.endpoint_id).ok_or_else(|| {
                    StoreError::Other(anyhow::anyhow!("a delivery without its endpoint"))
                })?;
                let mut secrets = vec![endpoint.secret.clone()];
                if let (Some(previous), Some(until)) =
                    (&endpoint.previous_secret, endpoint.previous_secret_until)
                    && until > now_micros
                {
                    secrets.push(previous.clone());
                }
                Ok(ClaimedDelivery {
                    id: c.id,
                    tenant_id: c.tenant_id,
                    endpoint_id: c.endpoint_id,
                    url: endpoint.url.clone(),
                    secrets,
                    failing_since: endpoint.failing_since.map(from_micros).transpose()?,
                    event_id: c.event_id,
                    payload: c.payload,
                    attempts: c.attempts,
                })
            })
            .collect()
    }

    async fn release_deliveries(&self, ids: &[i64], owner: &str) -> StoreResult<()> {
        let mut q = Query::<B>::new(
            "UPDATE webhook_deliveries SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ",
        );
        q.bind(owner).and_in("id", ids);
        q.execute(&mut *self.write_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(())
    }

    async fn record_attempt(
        &self,
        delivery: &ClaimedDelivery,
        owner: &str,
        attempt: &WebhookAttempt,
        next: &DeliveryNext,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.backend().begin_write().await?;
        let (status, next_at, delivered_at) = match next {
            DeliveryNext::Delivered => (DeliveryStatus::Delivered, None, Some(micros(now))),
            DeliveryNext::RetryAt(at) => (DeliveryStatus::Pending, Some(micros(*at)), None),
            DeliveryNext::GiveUp { .. } => (DeliveryStatus::Failed, None, None),
        };
        let mut q = Query::<B>::new(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, lease_owner = NULL, \
             lease_until = NULL, status = ",
        );
        q.bind(status.code())
            .push(", next_attempt_at = ")
            .bind(next_at)
            .push(", delivered_at = ")
            .bind(delivered_at)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE id = ")
            .bind(delivery.id)
            .push(" AND lease_owner = ")
            .bind(owner);
        if q.execute(&mut tx).await.map_err(failed::<B>)? == 0 {
            return Ok(false);
        }
        let mut q = Query::<B>::new(
            "INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, duration_ms, \
             error, response) VALUES (",
        );
        q.bind(delivery.id)
            .push(", ")
            .bind(attempt.attempted_at)
            .push(", ")
            .bind(attempt.status_code.map(i64::from))
            .push(", ")
            .bind(attempt.duration_ms)
            .push(", ")
            .bind(&attempt.error)
            .push(", ")
            .bind(&attempt.response)
            .push(")");
        q.execute(&mut tx).await.map_err(failed::<B>)?;
        let mut q = Query::<B>::new("UPDATE webhook_endpoints SET ");
        match next {
            DeliveryNext::Delivered => q.push("failing_since = NULL"),
            DeliveryNext::RetryAt(_) | DeliveryNext::GiveUp { disable: None } => q
                .push("failing_since = COALESCE(failing_since, ")
                .bind(attempt.attempted_at)
                .push(")"),
            DeliveryNext::GiveUp {
                disable: Some(reason),
            } => q
                .push("enabled = ")
                .bind(false)
                .push(", disabled_reason = ")
                .bind(reason)
                .push(", version = version + 1, updated_at = ")
                .bind(now),
        };
        q.push(" WHERE id = ").bind(delivery.endpoint_id);
        q.execute(&mut tx).await.map_err(failed::<B>)?;
        if let DeliveryNext::GiveUp { disable: Some(_) } = next {
            fail_pending::<B>(&mut tx, delivery.endpoint_id, now).await?;
        }
        tx.commit().await.map_err(failed::<B>)?;
        Ok(true)
    }

    async fn list_webhook_deliveries(
        &self,
        tenant: TenantId,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> StoreResult<Page<WebhookDelivery>> {
        let listing = Listing::<B> {
            columns: DELIVERY_COLUMNS,
            from: "FROM webhook_deliveries",
            count_from: None,
            key: "id",
            filter: Box::new(move |q: &mut Query<B>| {
                q.push(" WHERE tenant_id = ").bind(tenant);
                if let Some(endpoint) = filter.endpoint_id {
                    q.push(" AND endpoint_id = ").bind(endpoint);
                }
                if let Some(status) = filter.status {
                    q.push(" AND status = ").bind(status.code());
                }
                if let Some(event) = &filter.event_id {
                    q.push(" AND event_id = ").bind(event);
                }
            }),
            order: PageOrder::of(filter.status.is_some() || filter.event_id.is_some(), true),
            tally: None,
        };
        let (total, rows, tx) = listing.read::<DeliveryRow>(self, page).await?;
        let deliveries = rows
            .into_iter()
            .map(WebhookDelivery::try_from)
            .collect::<StoreResult<Vec<_>>>()?;
        finish::<B, _>(tx, deliveries, page, total, |d| d.id).await
    }

    async fn find_webhook_delivery(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> StoreResult<Option<WebhookDelivery>> {
        let mut tx = self.backend().begin_read().await?;
        let mut q = Query::<B>::new(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE tenant_id = "
        ));
        q.bind(tenant).push(" AND id = ").bind(id);
        let row: Option<DeliveryRow> = q.fetch_optional(&mut tx).await.map_err(failed::<B>)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut delivery = WebhookDelivery::try_from(row)?;
        let mut q = Query::<B>::new(
            "SELECT attempted_at, status_code, duration_ms, error, response \
             FROM webhook_attempts WHERE delivery_id = ",
        );
        q.bind(id).push(" ORDER BY id");
        let attempts: Vec<AttemptRow> = q.fetch_all(&mut tx).await.map_err(failed::<B>)?;
        tx.commit().await.map_err(failed::<B>)?;
        delivery.attempt_log = attempts
            .into_iter()
            .map(TryInto::try_into)
            .collect::<StoreResult<_>>()?;
        Ok(Some(delivery))
    }

    async fn retry_webhook_delivery(
        &self,
        tenant: TenantId,
        id: i64,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut q = Query::<B>::new("UPDATE webhook_deliveries SET status = 1, next_attempt_at = ");
        q.bind(now)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE tenant_id = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id);
        let changed = q
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(failed::<B>)?;
        Ok(changed == 1)
    }
}

/// Fails the pending deliveries of an endpoint that was disabled or removed.
async fn fail_pending<B: Backend>(
    conn: &mut Conn<B>,
    endpoint: i64,
    now: Timestamp,
) -> StoreResult<()> {
    let mut q = Query::<B>::new(
        "UPDATE webhook_deliveries SET status = 3, next_attempt_at = NULL, updated_at = ",
    );
    q.bind(now)
        .push(" WHERE endpoint_id = ")
        .bind(endpoint)
        .push(" AND status = 1");
    q.execute(conn).await.map_err(failed::<B>)?;
    Ok(())
}
