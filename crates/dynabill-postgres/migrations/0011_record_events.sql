-- Events of plans, recurring items, one-time items, invoices and bill runs, written
-- by triggers in the transaction of the change, numbered at commit as the account
-- events of `0010_events.sql` are (ARCHITECTURE.md, "Events"). Each record type has
-- a function `*_record` that gives a record as the JSON its row type reads.
--
-- What is not an event: the bill run's bookkeeping on the records it bills (an
-- item's `charged_through`, a one-time item's `invoiced`), which is what its
-- invoices' events already say, and version or time-of-change bumps alone.

-- The numbering of `0010_events.sql` ran once per event at commit, and every run
-- after the first counted the transaction's (by then numbered) events again,
-- through index entries of rows the first run had already updated: quadratic in
-- the events of one transaction (a bill-run batch writes thousands). The first
-- run for a tenant now marks the transaction (a transaction-local setting), and
-- the others return at once: every event was inserted before commit began.
CREATE OR REPLACE FUNCTION events_numbered() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mark TEXT := 'dynabill.events_numbered_' || NEW.tenant_id;
    n    BIGINT;
    top  BIGINT;
BEGIN
    IF current_setting(mark, true) = 'yes' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config(mark, 'yes', true);
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

-- Renewals of the plan so far: a renewal (and only a renewal) counts one.
ALTER TABLE plans ADD COLUMN renewals BIGINT NOT NULL DEFAULT 0;
-- The day the scheduler found the invoice Posted and past its due date.
ALTER TABLE invoices ADD COLUMN overdue_on DATE;
CREATE INDEX invoices_overdue ON invoices (tenant_id, due_date)
    WHERE status = 3 AND overdue_on IS NULL;

-- A record's state before a change whose event a later statement of the same
-- transaction writes (an item's history entry; an invoice's number, given last
-- when it is posted). Empty outside transactions.
CREATE TABLE event_staging (
    object_type  TEXT   NOT NULL,
    object_id    BIGINT NOT NULL,
    previous     JSONB  NOT NULL,
    PRIMARY KEY (object_type, object_id)
);

-- Writes an event (numbered at commit by `events_numbered`).
CREATE FUNCTION log_event(BIGINT, TEXT, BIGINT, TEXT, BIGINT, TEXT, BIGINT, JSONB, JSONB)
RETURNS void LANGUAGE sql VOLATILE AS $$
    INSERT INTO events (tenant_id, id, type, occurred_at, object_type, object_id,
        object_ext_id, object_version, object, previous)
    VALUES ($1, event_id($3), $2, $3, $4, $5, $6, $7, $8, $9)
$$;

-- Keeps `previous` as the state of a record before a change whose event comes later.
CREATE FUNCTION stage_event(kind TEXT, id BIGINT, previous JSONB)
RETURNS void LANGUAGE sql VOLATILE AS $$
    INSERT INTO event_staging (object_type, object_id, previous) VALUES (kind, id, previous)
    ON CONFLICT (object_type, object_id) DO UPDATE SET previous = EXCLUDED.previous
$$;

-- The state `stage_event` kept of a record, taken out of the staging table.
CREATE FUNCTION staged_event(kind TEXT, id BIGINT)
RETURNS JSONB LANGUAGE sql VOLATILE AS $$
    DELETE FROM event_staging WHERE object_type = kind AND object_id = id RETURNING previous
$$;

-- Plans (`PlanRow`).
CREATE FUNCTION plan_record(p plans) RETURNS JSONB LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(p) - 'tenant_id' || jsonb_build_object('account_ext_id', a.ext_id)
    FROM accounts a WHERE a.id = p.account_id
$$;

-- Deleted, cancelled, renewed or else updated, in that order of precedence.
CREATE FUNCTION plans_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_event(NEW.tenant_id,
        CASE WHEN TG_OP = 'INSERT' THEN 'plan.created'
             WHEN OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN 'plan.deleted'
             WHEN OLD.cancel_date IS NULL AND NEW.cancel_date IS NOT NULL THEN 'plan.cancelled'
             WHEN NEW.renewals > OLD.renewals THEN 'plan.renewed'
             ELSE 'plan.updated' END,
        NEW.updated_at, 'plan', NEW.id, NEW.ext_id, NEW.version, plan_record(NEW),
        CASE WHEN TG_OP = 'UPDATE' THEN plan_record(OLD) END);
    RETURN NULL;
END
$$;

