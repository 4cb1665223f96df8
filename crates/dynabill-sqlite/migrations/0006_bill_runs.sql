-- Bill runs shared by processes. Several `dynabill bill-run` processes (or the
-- schedulers of several servers) for one tenant and date join one run and split
-- its accounts into batches, each claimed with a lease that its owner renews while
-- it lives; a batch whose lease expired is taken over by another participant.
-- Times are microseconds since the Unix epoch, as everywhere.

CREATE TABLE bill_runs (
    id            INTEGER PRIMARY KEY,
    tenant_id     INTEGER NOT NULL REFERENCES tenants (id),
    run_date      TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    -- The last sign of life of any participant, and the lease it was given: the
    -- run is live while heartbeat_at + lease is not past.
    heartbeat_at  INTEGER NOT NULL,
    lease         INTEGER NOT NULL,
    finished_at   INTEGER,
    -- Finished because nobody renewed it (a later run read every account again).
    abandoned     BOOLEAN NOT NULL DEFAULT FALSE
);
-- One unfinished run per tenant and date: the one every participant joins.
CREATE UNIQUE INDEX bill_runs_open ON bill_runs (tenant_id, run_date) WHERE finished_at IS NULL;

-- A batch is the accounts after_account < id <= last_account; batches of a run
-- follow each other without a gap.
CREATE TABLE bill_run_batches (
    run_id         INTEGER NOT NULL REFERENCES bill_runs (id),
    after_account  INTEGER NOT NULL,
    last_account   INTEGER NOT NULL,
    owner          TEXT    NOT NULL,
    lease_until    INTEGER NOT NULL,
    -- How many owners claimed it (more than one: taken over after a lease expired).
    claims         INTEGER NOT NULL,
    done_at        INTEGER,
    accounts       INTEGER,
    invoices       INTEGER,
    PRIMARY KEY (run_id, after_account)
);
