-- Node liveness (issue 8): each running node claims its name and beats every few
-- seconds; a crash is then dated by the last beat, and a second process with the
-- same name is refused while the first one is alive.
CREATE TABLE nodes (
    name        TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    -- Set by a clean stop: the name is free at once.
    stopped_at  INTEGER
);

-- Byte counts of live sessions are checkpointed into bytes_* periodically;
-- this says when, so a crash loses at most one checkpoint period of counts.
ALTER TABLE sessions ADD COLUMN checkpoint_at INTEGER;

-- One row that the write probe rewrites while the store is considered down.
CREATE TABLE store_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL
);
INSERT INTO store_probe (id, at) VALUES (1, 0);
