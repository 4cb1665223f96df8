-- Taxation: the tenant's tax mode and AvaTax settings, built-in rate tables, the
-- taxes of each invoice line, and the retry state of invoices waiting for AvaTax.

ALTER TABLE tenants ADD COLUMN tax_mode INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN avatax_url TEXT;
ALTER TABLE tenants ADD COLUMN avatax_account_id TEXT;
-- A secret: never returned by the API or printed by the command line.
ALTER TABLE tenants ADD COLUMN avatax_license_key TEXT;
ALTER TABLE tenants ADD COLUMN avatax_company_code TEXT;

CREATE TABLE tax_rates (
    id         INTEGER PRIMARY KEY,
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id),
    name       TEXT    NOT NULL,
    country    TEXT    NOT NULL,
    state      TEXT,
    tax_code   TEXT,
    -- Percent, exact decimal text.
    rate       TEXT    NOT NULL
);
CREATE INDEX tax_rates_tenant ON tax_rates (tenant_id, id);

-- JSON array of {description, amount, rate?, jurisdiction?}, decimals as strings.
ALTER TABLE invoice_lines ADD COLUMN taxes TEXT NOT NULL DEFAULT '[]';

ALTER TABLE invoices ADD COLUMN tax_error TEXT;
ALTER TABLE invoices ADD COLUMN tax_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invoices ADD COLUMN next_tax_attempt INTEGER;
