-- Events: what happened to a tenant's records, written by triggers in the
-- statement (and so the transaction) of the change itself, whichever door, command
-- or bill run made it: a change rolled back leaves no event, a committed change
-- always has its event (a transactional outbox). ARCHITECTURE.md, "Events".
--
-- `sequence` numbers a tenant's events 1, 2, 3... without gaps in commit order:
-- SQLite has one writer, so the number (the tenant's last, read from the index
-- `events_sequence`, plus one) is taken when the event is written, and a
-- rolled-back transaction gives its numbers back with everything else.
-- `object` is the record after the change, `previous` the record before it (for
-- updates), both as a JSON array of the record's columns in the order of its row
-- type (`AccountRow`): half the bytes of an object with its keys, and an event is
-- written with every change. The store reads them back into records, and the REST
-- face shows them in its shapes.

CREATE TABLE events (
    tenant_id       INTEGER NOT NULL,
    sequence        INTEGER NOT NULL,
    id              TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    occurred_at     INTEGER NOT NULL,
    object_type     TEXT    NOT NULL,
    object_id       INTEGER NOT NULL,
    object_ext_id   TEXT,
    object_version  INTEGER NOT NULL,
    object          TEXT    NOT NULL,
    previous        TEXT,
    CONSTRAINT events_sequence UNIQUE (tenant_id, sequence),
    CONSTRAINT events_id UNIQUE (id)
);
CREATE INDEX events_type ON events (tenant_id, type, sequence);
CREATE INDEX events_object ON events (tenant_id, object_type, object_id, sequence);
CREATE INDEX events_occurred_at ON events (tenant_id, occurred_at);

-- An account as the JSON array `AccountRow` reads (SQLite has no row-to-JSON:
-- each trigger lists the columns, in the row type's order).
CREATE TRIGGER accounts_event_created AFTER INSERT ON accounts BEGIN
    INSERT INTO events (tenant_id, sequence, id, type, occurred_at, object_type, object_id,
        object_ext_id, object_version, object, previous)
    SELECT NEW.tenant_id, s.next,
        'evt_' || substr(u.t, 1, 8) || '-' || substr(u.t, 9, 4) || '-7' || substr(u.r, 1, 3)
            || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(u.r, 4, 3)
            || '-' || substr(u.r, 7, 12),
        'account.created', NEW.updated_at, 'account', NEW.id, NEW.ext_id, NEW.version,
        json_array(NEW.id, NEW.ext_id, NEW.name, NEW.account_type, NEW.status, NEW.email,
            NEW.ext_id2, NEW.invoice_name, NEW.phone, NEW.address, NEW.city, NEW.state,
            NEW.zip, NEW.country, NEW.account_manager, NEW.contact_person,
            NEW.due_date_method, NEW.due_date_days, NEW.invoice_grouping, NEW.currency,
            json(iif(NEW.tax_exempt, 'true', 'false')), NEW.tax_exemption_number,
            CAST(NEW.credit_balance AS TEXT), NEW.created_at, NEW.updated_at,
            NEW.deleted_at, NEW.version),
        NULL
    FROM (SELECT COALESCE(MAX(sequence), 0) + 1 AS next FROM events
          WHERE tenant_id = NEW.tenant_id) s,
        (SELECT printf('%012x', NEW.updated_at / 1000) AS t, lower(hex(randomblob(9))) AS r) u;
END;

-- A change of anything but the version and the time of change: `account.deleted`
-- when it deleted the account, else `account.updated`.
CREATE TRIGGER accounts_event_changed AFTER UPDATE ON accounts
WHEN OLD.ext_id IS NOT NEW.ext_id OR OLD.name IS NOT NEW.name
    OR OLD.account_type IS NOT NEW.account_type OR OLD.status IS NOT NEW.status
    OR OLD.email IS NOT NEW.email OR OLD.ext_id2 IS NOT NEW.ext_id2
    OR OLD.invoice_name IS NOT NEW.invoice_name OR OLD.phone IS NOT NEW.phone
    OR OLD.address IS NOT NEW.address OR OLD.city IS NOT NEW.city
    OR OLD.state IS NOT NEW.state OR OLD.zip IS NOT NEW.zip OR OLD.country IS NOT NEW.country
    OR OLD.account_manager IS NOT NEW.account_manager
    OR OLD.contact_person IS NOT NEW.contact_person
    OR OLD.due_date_method IS NOT NEW.due_date_method
    OR OLD.due_date_days IS NOT NEW.due_date_days
    OR OLD.invoice_grouping IS NOT NEW.invoice_grouping OR OLD.currency IS NOT NEW.currency
    OR OLD.tax_exempt IS NOT NEW.tax_exempt
    OR OLD.tax_exemption_number IS NOT NEW.tax_exemption_number
    OR OLD.credit_balance IS NOT NEW.credit_balance OR OLD.deleted_at IS NOT NEW.deleted_at
BEGIN
    INSERT INTO events (tenant_id, sequence, id, type, occurred_at, object_type, object_id,
        object_ext_id, object_version, object, previous)
    SELECT NEW.tenant_id, s.next,
        'evt_' || substr(u.t, 1, 8) || '-' || substr(u.t, 9, 4) || '-7' || substr(u.r, 1, 3)
            || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(u.r, 4, 3)
            || '-' || substr(u.r, 7, 12),
        iif(OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL,
            'account.deleted', 'account.updated'),
        NEW.updated_at, 'account', NEW.id, NEW.ext_id, NEW.version,
        json_array(NEW.id, NEW.ext_id, NEW.name, NEW.account_type, NEW.status, NEW.email,
            NEW.ext_id2, NEW.invoice_name, NEW.phone, NEW.address, NEW.city, NEW.state,
            NEW.zip, NEW.country, NEW.account_manager, NEW.contact_person,
            NEW.due_date_method, NEW.due_date_days, NEW.invoice_grouping, NEW.currency,
            json(iif(NEW.tax_exempt, 'true', 'false')), NEW.tax_exemption_number,
            CAST(NEW.credit_balance AS TEXT), NEW.created_at, NEW.updated_at,
            NEW.deleted_at, NEW.version),
        json_array(OLD.id, OLD.ext_id, OLD.name, OLD.account_type, OLD.status, OLD.email,
            OLD.ext_id2, OLD.invoice_name, OLD.phone, OLD.address, OLD.city, OLD.state,
            OLD.zip, OLD.country, OLD.account_manager, OLD.contact_person,
            OLD.due_date_method, OLD.due_date_days, OLD.invoice_grouping, OLD.currency,
            json(iif(OLD.tax_exempt, 'true', 'false')), OLD.tax_exemption_number,
            CAST(OLD.credit_balance AS TEXT), OLD.created_at, OLD.updated_at,
            OLD.deleted_at, OLD.version)
    FROM (SELECT COALESCE(MAX(sequence), 0) + 1 AS next FROM events
          WHERE tenant_id = NEW.tenant_id) s,
        (SELECT printf('%012x', NEW.updated_at / 1000) AS t, lower(hex(randomblob(9))) AS r) u;
END;
