-- Lists: TOTAL_COUNT without counting, and an index for every list filter.
--
-- `list_counts` holds, per tenant and list, how many records there are of each
-- status (where a list filters on a stored status: accounts, invoices; else 0) and
-- deletedness. Triggers keep it in the transaction (the statement, even) of every
-- insert, delete and change of status or deletion, so any snapshot that sees a
-- record sees it counted: an unfiltered list (or one filtered only by those) sums a
-- few rows instead of counting the tenant's records. SQLite has one writer, so one
-- shard (0); PostgreSQL spreads its counts over 16 to keep concurrent creates apart.
CREATE TABLE list_counts (
    tenant_id  INTEGER NOT NULL,
    list       TEXT    NOT NULL,
    status     INTEGER NOT NULL,
    deleted    INTEGER NOT NULL,
    shard      INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, list, status, deleted, shard)
) WITHOUT ROWID;

-- Counted from what is there now (a migration runs under the write lock).
INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
SELECT tenant_id, 'accounts', status, deleted_at IS NOT NULL, 0, COUNT(*)
FROM accounts GROUP BY tenant_id, status, deleted_at IS NOT NULL;
INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
SELECT tenant_id, 'plans', 0, deleted_at IS NOT NULL, 0, COUNT(*)
FROM plans GROUP BY tenant_id, deleted_at IS NOT NULL;
INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
SELECT tenant_id, 'recurring_items', 0, deleted_at IS NOT NULL, 0, COUNT(*)
FROM recurring_items GROUP BY tenant_id, deleted_at IS NOT NULL;
INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
SELECT tenant_id, 'one_time_items', 0, deleted_at IS NOT NULL, 0, COUNT(*)
FROM one_time_items GROUP BY tenant_id, deleted_at IS NOT NULL;
INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
SELECT tenant_id, 'invoices', status, 0, 0, COUNT(*)
FROM invoices GROUP BY tenant_id, status;

CREATE TRIGGER accounts_counted_in AFTER INSERT ON accounts BEGIN
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (NEW.tenant_id, 'accounts', NEW.status, NEW.deleted_at IS NOT NULL, 0, 1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER accounts_counted_out AFTER DELETE ON accounts BEGIN
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (OLD.tenant_id, 'accounts', OLD.status, OLD.deleted_at IS NOT NULL, 0, -1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER accounts_counted_moved AFTER UPDATE OF status, deleted_at ON accounts
WHEN OLD.status IS NOT NEW.status OR (OLD.deleted_at IS NULL) IS NOT (NEW.deleted_at IS NULL) BEGIN
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (OLD.tenant_id, 'accounts', OLD.status, OLD.deleted_at IS NOT NULL, 0, -1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (NEW.tenant_id, 'accounts', NEW.status, NEW.deleted_at IS NOT NULL, 0, 1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER plans_counted_in AFTER INSERT ON plans BEGIN
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (NEW.tenant_id, 'plans', 0, NEW.deleted_at IS NOT NULL, 0, 1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER plans_counted_out AFTER DELETE ON plans BEGIN
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (OLD.tenant_id, 'plans', 0, OLD.deleted_at IS NOT NULL, 0, -1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER plans_counted_moved AFTER UPDATE OF deleted_at ON plans
WHEN (OLD.deleted_at IS NULL) IS NOT (NEW.deleted_at IS NULL) BEGIN
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (OLD.tenant_id, 'plans', 0, OLD.deleted_at IS NOT NULL, 0, -1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (NEW.tenant_id, 'plans', 0, NEW.deleted_at IS NOT NULL, 0, 1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER recurring_items_counted_in AFTER INSERT ON recurring_items BEGIN
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (NEW.tenant_id, 'recurring_items', 0, NEW.deleted_at IS NOT NULL, 0, 1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER recurring_items_counted_out AFTER DELETE ON recurring_items BEGIN
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (OLD.tenant_id, 'recurring_items', 0, OLD.deleted_at IS NOT NULL, 0, -1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER recurring_items_counted_moved AFTER UPDATE OF deleted_at ON recurring_items
WHEN (OLD.deleted_at IS NULL) IS NOT (NEW.deleted_at IS NULL) BEGIN
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (OLD.tenant_id, 'recurring_items', 0, OLD.deleted_at IS NOT NULL, 0, -1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (NEW.tenant_id, 'recurring_items', 0, NEW.deleted_at IS NOT NULL, 0, 1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER one_time_items_counted_in AFTER INSERT ON one_time_items BEGIN
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (NEW.tenant_id, 'one_time_items', 0, NEW.deleted_at IS NOT NULL, 0, 1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER one_time_items_counted_out AFTER DELETE ON one_time_items BEGIN
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (OLD.tenant_id, 'one_time_items', 0, OLD.deleted_at IS NOT NULL, 0, -1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER one_time_items_counted_moved AFTER UPDATE OF deleted_at ON one_time_items
WHEN (OLD.deleted_at IS NULL) IS NOT (NEW.deleted_at IS NULL) BEGIN
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (OLD.tenant_id, 'one_time_items', 0, OLD.deleted_at IS NOT NULL, 0, -1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (NEW.tenant_id, 'one_time_items', 0, NEW.deleted_at IS NOT NULL, 0, 1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER invoices_counted_in AFTER INSERT ON invoices BEGIN
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (NEW.tenant_id, 'invoices', NEW.status, 0, 0, 1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER invoices_counted_out AFTER DELETE ON invoices BEGIN
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (OLD.tenant_id, 'invoices', OLD.status, 0, 0, -1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER invoices_counted_moved AFTER UPDATE OF status ON invoices
WHEN OLD.status IS NOT NEW.status BEGIN
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (OLD.tenant_id, 'invoices', OLD.status, 0, 0, -1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
    INSERT INTO list_counts (tenant_id, list, status, deleted, shard, n)
    VALUES (NEW.tenant_id, 'invoices', NEW.status, 0, 0, 1)
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = n + excluded.n;
END;

-- Every list filter an index (a filtered list's page is an ordered range of it, its
-- count reads only the index where it can):
-- AccountStatus (3/69), with or without deleted accounts;
CREATE INDEX accounts_status ON accounts (tenant_id, status, deleted_at, id);
-- ExtID2 and UpdatedSince (3/69) among live accounts, so that a page of them is
-- read through them (and, for ExtID2, in ID order) rather than by walking every
-- live account from the cursor;
DROP INDEX accounts_ext_id2;
CREATE INDEX accounts_ext_id2 ON accounts (tenant_id, ext_id2, deleted_at, id);
DROP INDEX accounts_updated_at;
CREATE INDEX accounts_updated_at ON accounts (tenant_id, updated_at, deleted_at);
-- IncludeDeleted=1 on the lists whose live index leads with deleted_at;
CREATE INDEX accounts_tenant ON accounts (tenant_id, id);
CREATE INDEX plans_tenant ON plans (tenant_id, id);
CREATE INDEX recurring_items_tenant ON recurring_items (tenant_id, id);
CREATE INDEX one_time_items_live ON one_time_items (tenant_id, deleted_at, id);
CREATE INDEX one_time_items_tenant ON one_time_items (tenant_id, id);
-- InvoiceStatus and PlanID (3/119; 1007/119 lists Pending Tax). Only per-plan
-- grouping sets an invoice's plan: the others stay out of that index.
CREATE INDEX invoices_status ON invoices (tenant_id, status, id);
CREATE INDEX invoices_plan ON invoices (tenant_id, plan_id) WHERE plan_id IS NOT NULL;
