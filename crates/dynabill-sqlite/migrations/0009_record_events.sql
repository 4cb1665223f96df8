-- Events of plans, recurring items, one-time items, invoices and bill runs, written
-- by triggers in the statement of the change, as the account events of
-- `0008_events.sql` are (ARCHITECTURE.md, "Events"). Each record type has a view
-- `*_records` that gives a record as the JSON its row type reads (an array of its
-- columns in the row type's order); a trigger inserts into the view `event_log`,
-- which numbers the event and gives it its ID.
--
-- What is not an event: the bill run's bookkeeping on the records it bills (an
-- item's `charged_through`, a one-time item's `invoiced`), which is what its
-- invoices' events already say, and version or time-of-change bumps alone.

-- Renewals of the plan so far: a renewal (and only a renewal) counts one.
ALTER TABLE plans ADD COLUMN renewals INTEGER NOT NULL DEFAULT 0;
-- The day the scheduler found the invoice Posted and past its due date.
ALTER TABLE invoices ADD COLUMN overdue_on TEXT;
CREATE INDEX invoices_overdue ON invoices (tenant_id, due_date)
    WHERE status = 3 AND overdue_on IS NULL;

-- A record's state before a change whose event a later statement of the same
-- transaction writes (an item's history entry; an invoice's number, given last
-- when it is posted). Empty outside transactions.
CREATE TABLE event_staging (
    object_type  TEXT    NOT NULL,
    object_id    INTEGER NOT NULL,
    previous     TEXT    NOT NULL,
    PRIMARY KEY (object_type, object_id)
) WITHOUT ROWID;

-- Inserting here writes an event: numbered after the tenant's last one (one
-- writer: see `0008_events.sql`), with `evt_` and a UUIDv7 of its time as ID.
CREATE VIEW event_log AS
SELECT tenant_id, type, occurred_at, object_type, object_id, object_ext_id, object_version,
    object, previous
FROM events;

CREATE TRIGGER event_log_insert INSTEAD OF INSERT ON event_log BEGIN
    INSERT INTO events (tenant_id, sequence, id, type, occurred_at, object_type, object_id,
        object_ext_id, object_version, object, previous)
    SELECT NEW.tenant_id, s.next,
        'evt_' || substr(u.t, 1, 8) || '-' || substr(u.t, 9, 4) || '-7' || substr(u.r, 1, 3)
            || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(u.r, 4, 3)
            || '-' || substr(u.r, 7, 12),
        NEW.type, NEW.occurred_at, NEW.object_type, NEW.object_id, NEW.object_ext_id,
        NEW.object_version, NEW.object, NEW.previous
    FROM (SELECT COALESCE(MAX(sequence), 0) + 1 AS next FROM events
          WHERE tenant_id = NEW.tenant_id) s,
        (SELECT printf('%012x', NEW.occurred_at / 1000) AS t,
                lower(hex(randomblob(9))) AS r) u;
END;

-- Plans (`PlanRow`).
CREATE VIEW plan_records (id, account_ext_id, record) AS
SELECT p.id, a.ext_id,
    json_array(p.id, p.account_id, a.ext_id, p.ext_id, p.name, p.start_date, p.end_date,
        json(iif(p.auto_renew, 'true', 'false')), p.renewal_term_months, p.billing_day,
        p.currency, p.po_number, p.notes, p.cancel_date, p.created_at, p.updated_at,
        p.deleted_at, p.version)
FROM plans p JOIN accounts a ON a.id = p.account_id;

CREATE TRIGGER plans_event_created AFTER INSERT ON plans BEGIN
    INSERT INTO event_log
    SELECT NEW.tenant_id, 'plan.created', NEW.updated_at, 'plan', NEW.id, NEW.ext_id,
        NEW.version, r.record, NULL
    FROM plan_records r WHERE r.id = NEW.id;
END;

-- Deleted, cancelled, renewed or else updated, in that order of precedence.
CREATE TRIGGER plans_event_changed AFTER UPDATE ON plans
WHEN OLD.ext_id IS NOT NEW.ext_id OR OLD.name IS NOT NEW.name
    OR OLD.start_date IS NOT NEW.start_date OR OLD.end_date IS NOT NEW.end_date
    OR OLD.auto_renew IS NOT NEW.auto_renew
    OR OLD.renewal_term_months IS NOT NEW.renewal_term_months
    OR OLD.billing_day IS NOT NEW.billing_day OR OLD.currency IS NOT NEW.currency
    OR OLD.po_number IS NOT NEW.po_number OR OLD.notes IS NOT NEW.notes
    OR OLD.cancel_date IS NOT NEW.cancel_date OR OLD.deleted_at IS NOT NEW.deleted_at
    OR OLD.renewals IS NOT NEW.renewals
