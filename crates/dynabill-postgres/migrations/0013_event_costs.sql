-- What the event log cost a bill run, and its remedy (ARCHITECTURE.md, "Events").
-- Measured with `track_functions = 'all'` on a bill run of 3,000 accounts, whose
-- time the event triggers had more than doubled:
--
-- 1. `events_numbered` counted and numbered the transaction's events through the
--    partial index of unnumbered events. Numbering an event updates its row, and
--    the entry of the row's first version stays in that index until a vacuum: the
--    index held an entry for every event ever written, and each commit walked all
--    of the tenant's, checking each against the table. Quadratic in the log. The
--    index is now keyed by the writing transaction as well, and the numbering
--    reads the entries of its own transaction alone.
-- 2. On PostgreSQL 15 a `LANGUAGE sql` function that is not inlined is planned
--    again on every call (150 to 400 microseconds each: `log_event`, `event_id`,
--    the `*_record` functions). In PL/pgSQL their plans are kept per connection.

ALTER TABLE events ADD COLUMN tx BIGINT;
ALTER TABLE events ALTER COLUMN tx SET DEFAULT txid_current();
DROP INDEX events_unnumbered;
CREATE INDEX events_unnumbered ON events (tenant_id, tx, key) WHERE sequence IS NULL;

CREATE OR REPLACE FUNCTION events_numbered() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mark TEXT := 'dynabill.events_numbered_' || NEW.tenant_id;
    mine BIGINT := txid_current();
    n    BIGINT;
    top  BIGINT;
BEGIN
    IF current_setting(mark, true) = 'yes' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config(mark, 'yes', true);
    SELECT COUNT(*) INTO n FROM events e
    WHERE e.tenant_id = NEW.tenant_id AND e.tx = mine AND e.sequence IS NULL;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO event_sequences AS s (tenant_id, last) VALUES (NEW.tenant_id, n)
    ON CONFLICT (tenant_id) DO UPDATE SET last = s.last + EXCLUDED.last
    RETURNING last INTO top;
    UPDATE events e SET sequence = top - n + o.rn
    FROM (SELECT u.key, row_number() OVER (ORDER BY u.key) AS rn
          FROM events u
          WHERE u.tenant_id = NEW.tenant_id AND u.tx = mine
            AND u.sequence IS NULL) o
    WHERE e.key = o.key;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION event_id(at BIGINT) RETURNS TEXT LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t TEXT := lpad(to_hex(at / 1000), 12, '0');
    r TEXT := md5(random()::text || clock_timestamp()::text);
BEGIN
    RETURN 'evt_' || substr(t, 1, 8) || '-' || substr(t, 9, 4) || '-7' || substr(r, 1, 3)
        || '-' || substr('89ab', 1 + floor(random() * 4)::int, 1) || substr(r, 4, 3)
        || '-' || substr(r, 7, 12);
END
$$;

CREATE OR REPLACE FUNCTION log_event(BIGINT, TEXT, BIGINT, TEXT, BIGINT, TEXT, BIGINT, JSONB, JSONB)
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO events (tenant_id, id, type, occurred_at, object_type, object_id,
        object_ext_id, object_version, object, previous)
    VALUES ($1, event_id($3), $2, $3, $4, $5, $6, $7, $8, $9);
END
$$;

CREATE OR REPLACE FUNCTION stage_event(kind TEXT, id BIGINT, previous JSONB)
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO event_staging AS s (object_type, object_id, previous)
    VALUES (stage_event.kind, stage_event.id, stage_event.previous)
    ON CONFLICT (object_type, object_id) DO UPDATE SET previous = EXCLUDED.previous;
END
$$;

CREATE OR REPLACE FUNCTION staged_event(kind TEXT, id BIGINT)
RETURNS JSONB LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    kept JSONB;
BEGIN
    DELETE FROM event_staging s
    WHERE s.object_type = staged_event.kind AND s.object_id = staged_event.id
    RETURNING s.previous INTO kept;
    RETURN kept;
END
$$;

CREATE OR REPLACE FUNCTION account_json(a accounts) RETURNS JSONB
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN to_jsonb(a) - 'tenant_id' || jsonb_build_object('credit_balance', a.credit_balance::text);
END
$$;

