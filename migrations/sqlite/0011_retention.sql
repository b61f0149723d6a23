-- Secure disposal (issue 13, `portier purge`). Audit events older than a purge's
-- cut-off are deleted whole; the last deleted one's seq and hash stay here so
-- that verification continues from it (the first kept event's prev_hash must be
-- this hash). One row at most: each purge moves it forward. The purge's own
-- `data.purged` event, chained after it, names the same anchor.
CREATE TABLE audit_anchor (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    seq       INTEGER NOT NULL,
    hash      TEXT NOT NULL,
    purged_at INTEGER NOT NULL,
    before    INTEGER NOT NULL
);
