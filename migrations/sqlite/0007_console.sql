-- The web console (issue 10). A console session is a row keyed by the SHA-256
-- of its cookie (the cookie itself is never stored), so every node of a
-- cluster finds it, an account's sessions can all be ended at once ("sign out
-- everywhere"), and a disabled account's sessions stop at its next request.
-- `lang` is the console language an account chose (fr, en; NULL: from the
-- browser's Accept-Language).
CREATE TABLE console_sessions (
    id_sha256    TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES api_users(id),
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    source_ip    TEXT
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
CREATE INDEX console_sessions_seen ON console_sessions (last_seen_at);
ALTER TABLE api_users ADD COLUMN lang TEXT;
