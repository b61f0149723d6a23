-- The change feed (issue 9): every committed change that can affect admission or
-- a live tunnel appends one row, in the change's own transaction, so `seq` grows
-- in commit order (SQLite has one writer). The node follows it in-process.
CREATE TABLE changes (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    object    TEXT NOT NULL,
    -- The audit event the change was committed with.
    audit_seq INTEGER NOT NULL
);

-- Notifications to deliver (transactional outbox): written with the change,
-- retried with backoff until delivered.
CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at      INTEGER NOT NULL,
    event           TEXT NOT NULL,
    data            TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL;