CREATE TRIGGER plans_event_created AFTER INSERT ON plans
FOR EACH ROW EXECUTE FUNCTION plans_event();
CREATE TRIGGER plans_event_changed AFTER UPDATE ON plans
FOR EACH ROW WHEN ((to_jsonb(OLD) - 'version' - 'updated_at') IS DISTINCT FROM
                   (to_jsonb(NEW) - 'version' - 'updated_at'))
EXECUTE FUNCTION plans_event();

-- Recurring items (`RecurringItemRow` and its history of `ItemChangeRow`s). Every
-- change of an item appends a history entry after writing the item's row: the
-- entry's trigger writes the event, typed by the entry's kind; the row's trigger
-- keeps the item as it was. The row's writes set `updated_at`; the bill run's
-- `charged_through` bookkeeping does not, and is no event.
CREATE FUNCTION item_change_record(c recurring_item_changes) RETURNS JSONB
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_jsonb(c) - 'tenant_id' || jsonb_build_object('quantity', c.quantity::text,
        'unit_price', c.unit_price::text, 'discount_percent', c.discount_percent::text)
$$;

CREATE FUNCTION recurring_item_record(r recurring_items) RETURNS JSONB
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_array(
        to_jsonb(r) - 'tenant_id' || jsonb_build_object('plan_ext_id', p.ext_id,
            'account_id', p.account_id, 'plan_billing_day', p.billing_day,
            'plan_auto_renew', p.auto_renew),
        (SELECT COALESCE(jsonb_agg(item_change_record(c) ORDER BY c.id), '[]'::jsonb)
         FROM recurring_item_changes c WHERE c.tenant_id = r.tenant_id AND c.item_id = r.id))
    FROM plans p WHERE p.id = r.plan_id
$$;

CREATE FUNCTION recurring_items_staged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM stage_event('recurring_item', OLD.id, recurring_item_record(OLD));
    RETURN NULL;
END
$$;

CREATE TRIGGER recurring_items_event_staged AFTER UPDATE ON recurring_items
FOR EACH ROW WHEN (OLD.updated_at IS DISTINCT FROM NEW.updated_at)
EXECUTE FUNCTION recurring_items_staged();

CREATE FUNCTION recurring_item_changes_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r recurring_items;
BEGIN
    SELECT * INTO r FROM recurring_items WHERE id = NEW.item_id;
    PERFORM log_event(NEW.tenant_id,
        'recurring_item.' || CASE NEW.kind WHEN 1 THEN 'created' WHEN 2 THEN 'updated'
            WHEN 3 THEN 'upsold' WHEN 4 THEN 'renewed' WHEN 5 THEN 'cancelled'
            WHEN 6 THEN 'dates_changed' ELSE 'deleted' END,
        r.updated_at, 'recurring_item', r.id, r.ext_id, r.version, recurring_item_record(r),
        staged_event('recurring_item', r.id));
    RETURN NULL;
END
$$;

CREATE TRIGGER recurring_item_changes_event AFTER INSERT ON recurring_item_changes
FOR EACH ROW EXECUTE FUNCTION recurring_item_changes_event();

-- One-time items (`OneTimeItemRow`).
CREATE FUNCTION one_time_item_record(o one_time_items) RETURNS JSONB LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(o) - 'tenant_id' || jsonb_build_object('plan_ext_id', p.ext_id,
        'account_id', p.account_id, 'quantity', o.quantity::text,
        'unit_price', o.unit_price::text)
    FROM plans p WHERE p.id = o.plan_id
$$;

CREATE FUNCTION one_time_items_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_event(NEW.tenant_id,
        CASE WHEN TG_OP = 'INSERT' THEN 'one_time_item.created'
             WHEN OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL
                 THEN 'one_time_item.deleted'
             ELSE 'one_time_item.updated' END,
        NEW.updated_at, 'one_time_item', NEW.id, NEW.ext_id, NEW.version,
        one_time_item_record(NEW),
        CASE WHEN TG_OP = 'UPDATE' THEN one_time_item_record(OLD) END);
    RETURN NULL;
END
$$;

CREATE TRIGGER one_time_items_event_created AFTER INSERT ON one_time_items
FOR EACH ROW EXECUTE FUNCTION one_time_items_event();
CREATE TRIGGER one_time_items_event_changed AFTER UPDATE ON one_time_items
FOR EACH ROW WHEN (
    (to_jsonb(OLD) - 'version' - 'updated_at' - 'invoiced' - 'invoice_id') IS DISTINCT FROM
    (to_jsonb(NEW) - 'version' - 'updated_at' - 'invoiced' - 'invoice_id'))
