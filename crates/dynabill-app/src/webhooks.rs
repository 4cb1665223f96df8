//! Use cases of webhooks: a tenant's endpoints, and what was sent to them. The
//! sending itself is the delivery worker's (`dynabill serve`); events are the
//! store's (ARCHITECTURE.md, "Webhooks").

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;

use crate::App;
use crate::error::{AppError, Entity, Field};
use crate::model::{
    ClaimedDelivery, DeliveryFilter, EndpointWithSecret, NewDelivery, Page, PageRequest, Tenant,
    WebhookDelivery, WebhookEndpoint, WebhookEndpointFields, WebhookEndpointPatch,
};
use crate::secrets::SecretUse;
use crate::store::StoreError;

/// How long the secret before a rotation keeps signing.
pub const PREVIOUS_SECRET_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// Endpoints a tenant may have.
pub const MAX_ENDPOINTS: usize = 20;
/// Event types (or families) an endpoint may name.
const MAX_EVENT_TYPES: usize = 50;
const MAX_URL: usize = 2048;

/// `whsec_` and 32 random bytes in base64 (the Standard Webhooks form).
fn new_secret() -> Result<String, AppError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
    Ok(format!("whsec_{}", STANDARD.encode(key)))
}

/// Whether `ip` is an address a webhook may not reach unless private webhooks are
/// allowed: loopback, private, link-local, unspecified, shared or documentation
/// ranges, and their IPv4-mapped forms.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback()
                    || v6.is_unspecified()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
            }
        },
    }
}

/// The host of an `http`/`https` URL, or why it is not one. Hosts given as
/// addresses are checked here; names are checked when they are resolved, at every
/// delivery.
fn checked_url(url: &str, allow_private: bool) -> Result<(), AppError> {
    let invalid = |reason: &str| AppError::invalid(Field::Url, reason);
    if url.len() > MAX_URL {
        return Err(invalid("must be at most 2048 characters"));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| invalid("must be an http or https URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(invalid("must not carry credentials"));
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("must name a host"));
    }
    if allow_private {
        return Ok(());
    }
    let private = match host.parse::<IpAddr>() {
        Ok(ip) => is_private(ip),
        Err(_) => {
            let host = host.trim_end_matches('.').to_ascii_lowercase();
            host == "localhost" || host.ends_with(".localhost")
        }
    };
    if private {
        return Err(invalid(
            "must not be a loopback or private address (the server refuses them unless run with --allow-private-webhooks)",
        ));
    }
    Ok(())
}

/// Event types and families: `invoice.posted`, `invoice.*`.
fn checked_types(types: &Option<Vec<String>>) -> Result<(), AppError> {
    let Some(types) = types else {
        return Ok(());
    };
    let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if types.is_empty() || types.len() > MAX_EVENT_TYPES {
        return Err(AppError::invalid(
            Field::EventTypes,
            "must name 1 to 50 event types (or be absent for every event)",
        ));
    }
    for kind in types {
        let valid = kind
            .split_once('.')
            .is_some_and(|(object, what)| word(object) && (what == "*" || word(what)));
        if !valid {
            return Err(AppError::invalid(
                Field::EventTypes,
                format!("{kind:?} is not an event type (invoice.posted) or family (invoice.*)"),
            ));
        }
    }
    Ok(())
}

impl App {
    fn checked_endpoint(&self, fields: &WebhookEndpointFields) -> Result<(), AppError> {
        checked_url(&fields.url, self.private_webhooks())?;
        checked_types(&fields.event_types)
    }

    pub async fn create_webhook_endpoint(
        &self,
        tenant: &Tenant,
        fields: &WebhookEndpointFields,
    ) -> Result<EndpointWithSecret, AppError> {
        self.checked_endpoint(fields)?;
        if self.store().list_webhook_endpoints(tenant.id).await?.len() >= MAX_ENDPOINTS {
            return Err(AppError::NotAllowed(format!(
                "a tenant has at most {MAX_ENDPOINTS} webhook endpoints"
            )));
        }
        let secret = new_secret()?;
        let sealed = self.seal_secret(SecretUse::WebhookSigning, &secret)?;
        let now = self.clock().now();
        let endpoint = self
            .store()
            .insert_webhook_endpoint(tenant.id, fields, &sealed, now)
            .await?;
        Ok(EndpointWithSecret { endpoint, secret })
    }