BEGIN
    INSERT INTO event_log
    SELECT NEW.tenant_id,
        CASE WHEN OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN 'plan.deleted'
             WHEN OLD.cancel_date IS NULL AND NEW.cancel_date IS NOT NULL THEN 'plan.cancelled'
             WHEN NEW.renewals > OLD.renewals THEN 'plan.renewed'
             ELSE 'plan.updated' END,
        NEW.updated_at, 'plan', NEW.id, NEW.ext_id, NEW.version, r.record,
        json_array(OLD.id, OLD.account_id, r.account_ext_id, OLD.ext_id, OLD.name,
            OLD.start_date, OLD.end_date, json(iif(OLD.auto_renew, 'true', 'false')),
            OLD.renewal_term_months, OLD.billing_day, OLD.currency, OLD.po_number, OLD.notes,
            OLD.cancel_date, OLD.created_at, OLD.updated_at, OLD.deleted_at, OLD.version)
    FROM plan_records r WHERE r.id = NEW.id;
END;

-- Recurring items (`RecurringItemRow` and its history of `ItemChangeRow`s). Every
-- change of an item appends a history entry after writing the item's row: the
-- entry's trigger writes the event, typed by the entry's kind; the row's trigger
-- keeps the item as it was. The row's writes set `updated_at`; the bill run's
-- `charged_through` bookkeeping does not, and is no event. The history is read
-- through the index `recurring_item_changes_item` (a view grouping every item's
-- history would be aggregated whole on each write).
CREATE TRIGGER recurring_items_event_staged AFTER UPDATE ON recurring_items
WHEN OLD.updated_at IS NOT NEW.updated_at
BEGIN
    INSERT OR REPLACE INTO event_staging (object_type, object_id, previous)
    SELECT 'recurring_item', OLD.id,
        json_array(
            json_array(OLD.id, OLD.plan_id, p.ext_id, p.account_id, p.billing_day,
                json(iif(p.auto_renew, 'true', 'false')), OLD.ext_id, OLD.product_code,
                OLD.name, OLD.description, OLD.tax_code, OLD.billing_period,
                OLD.period_count, OLD.timing, OLD.start_date, OLD.end_date, OLD.cancel_date,
                json(CASE OLD.cancel_credit WHEN 1 THEN 'true' WHEN 0 THEN 'false' END),
                OLD.charged_through, OLD.created_at, OLD.updated_at, OLD.deleted_at,
                OLD.version),
            json((SELECT json_group_array(json_array(c.id, c.item_id, c.kind,
                c.effective_date, c.quantity, c.unit_price, c.discount_percent, c.start_date,
                c.end_date, json(CASE c.prorate WHEN 1 THEN 'true' WHEN 0 THEN 'false' END),
                json(CASE c.credit WHEN 1 THEN 'true' WHEN 0 THEN 'false' END), c.recorded_at)
                ORDER BY c.id)
             FROM recurring_item_changes c WHERE c.item_id = OLD.id)))
    FROM plans p WHERE p.id = OLD.plan_id;
END;

CREATE TRIGGER recurring_item_changes_event AFTER INSERT ON recurring_item_changes BEGIN
    INSERT INTO event_log
    SELECT NEW.tenant_id,
        'recurring_item.' || CASE NEW.kind WHEN 1 THEN 'created' WHEN 2 THEN 'updated'
            WHEN 3 THEN 'upsold' WHEN 4 THEN 'renewed' WHEN 5 THEN 'cancelled'
            WHEN 6 THEN 'dates_changed' ELSE 'deleted' END,
        i.updated_at, 'recurring_item', i.id, i.ext_id, i.version,
        json_array(
            json_array(i.id, i.plan_id, p.ext_id, p.account_id, p.billing_day,
                json(iif(p.auto_renew, 'true', 'false')), i.ext_id, i.product_code, i.name,
                i.description, i.tax_code, i.billing_period, i.period_count, i.timing,
                i.start_date, i.end_date, i.cancel_date,
                json(CASE i.cancel_credit WHEN 1 THEN 'true' WHEN 0 THEN 'false' END),
                i.charged_through, i.created_at, i.updated_at, i.deleted_at, i.version),
            json((SELECT json_group_array(json_array(c.id, c.item_id, c.kind,
                c.effective_date, c.quantity, c.unit_price, c.discount_percent, c.start_date,
                c.end_date, json(CASE c.prorate WHEN 1 THEN 'true' WHEN 0 THEN 'false' END),
                json(CASE c.credit WHEN 1 THEN 'true' WHEN 0 THEN 'false' END), c.recorded_at)
                ORDER BY c.id)
             FROM recurring_item_changes c WHERE c.item_id = i.id))),
        (SELECT s.previous FROM event_staging s
         WHERE s.object_type = 'recurring_item' AND s.object_id = i.id)
    FROM recurring_items i JOIN plans p ON p.id = i.plan_id
    WHERE i.id = NEW.item_id;
    DELETE FROM event_staging WHERE object_type = 'recurring_item' AND object_id = NEW.item_id;
