-- Recurring items with their history of changes, and one-time items.

CREATE TABLE recurring_items (
    id               INTEGER PRIMARY KEY,
    tenant_id        INTEGER NOT NULL REFERENCES tenants (id),
    plan_id          INTEGER NOT NULL REFERENCES plans (id),
    ext_id           TEXT    NOT NULL,
    product_code     TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    description      TEXT,
    tax_code         TEXT,
    billing_period   INTEGER NOT NULL,
    period_count     INTEGER NOT NULL,
    timing           INTEGER NOT NULL,
    start_date       TEXT    NOT NULL,
    -- Exclusive; NULL runs until cancelled. A cancellation sets it.
    end_date         TEXT,
    cancel_date      TEXT,
    cancel_credit    INTEGER,
    -- Billed up to (exclusive); NULL while never invoiced.
    charged_through  TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    deleted_at       INTEGER,
    version          INTEGER NOT NULL DEFAULT 1,
    CONSTRAINT recurring_items_ext_id UNIQUE (tenant_id, ext_id)
);
CREATE INDEX recurring_items_plan ON recurring_items (tenant_id, plan_id);

-- Append-only: every change to an item's terms or dates, in the order made.
CREATE TABLE recurring_item_changes (
    id                INTEGER PRIMARY KEY,
    tenant_id         INTEGER NOT NULL REFERENCES tenants (id),
    item_id           INTEGER NOT NULL REFERENCES recurring_items (id),
    kind              INTEGER NOT NULL,
    effective_date    TEXT    NOT NULL,
    quantity          TEXT,
    unit_price        TEXT,
    discount_percent  TEXT,
    start_date        TEXT    NOT NULL,
    end_date          TEXT,
    prorate           INTEGER,
    credit            INTEGER,
    recorded_at       INTEGER NOT NULL
);
CREATE INDEX recurring_item_changes_item ON recurring_item_changes (item_id, id);

CREATE TABLE one_time_items (
    id            INTEGER PRIMARY KEY,
    tenant_id     INTEGER NOT NULL REFERENCES tenants (id),
    plan_id       INTEGER NOT NULL REFERENCES plans (id),
    ext_id        TEXT    NOT NULL,
    product_code  TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    description   TEXT,
    quantity      TEXT    NOT NULL,
    unit_price    TEXT    NOT NULL,
    charge_date   TEXT    NOT NULL,
    tax_code      TEXT,
    cancelled_at  INTEGER,
    invoiced      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    deleted_at    INTEGER,
    version       INTEGER NOT NULL DEFAULT 1,
    CONSTRAINT one_time_items_ext_id UNIQUE (tenant_id, ext_id)
);
CREATE INDEX one_time_items_plan ON one_time_items (tenant_id, plan_id);