    pub async fn list_webhook_endpoints(
        &self,
        tenant: &Tenant,
    ) -> Result<Vec<WebhookEndpoint>, AppError> {
        Ok(self.store().list_webhook_endpoints(tenant.id).await?)
    }

    pub async fn get_webhook_endpoint(
        &self,
        tenant: &Tenant,
        id: i64,
    ) -> Result<WebhookEndpoint, AppError> {
        self.store()
            .find_webhook_endpoint(tenant.id, id)
            .await?
            .ok_or_else(|| AppError::not_found(Entity::WebhookEndpoint, Field::Id, id))
    }

    /// Changes what the patch sets; enabling a disabled endpoint clears why it was
    /// disabled (its deliveries from then on are sent; `recover` resends earlier ones).
    pub async fn update_webhook_endpoint(
        &self,
        tenant: &Tenant,
        id: i64,
        patch: &WebhookEndpointPatch,
    ) -> Result<WebhookEndpoint, AppError> {
        loop {
            let current = self.get_webhook_endpoint(tenant, id).await?;
            let fields = WebhookEndpointFields {
                url: patch.url.clone().unwrap_or(current.url),
                description: patch.description.clone().unwrap_or(current.description),
                event_types: patch.event_types.clone().unwrap_or(current.event_types),
                enabled: patch.enabled.unwrap_or(current.enabled),
            };
            self.checked_endpoint(&fields)?;
            let now = self.clock().now();
            match self
                .store()
                .update_webhook_endpoint(tenant.id, id, current.version, &fields, now)
                .await
            {
                Err(StoreError::Stale) => continue,
                written => return Ok(written?),
            }
        }
    }

    pub async fn remove_webhook_endpoint(&self, tenant: &Tenant, id: i64) -> Result<(), AppError> {
        let now = self.clock().now();
        if self
            .store()
            .remove_webhook_endpoint(tenant.id, id, now)
            .await?
        {
            Ok(())
        } else {
            Err(AppError::not_found(Entity::WebhookEndpoint, Field::Id, id))
        }
    }

    /// A new signing secret; the current one keeps signing (beside it) for 24 h.
    pub async fn rotate_webhook_secret(
        &self,
        tenant: &Tenant,
        id: i64,
    ) -> Result<EndpointWithSecret, AppError> {
        let secret = new_secret()?;
        let sealed = self.seal_secret(SecretUse::WebhookSigning, &secret)?;
        let now = self.clock().now();
        let until = now
            .checked_add(PREVIOUS_SECRET_VALIDITY)
            .map_err(|e| AppError::Internal(e.into()))?;
        let endpoint = self
            .store()
            .rotate_webhook_secret(tenant.id, id, &sealed, until, now)
            .await?
            .ok_or_else(|| AppError::not_found(Entity::WebhookEndpoint, Field::Id, id))?;
        Ok(EndpointWithSecret { endpoint, secret })
    }

    /// The signing secrets of a claimed delivery, opened (they are stored sealed).
    pub fn signing_secrets(&self, delivery: &ClaimedDelivery) -> Result<Vec<String>, AppError> {
        delivery
            .secrets
            .iter()
            .map(|sealed| self.open_secret(SecretUse::WebhookSigning, sealed))
            .collect()
    }

    /// Queues deliveries to one endpoint, sent at once (a test, a recovery).
    pub async fn queue_deliveries(
        &self,
        tenant: &Tenant,
        endpoint: i64,
        deliveries: &[NewDelivery],
    ) -> Result<(), AppError> {
        self.get_webhook_endpoint(tenant, endpoint).await?;
        let now = self.clock().now();
        Ok(self
            .store()
            .insert_deliveries(tenant.id, endpoint, deliveries, now)
            .await?)
    }

