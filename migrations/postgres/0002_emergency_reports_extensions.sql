-- Emergency grants' retrospective review, window extensions, report addenda.
ALTER TABLE windows ADD COLUMN review_verdict TEXT CHECK (review_verdict IN ('justified', 'unjustified'));
ALTER TABLE windows ADD COLUMN review_comment TEXT;
ALTER TABLE windows ADD COLUMN reviewed_by TEXT;
ALTER TABLE windows ADD COLUMN reviewed_at TIMESTAMPTZ;
ALTER TABLE windows ADD COLUMN extension_ends_at TIMESTAMPTZ;
ALTER TABLE windows ADD COLUMN extension_reason TEXT;
ALTER TABLE windows ADD COLUMN extension_requested_by TEXT;

CREATE TABLE report_addenda (
    id        TEXT PRIMARY KEY,
    window_id TEXT NOT NULL REFERENCES reports(window_id),
    text      TEXT NOT NULL,
    filed_by  TEXT NOT NULL,
    filed_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX report_addenda_window ON report_addenda(window_id, filed_at);
