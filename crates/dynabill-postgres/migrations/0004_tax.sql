-- Taxation: the tenant's tax mode and AvaTax settings, built-in rate tables, the
-- taxes of each invoice line, and the retry state of invoices waiting for AvaTax.
-- Types as in 0001-0003: BIGINT microseconds, wire codes and counts as SMALLINT or
-- INTEGER (selected as BIGINT), amounts and rates as NUMERIC without a fixed scale
-- (selected as text, so '7.250' comes back as written, as in SQLite).

ALTER TABLE tenants
    -- `TaxMode`: 0 none, 1 built-in rates, 2 external service, 3 AvaTax.
    ADD COLUMN tax_mode             SMALLINT NOT NULL DEFAULT 0,
    ADD COLUMN avatax_url           TEXT,
    ADD COLUMN avatax_account_id    TEXT,
    -- A secret: never returned by the API or printed by the command line.
    ADD COLUMN avatax_license_key   TEXT,
    ADD COLUMN avatax_company_code  TEXT;

CREATE TABLE tax_rates (
    id         BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  BIGINT   NOT NULL REFERENCES tenants (id),
    name       TEXT     NOT NULL,
    -- ISO 3166-1 alpha-2, upper case.
    country    TEXT     NOT NULL,
    state      TEXT,
    tax_code   TEXT,
    -- Percent (7.25 means 7.25 %), exactly as written.
    rate       NUMERIC  NOT NULL
);
CREATE INDEX tax_rates_tenant ON tax_rates (tenant_id, id);

-- A JSON array of {description, amount, rate?, jurisdiction?} with the decimals as
-- strings. Kept as TEXT (not JSONB, which would reorder keys and respace it) so
-- that both backends share one row type and read back the text written.
ALTER TABLE invoice_lines ADD COLUMN taxes TEXT NOT NULL DEFAULT '[]';

ALTER TABLE invoices
    -- Why the last attempt to tax it (AvaTax) failed, while it waits in Pending Tax.
    ADD COLUMN tax_error         TEXT,
    ADD COLUMN tax_attempts      INTEGER  NOT NULL DEFAULT 0,
    -- When to try again (microseconds).
    ADD COLUMN next_tax_attempt  BIGINT;
