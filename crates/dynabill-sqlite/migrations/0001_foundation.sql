-- Tenants, API users, accounts, account plans, idempotency keys.
-- Timestamps are integer microseconds since the Unix epoch (UTC); dates are
-- 'YYYY-MM-DD' text; amounts are exact decimal text. Every tenant-owned table
-- carries tenant_id and every lookup names it.

CREATE TABLE tenants (
    id          INTEGER PRIMARY KEY,
    app_key     TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    currency    TEXT    NOT NULL,
    time_zone   TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_users (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    user_name   TEXT    NOT NULL,
    token_hash  BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, user_name)
);

CREATE TABLE accounts (
    id                    INTEGER PRIMARY KEY,
    tenant_id             INTEGER NOT NULL REFERENCES tenants (id),
    ext_id                TEXT    NOT NULL,
    name                  TEXT    NOT NULL,
    account_type          INTEGER NOT NULL,
    status                INTEGER NOT NULL,
    email                 TEXT    NOT NULL,
    ext_id2               TEXT,
    invoice_name          TEXT,
    phone                 TEXT,
    address               TEXT,
    city                  TEXT,
    state                 TEXT,
    zip                   TEXT,
    country               TEXT,
    account_manager       TEXT,
    contact_person        TEXT,
    due_date_method       INTEGER NOT NULL,
    due_date_days         INTEGER NOT NULL,
    invoice_grouping      INTEGER NOT NULL,
    currency              TEXT    NOT NULL,
    tax_exempt            INTEGER NOT NULL,
    tax_exemption_number  TEXT,
    credit_balance        TEXT    NOT NULL DEFAULT '0',
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    deleted_at            INTEGER,
    version               INTEGER NOT NULL DEFAULT 1,
    -- Deleted accounts keep their ExtID: it is never reused.
    CONSTRAINT accounts_ext_id UNIQUE (tenant_id, ext_id)
);
CREATE INDEX accounts_ext_id2 ON accounts (tenant_id, ext_id2);
CREATE INDEX accounts_updated_at ON accounts (tenant_id, updated_at);

CREATE TABLE plans (
    id                   INTEGER PRIMARY KEY,
    tenant_id            INTEGER NOT NULL REFERENCES tenants (id),
    account_id           INTEGER NOT NULL REFERENCES accounts (id),
    ext_id               TEXT    NOT NULL,
    name                 TEXT,
    start_date           TEXT    NOT NULL,
    end_date             TEXT,
    auto_renew           INTEGER NOT NULL,
    renewal_term_months  INTEGER NOT NULL,
    billing_day          INTEGER,
    currency             TEXT    NOT NULL,
    po_number            TEXT,
    notes                TEXT,
    cancel_date          TEXT,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    deleted_at           INTEGER,
    version              INTEGER NOT NULL DEFAULT 1,
    CONSTRAINT plans_ext_id UNIQUE (tenant_id, ext_id)
);
CREATE INDEX plans_account ON plans (tenant_id, account_id);

CREATE TABLE idempotency_keys (
    tenant_id        INTEGER NOT NULL REFERENCES tenants (id),
    key              TEXT    NOT NULL,
    request_hash     BLOB    NOT NULL,
    created_at       INTEGER NOT NULL,
    -- NULL while the first request with this key is still running.
    response_status  INTEGER,
    response_body    BLOB,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
