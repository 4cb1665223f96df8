-- Webhooks: a tenant's endpoints, the deliveries of its events to them, and every
-- attempt of each delivery (ARCHITECTURE.md, "Webhooks").

CREATE TABLE webhook_endpoints (
    id                     BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id              BIGINT  NOT NULL REFERENCES tenants (id),
    url                    TEXT    NOT NULL,
    description            TEXT,
    -- A JSON array of event types and families (`invoice.*`); NULL: every event.
    event_types            TEXT,
    enabled                BOOLEAN NOT NULL DEFAULT TRUE,
    -- Why dynabill disabled it (410 Gone, failing for 5 days).
    disabled_reason        TEXT,
    secret                 TEXT    NOT NULL,
    -- The secret before the last rotation, still signed with until then.
    previous_secret        TEXT,
    previous_secret_until  BIGINT,
    -- The tenant's events up to this sequence have their deliveries.
    fanned_out_to          BIGINT  NOT NULL,
    -- The first failed attempt since the last delivered one.
    failing_since          BIGINT,
    created_at             BIGINT  NOT NULL,
    updated_at             BIGINT  NOT NULL,
    deleted_at             BIGINT,
    version                BIGINT  NOT NULL DEFAULT 1
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, id);

CREATE TABLE webhook_deliveries (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        BIGINT  NOT NULL REFERENCES tenants (id),
    endpoint_id      BIGINT  NOT NULL REFERENCES webhook_endpoints (id),
    event_id         TEXT    NOT NULL,
    event_type       TEXT    NOT NULL,
    -- NULL for `webhook.test`, which is not in the log.
    sequence         BIGINT,
    -- The body, the same on every attempt.
    payload          TEXT    NOT NULL,
    -- 1 pending, 2 delivered, 3 failed (retries exhausted, or the endpoint disabled).
    status           BIGINT  NOT NULL,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    lease_owner      TEXT,
    lease_until      BIGINT,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    delivered_at     BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 1;
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (tenant_id, endpoint_id, id);

CREATE TABLE webhook_attempts (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id   BIGINT  NOT NULL REFERENCES webhook_deliveries (id),
    attempted_at  BIGINT  NOT NULL,
    -- NULL when no answer came (refused, timed out).
    status_code   BIGINT,
    duration_ms   BIGINT  NOT NULL,
    error         TEXT,
    -- The first KiB of the answer's body.
    response      TEXT
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
