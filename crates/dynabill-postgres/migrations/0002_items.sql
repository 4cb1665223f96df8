-- Recurring items with their history of changes, and one-time items.
-- Types as in 0001: BIGINT microseconds, DATE (selected as text), BOOLEAN, wire
-- codes as SMALLINT. Quantities, prices and discounts are NUMERIC *without* a
-- fixed scale: a value keeps exactly the digits the application wrote, so its text
-- comes back as written ('10' stays '10', '0.5' stays '0.5'), as in SQLite.

-- Lets items reference a plan together with its tenant (see recurring_items_plan_fk).
ALTER TABLE plans ADD CONSTRAINT plans_tenant_id UNIQUE (tenant_id, id);

CREATE TABLE recurring_items (
    id               BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        BIGINT   NOT NULL REFERENCES tenants (id),
    plan_id          BIGINT   NOT NULL,
    ext_id           TEXT     NOT NULL,
    product_code     TEXT     NOT NULL,
    name             TEXT     NOT NULL,
    description      TEXT,
    tax_code         TEXT,
    billing_period   SMALLINT NOT NULL,
    period_count     INTEGER  NOT NULL,
    timing           SMALLINT NOT NULL,
    start_date       DATE     NOT NULL,
    -- Exclusive; NULL runs until cancelled. A cancellation sets it.
    end_date         DATE,
    cancel_date      DATE,
    cancel_credit    BOOLEAN,
    -- Billed up to (exclusive); NULL while never invoiced.
    charged_through  DATE,
    created_at       BIGINT   NOT NULL,
    updated_at       BIGINT   NOT NULL,
    deleted_at       BIGINT,
    version          BIGINT   NOT NULL DEFAULT 1,
    -- Deleted items keep their ExtID: it is never reused.
    CONSTRAINT recurring_items_ext_id UNIQUE (tenant_id, ext_id),
    -- Lets history entries reference an item together with its tenant.
    CONSTRAINT recurring_items_tenant_id UNIQUE (tenant_id, id),
    -- An item's plan belongs to the item's tenant: the schema, not only the code, says so.
    CONSTRAINT recurring_items_plan_fk FOREIGN KEY (tenant_id, plan_id)
        REFERENCES plans (tenant_id, id)
);
CREATE INDEX recurring_items_plan ON recurring_items (tenant_id, plan_id);

-- Append-only: every change to an item's terms or dates, in the order made.
CREATE TABLE recurring_item_changes (
    id                BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         BIGINT   NOT NULL REFERENCES tenants (id),
    item_id           BIGINT   NOT NULL,
    kind              SMALLINT NOT NULL,
    effective_date    DATE     NOT NULL,
    quantity          NUMERIC,
    unit_price        NUMERIC,
    discount_percent  NUMERIC,
    start_date        DATE     NOT NULL,
    end_date          DATE,
    prorate           BOOLEAN,
    credit            BOOLEAN,
    recorded_at       BIGINT   NOT NULL,
    CONSTRAINT recurring_item_changes_item_fk FOREIGN KEY (tenant_id, item_id)
        REFERENCES recurring_items (tenant_id, id)
);
CREATE INDEX recurring_item_changes_item ON recurring_item_changes (tenant_id, item_id, id);

CREATE TABLE one_time_items (
    id            BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     BIGINT   NOT NULL REFERENCES tenants (id),
    plan_id       BIGINT   NOT NULL,
    ext_id        TEXT     NOT NULL,
    product_code  TEXT     NOT NULL,
    name          TEXT     NOT NULL,
    description   TEXT,
    quantity      NUMERIC  NOT NULL,
    -- May be negative: a one-off credit.
    unit_price    NUMERIC  NOT NULL,
    charge_date   DATE     NOT NULL,
    tax_code      TEXT,
    cancelled_at  BIGINT,
    invoiced      BOOLEAN  NOT NULL DEFAULT FALSE,
    created_at    BIGINT   NOT NULL,
    updated_at    BIGINT   NOT NULL,
    deleted_at    BIGINT,
    version       BIGINT   NOT NULL DEFAULT 1,
    CONSTRAINT one_time_items_ext_id UNIQUE (tenant_id, ext_id),
    CONSTRAINT one_time_items_plan_fk FOREIGN KEY (tenant_id, plan_id)
        REFERENCES plans (tenant_id, id)
);
CREATE INDEX one_time_items_plan ON one_time_items (tenant_id, plan_id);
