-- Lists: TOTAL_COUNT without counting, and an index for every list filter.
--
-- `list_counts` holds, per tenant and list, how many records there are of each
-- status (where a list filters on a stored status: accounts, invoices; else 0) and
-- deletedness. Triggers keep it in the transaction of every insert, delete and
-- change of status or deletion, so any snapshot that sees a record sees it counted:
-- an unfiltered list (or one filtered only by those) sums a few rows instead of
-- counting the tenant's records. Counts are split into 16 shards, picked by the
-- writing transaction's ID: concurrent creates update different rows instead of
-- queueing on one (a row lock is held until commit). A list sums every shard.
-- A shard may hold a negative count (a record counted in one shard, deleted from
-- another); only the sum means anything.
CREATE TABLE list_counts (
    tenant_id  BIGINT   NOT NULL,
    list       TEXT     NOT NULL,
    status     SMALLINT NOT NULL,
    deleted    BOOLEAN  NOT NULL,
    shard      SMALLINT NOT NULL,
    n          BIGINT   NOT NULL,
    PRIMARY KEY (tenant_id, list, status, deleted, shard)
);

-- Inserts and deletes, once per statement, from the rows it inserted or deleted
-- (`changed`): a bill run's multi-row insert of invoices adds one grouped upsert,
-- not one per invoice. TG_ARGV[0] says what the list counts by: 'status_deleted'
-- (accounts), 'deleted' (plans, items) or 'status' (invoices).
CREATE FUNCTION list_counts_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sign     BIGINT   := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;
    in_shard SMALLINT := txid_current() % 16;
BEGIN
    IF TG_ARGV[0] = 'status_deleted' THEN
        INSERT INTO list_counts AS c (tenant_id, list, status, deleted, shard, n)
        SELECT tenant_id, TG_TABLE_NAME, status, deleted_at IS NOT NULL, in_shard, sign * COUNT(*)
        FROM changed GROUP BY tenant_id, status, deleted_at IS NOT NULL ORDER BY 1, 3, 4
        ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_ARGV[0] = 'deleted' THEN
        INSERT INTO list_counts AS c (tenant_id, list, status, deleted, shard, n)
        SELECT tenant_id, TG_TABLE_NAME, 0, deleted_at IS NOT NULL, in_shard, sign * COUNT(*)
        FROM changed GROUP BY tenant_id, deleted_at IS NOT NULL ORDER BY 1, 4
        ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSE
        INSERT INTO list_counts AS c (tenant_id, list, status, deleted, shard, n)
        SELECT tenant_id, TG_TABLE_NAME, status, false, in_shard, sign * COUNT(*)
        FROM changed GROUP BY tenant_id, status ORDER BY 1, 3
        ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$;

-- A record whose status or deletedness changed moves from one count to another
-- (the trigger's WHEN lets only those rows in). Keys in order, so that two
-- transactions that share a shard lock its rows in the same order.
CREATE FUNCTION list_counts_moved() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    in_shard    SMALLINT := txid_current() % 16;
    old_status  SMALLINT := 0;
    new_status  SMALLINT := 0;
    old_deleted BOOLEAN  := false;
    new_deleted BOOLEAN  := false;
BEGIN
    IF TG_ARGV[0] IN ('status_deleted', 'status') THEN
        old_status := OLD.status;
        new_status := NEW.status;
    END IF;
    IF TG_ARGV[0] IN ('status_deleted', 'deleted') THEN
        old_deleted := OLD.deleted_at IS NOT NULL;
        new_deleted := NEW.deleted_at IS NOT NULL;
    END IF;
    INSERT INTO list_counts AS c (tenant_id, list, status, deleted, shard, n)
    SELECT NEW.tenant_id, TG_TABLE_NAME, v.status, v.deleted, in_shard, v.n
    FROM (VALUES (old_status, old_deleted, -1::BIGINT), (new_status, new_deleted, 1::BIGINT))
        AS v (status, deleted, n)
    ORDER BY v.status, v.deleted
    ON CONFLICT (tenant_id, list, status, deleted, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END
$$;

-- Counted from what is there now, with writers held off until the triggers exist.
LOCK TABLE accounts, plans, recurring_items, one_time_items, invoices IN SHARE MODE;

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
SELECT tenant_id, 'invoices', status, false, 0, COUNT(*)
FROM invoices GROUP BY tenant_id, status;

CREATE TRIGGER accounts_counted_in AFTER INSERT ON accounts
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION list_counts_rows('status_deleted');
CREATE TRIGGER accounts_counted_out AFTER DELETE ON accounts
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION list_counts_rows('status_deleted');
CREATE TRIGGER accounts_counted_moved AFTER UPDATE OF status, deleted_at ON accounts
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL))
    EXECUTE FUNCTION list_counts_moved('status_deleted');

CREATE TRIGGER plans_counted_in AFTER INSERT ON plans
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION list_counts_rows('deleted');
CREATE TRIGGER plans_counted_out AFTER DELETE ON plans
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION list_counts_rows('deleted');
CREATE TRIGGER plans_counted_moved AFTER UPDATE OF deleted_at ON plans
    FOR EACH ROW WHEN ((OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL))
    EXECUTE FUNCTION list_counts_moved('deleted');

CREATE TRIGGER recurring_items_counted_in AFTER INSERT ON recurring_items
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION list_counts_rows('deleted');
CREATE TRIGGER recurring_items_counted_out AFTER DELETE ON recurring_items
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION list_counts_rows('deleted');
CREATE TRIGGER recurring_items_counted_moved AFTER UPDATE OF deleted_at ON recurring_items
    FOR EACH ROW WHEN ((OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL))
    EXECUTE FUNCTION list_counts_moved('deleted');

CREATE TRIGGER one_time_items_counted_in AFTER INSERT ON one_time_items
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION list_counts_rows('deleted');
CREATE TRIGGER one_time_items_counted_out AFTER DELETE ON one_time_items
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION list_counts_rows('deleted');
CREATE TRIGGER one_time_items_counted_moved AFTER UPDATE OF deleted_at ON one_time_items
    FOR EACH ROW WHEN ((OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL))
    EXECUTE FUNCTION list_counts_moved('deleted');

CREATE TRIGGER invoices_counted_in AFTER INSERT ON invoices
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION list_counts_rows('status');
CREATE TRIGGER invoices_counted_out AFTER DELETE ON invoices
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION list_counts_rows('status');
CREATE TRIGGER invoices_counted_moved AFTER UPDATE OF status ON invoices
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION list_counts_moved('status');

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
-- (IncludeDeleted=1 lists read `UNIQUE (tenant_id, id)`, which every table has;)
-- one-time items, live, in ID order;
CREATE INDEX one_time_items_live ON one_time_items (tenant_id, deleted_at, id);
-- InvoiceStatus and PlanID (3/119; 1007/119 lists Pending Tax). Only per-plan
-- grouping sets an invoice's plan: the others stay out of that index.
CREATE INDEX invoices_status ON invoices (tenant_id, status, id);
CREATE INDEX invoices_plan ON invoices (tenant_id, plan_id) WHERE plan_id IS NOT NULL;
