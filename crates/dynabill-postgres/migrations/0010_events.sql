-- Events: what happened to a tenant's records, written by triggers in the
-- transaction of the change itself, whichever door, command or bill run made it: a
-- change rolled back leaves no event, a committed change always has its event (a
-- transactional outbox). ARCHITECTURE.md, "Events".
--
-- `sequence` numbers a tenant's events 1, 2, 3... without gaps, in commit order.
-- Transactions run side by side, so an event is written without its number and a
-- deferred trigger numbers the transaction's events at commit, under the lock of
-- the tenant's `event_sequences` row: that lock is held only from there to the end
-- of the commit, and the next transaction's numbers follow. `object` is the record
-- after the change, `previous` the record before it (for updates), both as JSON of
-- the record's row: the store reads them back into records, and the REST face
-- shows them in its shapes.
CREATE TABLE event_sequences (
    tenant_id  BIGINT PRIMARY KEY,
    last       BIGINT NOT NULL
);

CREATE TABLE events (
    key             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       BIGINT  NOT NULL,
    sequence        BIGINT,
    id              TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    occurred_at     BIGINT  NOT NULL,
    object_type     TEXT    NOT NULL,
    object_id       BIGINT  NOT NULL,
    object_ext_id   TEXT,
    object_version  BIGINT  NOT NULL,
    object          JSONB   NOT NULL,
    previous        JSONB,
    CONSTRAINT events_sequence UNIQUE (tenant_id, sequence),
    CONSTRAINT events_id UNIQUE (id)
);
CREATE INDEX events_type ON events (tenant_id, type, sequence);
CREATE INDEX events_object ON events (tenant_id, object_type, object_id, sequence);
CREATE INDEX events_occurred_at ON events (tenant_id, occurred_at);
-- The events of open transactions, not yet numbered.
CREATE INDEX events_unnumbered ON events (tenant_id, key) WHERE sequence IS NULL;

-- `evt_` and a UUIDv7 whose time is `at` (microseconds since the epoch).
CREATE FUNCTION event_id(at BIGINT) RETURNS TEXT LANGUAGE sql VOLATILE AS $$
    SELECT 'evt_' || substr(t, 1, 8) || '-' || substr(t, 9, 4) || '-7' || substr(r, 1, 3)
        || '-' || substr('89ab', 1 + floor(random() * 4)::int, 1) || substr(r, 4, 3)
        || '-' || substr(r, 7, 12)
    FROM (SELECT lpad(to_hex(at / 1000), 12, '0') AS t,
                 md5(random()::text || clock_timestamp()::text) AS r) u
$$;

-- Numbers the transaction's events of NEW's tenant, in the order they were
-- written; the first of them to reach commit numbers them all.
CREATE FUNCTION events_numbered() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n   BIGINT;
    top BIGINT;
BEGIN
    SELECT COUNT(*) INTO n FROM events WHERE tenant_id = NEW.tenant_id AND sequence IS NULL;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO event_sequences AS s (tenant_id, last) VALUES (NEW.tenant_id, n)
    ON CONFLICT (tenant_id) DO UPDATE SET last = s.last + EXCLUDED.last
    RETURNING last INTO top;
    UPDATE events e SET sequence = top - n + o.rn
    FROM (SELECT key, row_number() OVER (ORDER BY key) AS rn
          FROM events WHERE tenant_id = NEW.tenant_id AND sequence IS NULL) o
    WHERE e.key = o.key;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER events_numbered AFTER INSERT ON events
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION events_numbered();

-- An account as JSON, the way `AccountRow` reads it.
CREATE FUNCTION account_json(a accounts) RETURNS JSONB LANGUAGE sql IMMUTABLE AS $$
    SELECT to_jsonb(a) - 'tenant_id' || jsonb_build_object('credit_balance', a.credit_balance::text)
$$;

-- A new account is `account.created`; a change of anything but the version and the
-- time of change is `account.deleted` when it deleted the account, else
-- `account.updated`.
CREATE FUNCTION accounts_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (tenant_id, id, type, occurred_at, object_type, object_id,
        object_ext_id, object_version, object, previous)
    VALUES (NEW.tenant_id, event_id(NEW.updated_at),
        CASE WHEN TG_OP = 'INSERT' THEN 'account.created'
             WHEN OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN 'account.deleted'
             ELSE 'account.updated' END,
        NEW.updated_at, 'account', NEW.id, NEW.ext_id, NEW.version, account_json(NEW),
        CASE WHEN TG_OP = 'UPDATE' THEN account_json(OLD) END);
    RETURN NULL;
END
$$;

CREATE TRIGGER accounts_event_created AFTER INSERT ON accounts
FOR EACH ROW EXECUTE FUNCTION accounts_event();
CREATE TRIGGER accounts_event_changed AFTER UPDATE ON accounts
FOR EACH ROW WHEN ((to_jsonb(OLD) - 'version' - 'updated_at') IS DISTINCT FROM
                   (to_jsonb(NEW) - 'version' - 'updated_at'))
EXECUTE FUNCTION accounts_event();