END;

-- One-time items (`OneTimeItemRow`).
CREATE VIEW one_time_item_records (id, plan_ext_id, account_id, record) AS
SELECT o.id, p.ext_id, p.account_id,
    json_array(o.id, o.plan_id, p.ext_id, p.account_id, o.ext_id, o.product_code, o.name,
        o.description, o.quantity, o.unit_price, o.charge_date, o.tax_code, o.cancelled_at,
        json(iif(o.invoiced, 'true', 'false')), o.created_at, o.updated_at, o.deleted_at,
        o.version)
FROM one_time_items o JOIN plans p ON p.id = o.plan_id;

CREATE TRIGGER one_time_items_event_created AFTER INSERT ON one_time_items BEGIN
    INSERT INTO event_log
    SELECT NEW.tenant_id, 'one_time_item.created', NEW.updated_at, 'one_time_item', NEW.id,
        NEW.ext_id, NEW.version, r.record, NULL
    FROM one_time_item_records r WHERE r.id = NEW.id;
END;

CREATE TRIGGER one_time_items_event_changed AFTER UPDATE ON one_time_items
WHEN OLD.ext_id IS NOT NEW.ext_id OR OLD.product_code IS NOT NEW.product_code
    OR OLD.name IS NOT NEW.name OR OLD.description IS NOT NEW.description
    OR OLD.quantity IS NOT NEW.quantity OR OLD.unit_price IS NOT NEW.unit_price
    OR OLD.charge_date IS NOT NEW.charge_date OR OLD.tax_code IS NOT NEW.tax_code
    OR OLD.cancelled_at IS NOT NEW.cancelled_at OR OLD.deleted_at IS NOT NEW.deleted_at
BEGIN
    INSERT INTO event_log
    SELECT NEW.tenant_id,
        iif(OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL,
            'one_time_item.deleted', 'one_time_item.updated'),
        NEW.updated_at, 'one_time_item', NEW.id, NEW.ext_id, NEW.version, r.record,
        json_array(OLD.id, OLD.plan_id, r.plan_ext_id, r.account_id, OLD.ext_id,
            OLD.product_code, OLD.name, OLD.description, OLD.quantity, OLD.unit_price,
            OLD.charge_date, OLD.tax_code, OLD.cancelled_at,
            json(iif(OLD.invoiced, 'true', 'false')), OLD.created_at, OLD.updated_at,
            OLD.deleted_at, OLD.version)
    FROM one_time_item_records r WHERE r.id = NEW.id;
END;

