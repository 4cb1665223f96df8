-- Tenants, API users, accounts, account plans, idempotency keys.
-- Timestamps are BIGINT microseconds since the Unix epoch (UTC), as in SQLite, so
-- both backends share one row type; dates are DATE (selected as 'YYYY-MM-DD' text);
-- amounts are exact NUMERIC (selected as text); wire codes and small counts are
-- SMALLINT or INTEGER (selected as BIGINT). Every tenant-owned table carries
-- tenant_id and every lookup names it.

CREATE TABLE tenants (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_key     TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    currency    TEXT    NOT NULL,
    time_zone   TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE api_users (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   BIGINT  NOT NULL REFERENCES tenants (id),
    user_name   TEXT    NOT NULL,
    token_hash  BYTEA   NOT NULL,
    created_at  BIGINT  NOT NULL,
    CONSTRAINT api_users_user_name UNIQUE (tenant_id, user_name)
);

CREATE TABLE accounts (
    id                    BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id             BIGINT   NOT NULL REFERENCES tenants (id),
    ext_id                TEXT     NOT NULL,
    name                  TEXT     NOT NULL,
    account_type          SMALLINT NOT NULL,
    status                SMALLINT NOT NULL,
    email                 TEXT     NOT NULL,
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
    due_date_method       SMALLINT NOT NULL,
    due_date_days         INTEGER  NOT NULL,
    invoice_grouping      SMALLINT NOT NULL,
    currency              TEXT     NOT NULL,
    tax_exempt            BOOLEAN  NOT NULL,
    tax_exemption_number  TEXT,
    credit_balance        NUMERIC(24, 6) NOT NULL DEFAULT 0,
    created_at            BIGINT   NOT NULL,
    updated_at            BIGINT   NOT NULL,
    deleted_at            BIGINT,
    version               BIGINT   NOT NULL DEFAULT 1,
    -- Deleted accounts keep their ExtID: it is never reused.
    CONSTRAINT accounts_ext_id UNIQUE (tenant_id, ext_id),
    -- Lets plans reference an account together with its tenant (see plans_account_fk).
    CONSTRAINT accounts_tenant_id UNIQUE (tenant_id, id)
);
CREATE INDEX accounts_ext_id2 ON accounts (tenant_id, ext_id2);
CREATE INDEX accounts_updated_at ON accounts (tenant_id, updated_at);

CREATE TABLE plans (
    id                   BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id            BIGINT   NOT NULL REFERENCES tenants (id),
    account_id           BIGINT   NOT NULL,
    ext_id               TEXT     NOT NULL,
    name                 TEXT,
    start_date           DATE     NOT NULL,
    end_date             DATE,
    auto_renew           BOOLEAN  NOT NULL,
    renewal_term_months  INTEGER  NOT NULL,
    billing_day          SMALLINT,
    currency             TEXT     NOT NULL,
    po_number            TEXT,
    notes                TEXT,
    cancel_date          DATE,
    created_at           BIGINT   NOT NULL,
    updated_at           BIGINT   NOT NULL,
    deleted_at           BIGINT,
    version              BIGINT   NOT NULL DEFAULT 1,
    CONSTRAINT plans_ext_id UNIQUE (tenant_id, ext_id),
    -- A plan's account belongs to the plan's tenant: the schema, not only the code, says so.
    CONSTRAINT plans_account_fk FOREIGN KEY (tenant_id, account_id)
        REFERENCES accounts (tenant_id, id)
);
CREATE INDEX plans_account ON plans (tenant_id, account_id);

CREATE TABLE idempotency_keys (
    tenant_id        BIGINT   NOT NULL REFERENCES tenants (id),
    key              TEXT     NOT NULL,
    request_hash     BYTEA    NOT NULL,
    created_at       BIGINT   NOT NULL,
    -- NULL while the first request with this key is still running.
    response_status  INTEGER,
    response_body    BYTEA,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
