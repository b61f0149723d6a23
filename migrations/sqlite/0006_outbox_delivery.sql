-- Outbox delivery (issue 9 item 6). A row is claimed for a while by the node
-- delivering it (`claimed_by` until `claimed_until`: a node stopped mid-delivery
-- leaves the claim to expire), remembers which sinks already accepted it
-- (`sinks_done`, a JSON array of sink keys, so a retry does not resend to a
-- receiver that answered), and is marked `failed_at` once retried for the whole
-- horizon. Settled rows are deleted after the retention, oldest first.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until INTEGER;
ALTER TABLE outbox ADD COLUMN failed_at INTEGER;
ALTER TABLE outbox ADD COLUMN sinks_done TEXT NOT NULL DEFAULT '[]';
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_created ON outbox (created_at);