-- Invoices (`InvoiceRow`, without lines: as the invoice's `GET` shows it).
CREATE VIEW invoice_records (id, account_ext_id, record) AS
SELECT i.id, a.ext_id,
    json_array(i.id, i.account_id, a.ext_id, i.plan_id, i.invoice_number, i.status,
        i.invoice_date, i.due_date, i.currency, i.subtotal, i.tax_total, i.total,
        i.credit_applied, i.credit_added, i.amount_due, i.po_number, i.memo, i.paid_date,
        i.payment_reference, i.cancel_reason, i.tax_error, i.tax_attempts,
        i.next_tax_attempt, i.created_at, i.updated_at, i.version)
FROM invoices i JOIN accounts a ON a.id = i.account_id;

-- `invoice.created`, then what the invoice was created as when it is more than a
-- draft (a bill run's invoices are born Posted, or Pending Tax).
CREATE TRIGGER invoices_event_created AFTER INSERT ON invoices BEGIN
    INSERT INTO event_log
    SELECT NEW.tenant_id, 'invoice.created', NEW.updated_at, 'invoice', NEW.id, NULL,
        NEW.version, r.record, NULL
    FROM invoice_records r WHERE r.id = NEW.id;
    INSERT INTO event_log
    SELECT NEW.tenant_id, iif(NEW.status = 3, 'invoice.posted', 'invoice.tax_pending'),
        NEW.updated_at, 'invoice', NEW.id, NULL, NEW.version, r.record, NULL
    FROM invoice_records r WHERE r.id = NEW.id AND NEW.status IN (2, 3);
END;

-- Posting sets the status first and the number last (see `number_invoice`): the
-- status change keeps the invoice as it was, and the number writes
-- `invoice.posted`. Otherwise: overdue, a status reached (Pending Tax, Paid,
-- Cancelled), a failed tax attempt, or else updated.
CREATE TRIGGER invoices_event_changed AFTER UPDATE ON invoices
WHEN OLD.invoice_number IS NOT NEW.invoice_number OR OLD.status IS NOT NEW.status
    OR OLD.due_date IS NOT NEW.due_date OR OLD.subtotal IS NOT NEW.subtotal
    OR OLD.tax_total IS NOT NEW.tax_total OR OLD.total IS NOT NEW.total
    OR OLD.credit_applied IS NOT NEW.credit_applied
    OR OLD.credit_added IS NOT NEW.credit_added OR OLD.amount_due IS NOT NEW.amount_due
    OR OLD.po_number IS NOT NEW.po_number OR OLD.memo IS NOT NEW.memo
    OR OLD.paid_date IS NOT NEW.paid_date
    OR OLD.payment_reference IS NOT NEW.payment_reference
    OR OLD.cancel_reason IS NOT NEW.cancel_reason OR OLD.tax_error IS NOT NEW.tax_error
    OR OLD.tax_attempts IS NOT NEW.tax_attempts OR OLD.overdue_on IS NOT NEW.overdue_on
BEGIN
    INSERT OR REPLACE INTO event_staging (object_type, object_id, previous)
    SELECT 'invoice', OLD.id,
        json_array(OLD.id, OLD.account_id, r.account_ext_id, OLD.plan_id,
            OLD.invoice_number, OLD.status, OLD.invoice_date, OLD.due_date, OLD.currency,
            OLD.subtotal, OLD.tax_total, OLD.total, OLD.credit_applied, OLD.credit_added,
            OLD.amount_due, OLD.po_number, OLD.memo, OLD.paid_date, OLD.payment_reference,
            OLD.cancel_reason, OLD.tax_error, OLD.tax_attempts, OLD.next_tax_attempt,
            OLD.created_at, OLD.updated_at, OLD.version)
    FROM invoice_records r
    WHERE r.id = NEW.id AND NEW.status = 3 AND NEW.invoice_number IS NULL;
    INSERT INTO event_log
    SELECT NEW.tenant_id,
        CASE WHEN OLD.overdue_on IS NULL AND NEW.overdue_on IS NOT NULL THEN 'invoice.overdue'
             WHEN OLD.invoice_number IS NULL AND NEW.invoice_number IS NOT NULL
                 THEN 'invoice.posted'
             WHEN OLD.status IS NOT NEW.status THEN
                 CASE NEW.status WHEN 2 THEN 'invoice.tax_pending' WHEN 4 THEN 'invoice.paid'
                     WHEN 5 THEN 'invoice.cancelled' ELSE 'invoice.updated' END
             WHEN NEW.tax_error IS NOT NULL AND OLD.tax_attempts IS NOT NEW.tax_attempts
                 THEN 'invoice.tax_failed'
             ELSE 'invoice.updated' END,
        NEW.updated_at, 'invoice', NEW.id, NULL, NEW.version, r.record,
        COALESCE((SELECT s.previous FROM event_staging s
                  WHERE s.object_type = 'invoice' AND s.object_id = NEW.id),
            json_array(OLD.id, OLD.account_id, r.account_ext_id, OLD.plan_id,
                OLD.invoice_number, OLD.status, OLD.invoice_date, OLD.due_date, OLD.currency,
                OLD.subtotal, OLD.tax_total, OLD.total, OLD.credit_applied, OLD.credit_added,
                OLD.amount_due, OLD.po_number, OLD.memo, OLD.paid_date, OLD.payment_reference,
                OLD.cancel_reason, OLD.tax_error, OLD.tax_attempts, OLD.next_tax_attempt,
                OLD.created_at, OLD.updated_at, OLD.version))
    FROM invoice_records r
    WHERE r.id = NEW.id AND NOT (NEW.status = 3 AND NEW.invoice_number IS NULL);
    DELETE FROM event_staging
    WHERE object_type = 'invoice' AND object_id = NEW.id AND NEW.invoice_number IS NOT NULL
        AND OLD.invoice_number IS NULL;
END;

-- A bill run that finished (not one abandoned for a later run to redo), with what
-- its batches did.
CREATE TRIGGER bill_runs_event_completed AFTER UPDATE ON bill_runs
WHEN OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL AND NOT NEW.abandoned
BEGIN
    INSERT INTO event_log
    SELECT NEW.tenant_id, 'bill_run.completed', NEW.finished_at, 'bill_run', NEW.id, NULL, 1,
        json_array(NEW.id, NEW.run_date, NEW.started_at, NEW.finished_at, COUNT(b.run_id),
            COALESCE(SUM(b.accounts), 0), COALESCE(SUM(b.invoices), 0),
            COALESCE(SUM(b.claims), 0) - COUNT(b.run_id)),
        NULL
    FROM bill_run_batches b WHERE b.run_id = NEW.id;
END;