EXECUTE FUNCTION one_time_items_event();

-- Invoices (`InvoiceRow`, without lines: as the invoice's `GET` shows it).
CREATE FUNCTION invoice_record(i invoices) RETURNS JSONB LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(i) - 'tenant_id' || jsonb_build_object('account_ext_id', a.ext_id,
        'subtotal', i.subtotal::text, 'tax_total', i.tax_total::text, 'total', i.total::text,
        'credit_applied', i.credit_applied::text, 'credit_added', i.credit_added::text,
        'amount_due', i.amount_due::text)
    FROM accounts a WHERE a.id = i.account_id
$$;

-- `invoice.created`, then what the invoice was created as when it is more than a
-- draft (a bill run's invoices are born Posted, or Pending Tax). Posting sets the
-- status first and the number last (see `number_invoice`): the status change keeps
-- the invoice as it was, and the number writes `invoice.posted`. Otherwise:
-- overdue, a status reached (Pending Tax, Paid, Cancelled), a failed tax attempt,
-- or else updated.
CREATE FUNCTION invoices_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    object JSONB := invoice_record(NEW);
    kind   TEXT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM log_event(NEW.tenant_id, 'invoice.created', NEW.updated_at, 'invoice', NEW.id,
            NULL, NEW.version, object, NULL);
        IF NEW.status IN (2, 3) THEN
            PERFORM log_event(NEW.tenant_id,
                CASE NEW.status WHEN 3 THEN 'invoice.posted' ELSE 'invoice.tax_pending' END,
                NEW.updated_at, 'invoice', NEW.id, NULL, NEW.version, object, NULL);
        END IF;
        RETURN NULL;
    END IF;
    IF NEW.status = 3 AND NEW.invoice_number IS NULL THEN
        PERFORM stage_event('invoice', OLD.id, invoice_record(OLD));
        RETURN NULL;
    END IF;
    kind := CASE
        WHEN OLD.overdue_on IS NULL AND NEW.overdue_on IS NOT NULL THEN 'invoice.overdue'
        WHEN OLD.invoice_number IS NULL AND NEW.invoice_number IS NOT NULL THEN 'invoice.posted'
        WHEN OLD.status IS DISTINCT FROM NEW.status THEN
            CASE NEW.status WHEN 2 THEN 'invoice.tax_pending' WHEN 4 THEN 'invoice.paid'
                WHEN 5 THEN 'invoice.cancelled' ELSE 'invoice.updated' END
        WHEN NEW.tax_error IS NOT NULL AND OLD.tax_attempts IS DISTINCT FROM NEW.tax_attempts
            THEN 'invoice.tax_failed'
        ELSE 'invoice.updated' END;
    PERFORM log_event(NEW.tenant_id, kind, NEW.updated_at, 'invoice', NEW.id, NULL,
        NEW.version, object,
        CASE WHEN kind = 'invoice.posted'
             THEN COALESCE(staged_event('invoice', NEW.id), invoice_record(OLD))
             ELSE invoice_record(OLD) END);
    RETURN NULL;
END
$$;

CREATE TRIGGER invoices_event_created AFTER INSERT ON invoices
FOR EACH ROW EXECUTE FUNCTION invoices_event();
CREATE TRIGGER invoices_event_changed AFTER UPDATE ON invoices
FOR EACH ROW WHEN ((to_jsonb(OLD) - 'version' - 'updated_at' - 'next_tax_attempt') IS DISTINCT FROM
                   (to_jsonb(NEW) - 'version' - 'updated_at' - 'next_tax_attempt'))
EXECUTE FUNCTION invoices_event();

-- A bill run that finished (not one abandoned for a later run to redo), with what
-- its batches did.
CREATE FUNCTION bill_runs_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_event(NEW.tenant_id, 'bill_run.completed', NEW.finished_at, 'bill_run',
        NEW.id, NULL, 1,
        (SELECT jsonb_build_array(NEW.id, NEW.run_date, NEW.started_at, NEW.finished_at,
                    COUNT(*), COALESCE(SUM(b.accounts), 0), COALESCE(SUM(b.invoices), 0),
                    COALESCE(SUM(b.claims), 0) - COUNT(*))
         FROM bill_run_batches b WHERE b.run_id = NEW.id),
        NULL);
    RETURN NULL;
END
$$;

CREATE TRIGGER bill_runs_event_completed AFTER UPDATE ON bill_runs
FOR EACH ROW WHEN (OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL AND NOT NEW.abandoned)
EXECUTE FUNCTION bill_runs_event();
