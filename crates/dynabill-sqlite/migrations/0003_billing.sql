-- Bill runs and invoices: tenant billing settings, invoices and their lines, and
-- the billing ledger that makes billing an item period twice impossible.

ALTER TABLE tenants ADD COLUMN auto_post INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tenants ADD COLUMN invoice_prefix TEXT NOT NULL DEFAULT 'INV-';
ALTER TABLE tenants ADD COLUMN bill_run_hour INTEGER NOT NULL DEFAULT 2;
ALTER TABLE tenants ADD COLUMN proration_policy INTEGER NOT NULL DEFAULT 1;
-- 1 half-up, 2 half-even.
ALTER TABLE tenants ADD COLUMN rounding INTEGER NOT NULL DEFAULT 1;
-- The last invoice number given (gap-free: taken in the posting transaction).
ALTER TABLE tenants ADD COLUMN invoice_seq INTEGER NOT NULL DEFAULT 0;
-- With `serve --test-clock`: the tenant's "today".
ALTER TABLE tenants ADD COLUMN test_today TEXT;
-- The date of the last scheduled bill run taken by a server.
ALTER TABLE tenants ADD COLUMN last_scheduled_run TEXT;

CREATE TABLE invoices (
    id                 INTEGER PRIMARY KEY,
    tenant_id          INTEGER NOT NULL REFERENCES tenants (id),
    account_id         INTEGER NOT NULL REFERENCES accounts (id),
    plan_id            INTEGER REFERENCES plans (id),
    invoice_number     TEXT,
    status             INTEGER NOT NULL,
    invoice_date       TEXT    NOT NULL,
    due_date           TEXT    NOT NULL,
    currency           TEXT    NOT NULL,
    subtotal           TEXT    NOT NULL,
    tax_total          TEXT    NOT NULL,
    total              TEXT    NOT NULL,
    credit_applied     TEXT    NOT NULL,
    credit_added       TEXT    NOT NULL,
    amount_due         TEXT    NOT NULL,
    po_number          TEXT,
    memo               TEXT,
    paid_date          TEXT,
    payment_reference  TEXT,
    cancel_reason      TEXT,
    rebill             INTEGER,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    version            INTEGER NOT NULL DEFAULT 1,
    CONSTRAINT invoices_number UNIQUE (tenant_id, invoice_number)
);
CREATE INDEX invoices_account ON invoices (tenant_id, account_id);
CREATE INDEX invoices_date ON invoices (tenant_id, invoice_date);

CREATE TABLE invoice_lines (
    id                 INTEGER PRIMARY KEY,
    tenant_id          INTEGER NOT NULL REFERENCES tenants (id),
    invoice_id         INTEGER NOT NULL REFERENCES invoices (id),
    line_type          INTEGER NOT NULL,
    recurring_item_id  INTEGER REFERENCES recurring_items (id),
    one_time_item_id   INTEGER REFERENCES one_time_items (id),
    item_ext_id        TEXT    NOT NULL,
    product_code       TEXT    NOT NULL,
    description        TEXT    NOT NULL,
    quantity           TEXT    NOT NULL,
    unit_price         TEXT    NOT NULL,
    discount_percent   TEXT    NOT NULL,
    fraction           TEXT,
    amount             TEXT    NOT NULL,
    service_start      TEXT    NOT NULL,
    -- Exclusive; the wire shows the day before.
    service_end        TEXT    NOT NULL,
    period_start       TEXT,
    period_end         TEXT,
    tax_code           TEXT,
    tax_amount         TEXT    NOT NULL
);
CREATE INDEX invoice_lines_invoice ON invoice_lines (invoice_id, id);

-- What was billed or settled per item piece; entry 0 = the piece's base billing,
-- +seq = change seq settled, -seq = a remainder billed. The partial unique index
-- is the last word on "billed once": a second bill run inserting the same entry
-- fails, and its whole account transaction with it. Cancelling an invoice with
-- Rebill 1 releases its entries.
CREATE TABLE billing_ledger (
    id            INTEGER PRIMARY KEY,
    tenant_id     INTEGER NOT NULL REFERENCES tenants (id),
    item_id       INTEGER NOT NULL REFERENCES recurring_items (id),
    period_start  TEXT    NOT NULL,
    entry         INTEGER NOT NULL,
    period_end    TEXT    NOT NULL,
    base_seq      INTEGER NOT NULL,
    invoice_id    INTEGER REFERENCES invoices (id),
    released      INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX billing_ledger_once ON billing_ledger (item_id, period_start, entry) WHERE released = 0;
CREATE INDEX billing_ledger_item ON billing_ledger (tenant_id, item_id);
CREATE INDEX billing_ledger_invoice ON billing_ledger (invoice_id);

ALTER TABLE one_time_items ADD COLUMN invoice_id INTEGER REFERENCES invoices (id);
