-- What the event log cost a bill run, and its remedy (ARCHITECTURE.md, "Events").
-- Measured with `track_functions = 'all'` on a bill run of 3,000 accounts, whose
-- time the event triggers had more than doubled:
--
-- 1. `events_numbered` numbered a transaction's events at its commit, under the
--    row lock of the tenant's `event_sequences`, held through the commit's WAL
--    flush: a tenant's commits queued on it one by one (32 clients creating
--    accounts: 1,520/s, against 2,169/s with the numbering dropped). It also
--    counted them through the partial index of unnumbered events, which keeps an
--    entry for every numbered event until a vacuum. Events are now numbered after
--    their commit, by whoever reads the log next (`number_events`): the store
--    calls it before a list or get of events, and the webhook worker of every
--    server for every tenant each round, so a writer never takes the lock. Numbers stay gap-free and never go
--    below one already read: the committed events still unnumbered are numbered
--    in the order they were written, after the tenant's last number, under its
--    lock, in a transaction of their own.
-- 2. On PostgreSQL 15 a `LANGUAGE sql` function that is not inlined is planned
--    again on every call (150 to 400 microseconds each: `log_event`, `event_id`,
--    the `*_record` functions). In PL/pgSQL their plans are kept per connection.

DROP TRIGGER events_numbered ON events;
DROP FUNCTION events_numbered();

-- Numbers tenant `t`'s committed events that have no number yet, in the order
-- they were written. Plans fixed by the settings, whatever the statistics say:
-- the unnumbered events through their partial index, each event by its key.
CREATE FUNCTION number_events(t BIGINT) RETURNS void LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    top BIGINT;
    n   BIGINT;
BEGIN
    PERFORM 1 FROM events WHERE tenant_id = t AND sequence IS NULL LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO event_sequences (tenant_id, last) VALUES (t, 0) ON CONFLICT (tenant_id) DO NOTHING;
    SELECT s.last INTO top FROM event_sequences s WHERE s.tenant_id = t FOR UPDATE;
    -- A statement after the lock: it sees what the previous holder numbered.
    UPDATE events e SET sequence = top + o.rn
    FROM (SELECT u.key, row_number() OVER (ORDER BY u.key) AS rn
          FROM events u WHERE u.tenant_id = t AND u.sequence IS NULL) o
    WHERE e.key = o.key;
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE event_sequences s SET last = top + n WHERE s.tenant_id = t;
END
$$;

-- `number_events` for every tenant with events to number: the webhook worker of
-- every `serve` calls it each round (every 200 ms when idle), so a tenant's
-- committed events wait no longer than that for their numbers even if nobody
-- reads its log, and a first read never has a long backlog to number.
CREATE FUNCTION number_all_events() RETURNS void LANGUAGE plpgsql
SET enable_seqscan = off AS $$
DECLARE
    t BIGINT;
BEGIN
    FOR t IN SELECT DISTINCT e.tenant_id FROM events e WHERE e.sequence IS NULL LOOP
        PERFORM number_events(t);
    END LOOP;
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
