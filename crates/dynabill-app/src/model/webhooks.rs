//! Webhooks: where a tenant's events are sent, and how each sending went.

use jiff::Timestamp;

/// Where a tenant's events are POSTed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: i64,
    pub url: String,
    pub description: Option<String>,
    /// Event types and families (`invoice.*`) sent; `None`: every event.
    pub event_types: Option<Vec<String>>,
    pub enabled: bool,
    /// Why dynabill disabled it (`410 Gone`, failing for five days).
    pub disabled_reason: Option<String>,
    /// The tenant's events up to this sequence have their deliveries.
    pub fanned_out_to: i64,
    /// The first failed attempt since the last delivered one.
    pub failing_since: Option<Timestamp>,
    /// Until when the secret before the last rotation still signs.
    pub previous_secret_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

impl WebhookEndpoint {
    /// Whether an event of type `kind` goes to this endpoint.
    pub fn wants(&self, kind: &str) -> bool {
        self.event_types.as_ref().is_none_or(|types| {
            types.iter().any(|t| match t.strip_suffix('*') {
                Some(family) => kind.starts_with(family),
                None => t == kind,
            })
        })
    }
}

/// The fields of an endpoint its owner sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookEndpointFields {
    pub url: String,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: bool,
}

/// A change of an endpoint's fields: absent fields keep their value.
#[derive(Clone, Debug, Default)]
pub struct WebhookEndpointPatch {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub event_types: Option<Option<Vec<String>>>,
    pub enabled: Option<bool>,
}

/// An endpoint with its signing secret, which is shown once: when the endpoint is
/// created, and when the secret is rotated.
#[derive(Clone, Debug)]
pub struct EndpointWithSecret {
    pub endpoint: WebhookEndpoint,
    pub secret: String,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    /// Retries exhausted, or the endpoint disabled or removed.
    Failed,
}

impl DeliveryStatus {
    pub fn code(self) -> i64 {
        match self {
            DeliveryStatus::Pending => 1,
            DeliveryStatus::Delivered => 2,
            DeliveryStatus::Failed => 3,
        }
    }

    pub fn from_code(code: i64) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }
}

/// One event to send to one endpoint, with its body as every attempt sends it.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub event_id: String,
    pub event_type: String,
    /// `None` for `webhook.test`, which is not in the log.
    pub sequence: Option<i64>,
    pub payload: String,
}

/// The sending of one event to one endpoint.
#[derive(Clone, Debug)]
pub struct WebhookDelivery {
    pub id: i64,
    pub endpoint_id: i64,
    pub event_id: String,
    pub event_type: String,
    pub sequence: Option<i64>,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    /// Its attempts, oldest first (read with one delivery, not in lists).
    pub attempt_log: Vec<WebhookAttempt>,
}

/// One POST of a delivery, and what came of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookAttempt {
    pub attempted_at: Timestamp,
    /// `None` when no answer came (refused, timed out, refused address).
    pub status_code: Option<u16>,
    pub duration_ms: i64,
    pub error: Option<String>,
    /// The first KiB of the answer's body.
    pub response: Option<String>,
}

/// Which deliveries a list holds.
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    pub endpoint_id: Option<i64>,
    pub status: Option<DeliveryStatus>,
    pub event_id: Option<String>,
}

/// A delivery a worker has claimed, with what it needs to send it.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub tenant_id: i64,
    pub endpoint_id: i64,
    pub url: String,
    /// The secrets to sign with: the current one, and the previous one while it
    /// is still valid after a rotation.
    pub secrets: Vec<String>,
    /// The endpoint's first failed attempt since its last delivered one.
    pub failing_since: Option<Timestamp>,
    pub event_id: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// What a worker does with a delivery after an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryNext {
    Delivered,
    RetryAt(Timestamp),
    /// No more attempts; with the endpoint disabled when `disable` says why.
    GiveUp {
        disable: Option<String>,
    },
}
