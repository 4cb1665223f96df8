-- A claimed Idempotency-Key is held by a lease its request renews while it runs
-- (ARCHITECTURE.md, "Idempotency"): a claim whose server died is taken over by a
-- retry of the same request once the lease has run out. Rows claimed before this
-- column existed have none, and count as run out.
ALTER TABLE idempotency_keys ADD COLUMN claimed_until BIGINT;
