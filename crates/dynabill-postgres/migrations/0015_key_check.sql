-- The server key's check value (ARCHITECTURE.md, "Secrets at rest"): a known text
-- sealed with the key ring at the first start, so that a server started later
-- with another key refuses to start even before any secret is stored.
CREATE TABLE key_checks (
    id      SMALLINT PRIMARY KEY CHECK (id = 1),
    sealed  TEXT     NOT NULL
);