CREATE OR REPLACE FUNCTION plan_record(p plans) RETURNS JSONB LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN to_jsonb(p) - 'tenant_id' || jsonb_build_object('account_ext_id',
        (SELECT a.ext_id FROM accounts a WHERE a.id = p.account_id));
END
$$;

CREATE OR REPLACE FUNCTION item_change_record(c recurring_item_changes) RETURNS JSONB
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN to_jsonb(c) - 'tenant_id' || jsonb_build_object('quantity', c.quantity::text,
        'unit_price', c.unit_price::text, 'discount_percent', c.discount_percent::text);
END
$$;

CREATE OR REPLACE FUNCTION recurring_item_record(r recurring_items) RETURNS JSONB
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p plans;
BEGIN
    SELECT * INTO p FROM plans WHERE plans.id = r.plan_id;
    RETURN jsonb_build_array(
        to_jsonb(r) - 'tenant_id' || jsonb_build_object('plan_ext_id', p.ext_id,
            'account_id', p.account_id, 'plan_billing_day', p.billing_day,
            'plan_auto_renew', p.auto_renew),
        (SELECT COALESCE(jsonb_agg(item_change_record(c) ORDER BY c.id), '[]'::jsonb)
         FROM recurring_item_changes c WHERE c.tenant_id = r.tenant_id AND c.item_id = r.id));
END
$$;

CREATE OR REPLACE FUNCTION one_time_item_record(o one_time_items) RETURNS JSONB
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p plans;
BEGIN
    SELECT * INTO p FROM plans WHERE plans.id = o.plan_id;
    RETURN to_jsonb(o) - 'tenant_id' || jsonb_build_object('plan_ext_id', p.ext_id,
        'account_id', p.account_id, 'quantity', o.quantity::text,
        'unit_price', o.unit_price::text);
END
$$;

CREATE OR REPLACE FUNCTION invoice_record(i invoices) RETURNS JSONB LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN to_jsonb(i) - 'tenant_id' || jsonb_build_object('account_ext_id',
        (SELECT a.ext_id FROM accounts a WHERE a.id = i.account_id),
        'subtotal', i.subtotal::text, 'tax_total', i.tax_total::text, 'total', i.total::text,
        'credit_applied', i.credit_applied::text, 'credit_added', i.credit_added::text,
        'amount_due', i.amount_due::text);
END
$$;

-- 3. A bill run inserts a batch's invoices in one statement, and the row trigger
--    called four PL/pgSQL functions per invoice to write its two events. The
--    invoices' insert events are now written by one statement per statement, from
--    its transition table (the account's ExtID looked up by key for each invoice,
--    so no statistics can turn it into a scan of the accounts); the row trigger
--    keeps the updates.
CREATE FUNCTION invoices_inserted_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (tenant_id, id, type, occurred_at, object_type, object_id,
        object_ext_id, object_version, object, previous)
    SELECT r.tenant_id, event_id(r.updated_at), k.type, r.updated_at, 'invoice', r.id,
        NULL, r.version, r.object, NULL
    FROM (SELECT n.tenant_id, n.id, n.updated_at, n.version, n.status,
                 to_jsonb(n) - 'tenant_id' || jsonb_build_object('account_ext_id',
                     (SELECT a.ext_id FROM accounts a WHERE a.id = n.account_id),
                     'subtotal', n.subtotal::text, 'tax_total', n.tax_total::text,
                     'total', n.total::text, 'credit_applied', n.credit_applied::text,
                     'credit_added', n.credit_added::text, 'amount_due', n.amount_due::text)
                     AS object
          FROM inserted n) r
    CROSS JOIN LATERAL (VALUES (1, 'invoice.created'),
        (2, CASE r.status WHEN 3 THEN 'invoice.posted' WHEN 2 THEN 'invoice.tax_pending' END))
        AS k (step, type)
    WHERE k.type IS NOT NULL
    ORDER BY r.id, k.step;
    RETURN NULL;
END
$$;

DROP TRIGGER invoices_event_created ON invoices;
CREATE TRIGGER invoices_event_created AFTER INSERT ON invoices
REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT
EXECUTE FUNCTION invoices_inserted_events();
