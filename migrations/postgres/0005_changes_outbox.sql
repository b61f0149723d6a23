-- The change feed (issue 9): every committed change that can affect admission or
-- a live tunnel appends one row, in the change's own transaction, under the audit
-- chain's lock, so `seq` grows in commit order and a node that has read up to
-- `seq` has seen every change before it. Nodes follow it (LISTEN + polling).
CREATE TABLE changes (
    seq       BIGINT PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    kind      TEXT NOT NULL,
    object    TEXT NOT NULL,
    -- The audit event the change was committed with.
    audit_seq BIGINT NOT NULL
);

-- Notifications to deliver (transactional outbox): written with the change,
-- delivered by one node at a time, retried with backoff until delivered.
CREATE TABLE outbox (
    seq             BIGSERIAL PRIMARY KEY,
    created_at      TIMESTAMPTZ NOT NULL,
    event           TEXT NOT NULL,
    data            TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    delivered_at    TIMESTAMPTZ,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL;
