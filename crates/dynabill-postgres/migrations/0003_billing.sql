-- Bill runs and invoices: tenant billing settings, invoices and their lines, and
-- the billing ledger that makes billing an item period twice impossible.
-- Types as in 0001/0002: BIGINT microseconds, DATE (selected as text), BOOLEAN,
-- wire codes as SMALLINT. Quantities, prices, fractions *and* amounts are NUMERIC
-- without a fixed scale, so their text comes back exactly as the application
-- wrote it ('54.84' stays '54.84'), as in SQLite.

ALTER TABLE tenants
    ADD COLUMN auto_post          BOOLEAN  NOT NULL DEFAULT TRUE,
    ADD COLUMN invoice_prefix     TEXT     NOT NULL DEFAULT 'INV-',
    ADD COLUMN bill_run_hour      SMALLINT NOT NULL DEFAULT 2,
    ADD COLUMN proration_policy   SMALLINT NOT NULL DEFAULT 1,
    -- 1 half-up, 2 half-even.
    ADD COLUMN rounding           SMALLINT NOT NULL DEFAULT 1,
    -- The last invoice number given. Gap-free: taken by an UPDATE in the posting
    -- transaction, whose row lock makes concurrent posters queue, and undone with it.
    ADD COLUMN invoice_seq        BIGINT   NOT NULL DEFAULT 0,
    -- With `serve --test-clock`: the tenant's "today".
    ADD COLUMN test_today         DATE,
    -- The date of the last scheduled bill run taken by a server.
    ADD COLUMN last_scheduled_run DATE;

-- Bills now move credit balances. Like every other amount they keep exactly the
-- digits written (the store writes them normalised, as SQLite does) rather than a
-- fixed scale of 6; until now every balance was 0.
ALTER TABLE accounts ALTER COLUMN credit_balance TYPE NUMERIC USING trim_scale(credit_balance);

-- Lets lines reference a one-time item together with its tenant.
ALTER TABLE one_time_items ADD CONSTRAINT one_time_items_tenant_id UNIQUE (tenant_id, id);

CREATE TABLE invoices (
    id                 BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id          BIGINT   NOT NULL REFERENCES tenants (id),
    account_id         BIGINT   NOT NULL,
    -- Set with per-plan grouping.
    plan_id            BIGINT,
    invoice_number     TEXT,
    status             SMALLINT NOT NULL,
    invoice_date       DATE     NOT NULL,
    due_date           DATE     NOT NULL,
    currency           TEXT     NOT NULL,
    subtotal           NUMERIC  NOT NULL,
    tax_total          NUMERIC  NOT NULL,
    total              NUMERIC  NOT NULL,
    credit_applied     NUMERIC  NOT NULL,
    credit_added       NUMERIC  NOT NULL,
    amount_due         NUMERIC  NOT NULL,
    po_number          TEXT,
    memo               TEXT,
    paid_date          DATE,
    payment_reference  TEXT,
    cancel_reason      TEXT,
    rebill             BOOLEAN,
    created_at         BIGINT   NOT NULL,
    updated_at         BIGINT   NOT NULL,
    version            BIGINT   NOT NULL DEFAULT 1,
    CONSTRAINT invoices_number UNIQUE (tenant_id, invoice_number),
    -- Lets lines, ledger entries and one-time items reference an invoice with its tenant.
    CONSTRAINT invoices_tenant_id UNIQUE (tenant_id, id),
    -- An invoice's account and plan belong to the invoice's tenant.
    CONSTRAINT invoices_account_fk FOREIGN KEY (tenant_id, account_id)
        REFERENCES accounts (tenant_id, id),
    CONSTRAINT invoices_plan_fk FOREIGN KEY (tenant_id, plan_id)
        REFERENCES plans (tenant_id, id)
);
CREATE INDEX invoices_account ON invoices (tenant_id, account_id);
CREATE INDEX invoices_date ON invoices (tenant_id, invoice_date);

CREATE TABLE invoice_lines (
    id                 BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id          BIGINT   NOT NULL REFERENCES tenants (id),
    invoice_id         BIGINT   NOT NULL,
    line_type          SMALLINT NOT NULL,
    recurring_item_id  BIGINT,
    one_time_item_id   BIGINT,
    item_ext_id        TEXT     NOT NULL,
    product_code       TEXT     NOT NULL,
    description        TEXT     NOT NULL,
    quantity           NUMERIC  NOT NULL,
    unit_price         NUMERIC  NOT NULL,
    discount_percent   NUMERIC  NOT NULL,
    fraction           NUMERIC,
    amount             NUMERIC  NOT NULL,
    service_start      DATE     NOT NULL,
    -- Exclusive; the wire shows the day before.
    service_end        DATE     NOT NULL,
    period_start       DATE,
    period_end         DATE,
    tax_code           TEXT,
    tax_amount         NUMERIC  NOT NULL,
    CONSTRAINT invoice_lines_invoice_fk FOREIGN KEY (tenant_id, invoice_id)
        REFERENCES invoices (tenant_id, id),
    CONSTRAINT invoice_lines_recurring_item_fk FOREIGN KEY (tenant_id, recurring_item_id)
        REFERENCES recurring_items (tenant_id, id),
    CONSTRAINT invoice_lines_one_time_item_fk FOREIGN KEY (tenant_id, one_time_item_id)
        REFERENCES one_time_items (tenant_id, id)
);
CREATE INDEX invoice_lines_invoice ON invoice_lines (invoice_id, id);

-- What was billed or settled per item piece; entry 0 = the piece's base billing,
-- +seq = change seq settled, -seq = a remainder billed. The partial unique index
-- is the last word on "billed once": a second bill run inserting the same entry
-- waits for the first one's transaction and, once that committed, fails, and its
-- whole account transaction with it. Cancelling an invoice with Rebill 1 releases
-- its entries.
CREATE TABLE billing_ledger (
    id            BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     BIGINT   NOT NULL REFERENCES tenants (id),
    item_id       BIGINT   NOT NULL,
    period_start  DATE     NOT NULL,
    entry         BIGINT   NOT NULL,
    period_end    DATE     NOT NULL,
    base_seq      BIGINT   NOT NULL,
    -- NULL for a settlement that needed no line.
    invoice_id    BIGINT,
    released      BOOLEAN  NOT NULL DEFAULT FALSE,
    CONSTRAINT billing_ledger_item_fk FOREIGN KEY (tenant_id, item_id)
        REFERENCES recurring_items (tenant_id, id),
    CONSTRAINT billing_ledger_invoice_fk FOREIGN KEY (tenant_id, invoice_id)
        REFERENCES invoices (tenant_id, id)
);
CREATE UNIQUE INDEX billing_ledger_once ON billing_ledger (item_id, period_start, entry)
    WHERE NOT released;
CREATE INDEX billing_ledger_item ON billing_ledger (tenant_id, item_id);
CREATE INDEX billing_ledger_invoice ON billing_ledger (invoice_id);

ALTER TABLE one_time_items ADD COLUMN invoice_id BIGINT,
    ADD CONSTRAINT one_time_items_invoice_fk FOREIGN KEY (tenant_id, invoice_id)
        REFERENCES invoices (tenant_id, id);
CREATE INDEX one_time_items_invoice ON one_time_items (tenant_id, invoice_id);