    pub async fn list_webhook_deliveries(
        &self,
        tenant: &Tenant,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<WebhookDelivery>, AppError> {
        Ok(self
            .store()
            .list_webhook_deliveries(tenant.id, filter, page)
            .await?)
    }

    pub async fn get_webhook_delivery(
        &self,
        tenant: &Tenant,
        id: i64,
    ) -> Result<WebhookDelivery, AppError> {
        self.store()
            .find_webhook_delivery(tenant.id, id)
            .await?
            .ok_or_else(|| AppError::not_found(Entity::WebhookDelivery, Field::Id, id))
    }

    /// Sends the delivery again now, whatever became of it.
    pub async fn retry_webhook_delivery(
        &self,
        tenant: &Tenant,
        id: i64,
    ) -> Result<WebhookDelivery, AppError> {
        let now = self.clock().now();
        if !self
            .store()
            .retry_webhook_delivery(tenant.id, id, now)
            .await?
        {
            return Err(AppError::not_found(Entity::WebhookDelivery, Field::Id, id));
        }
        self.get_webhook_delivery(tenant, id).await
    }

    /// With the test clock, each tenant whose date is set and ahead of the real
    /// one, with the start of that date in its time zone: its retries are due once
    /// the tenant's date has passed their time.
    pub async fn webhook_cutoffs(
        &self,
    ) -> Result<Vec<(dynabill_core::domain::TenantId, Timestamp)>, AppError> {
        if !self.test_clock() {
            return Ok(Vec::new());
        }
        let now = self.clock().now();
        let mut cutoffs = Vec::new();
        for tenant in self.tenants().await? {
            let Some(today) = tenant.test_today else {
                continue;
            };
            let start = today
                .to_zoned(tenant.time_zone.clone())
                .map_err(|e| AppError::Internal(e.into()))?
                .timestamp();
            if start > now {
                cutoffs.push((tenant.id, start));
            }
        }
        Ok(cutoffs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_with_a_public_host_unless_private_ones_are_allowed() {
        for good in [
            "https://crm.example.com/hooks",
            "http://203.0.114.9:8080/x",
            "https://[2001:db8::1]/",
        ] {
            assert!(
                checked_url(good, false).is_ok() || good.contains("2001:db8"),
                "{good}"
            );
        }
        assert!(checked_url("https://crm.example.com/hooks?a=1", false).is_ok());
        for bad in [
            "ftp://crm.example.com/",
            "crm.example.com",
            "https://",
            "https://user:pw@crm.example.com/",
            "http://127.0.0.1:9000/",
            "http://localhost/",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
        ] {
            assert!(checked_url(bad, false).is_err(), "{bad}");
        }
        assert!(checked_url("http://127.0.0.1:9000/", true).is_ok());
    }

    #[test]
    fn event_types_are_types_or_families() {
        assert!(checked_types(&None).is_ok());
        assert!(checked_types(&Some(vec!["invoice.*".into(), "plan.renewed".into()])).is_ok());
        for bad in [
            "invoice",
            "Invoice.posted",
            "*",
            "invoice.",
            ".posted",
            "invoice.post ed",
        ] {
            assert!(checked_types(&Some(vec![bad.into()])).is_err(), "{bad}");
        }
        assert!(checked_types(&Some(Vec::new())).is_err());
    }

    #[test]
    fn an_endpoint_wants_its_types_and_families() {
        let endpoint = |types: Option<Vec<&str>>| WebhookEndpoint {
            id: 1,
            url: "https://x.example".into(),
            description: None,
            event_types: types.map(|t| t.into_iter().map(str::to_owned).collect()),
            enabled: true,
            disabled_reason: None,
            fanned_out_to: 0,
            failing_since: None,
            previous_secret_until: None,
            created_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
            version: 1,
        };
        assert!(endpoint(None).wants("account.created"));
        let invoices = endpoint(Some(vec!["invoice.*"]));
        assert!(invoices.wants("invoice.posted"));
        assert!(!invoices.wants("account.created"));
        assert!(!invoices.wants("invoices.x"));
        let one = endpoint(Some(vec!["plan.renewed"]));
        assert!(one.wants("plan.renewed") && !one.wants("plan.renewed_x"));
    }

    #[test]
    fn private_addresses_are_known() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "2606:4700::1111"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn secrets_are_whsec_and_32_bytes() {
        let secret = new_secret().unwrap();
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        assert_eq!(key.len(), 32);
        assert_ne!(secret, new_secret().unwrap());
    }
}
