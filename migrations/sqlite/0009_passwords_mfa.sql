-- Local passwords and a second factor (issue 11).
-- password_hash: a PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash), so the
--   parameters a hash was made with travel with it. NULL: no local password.
-- must_change_password: set by an admin's reset; the next sign-in must change it.
-- totp_secret: the RFC 6238 secret in base32, as authenticator apps take it.
--   Stored as is for now: issue 13 encrypts secrets at rest.
-- totp_enabled_at: when the first valid code confirmed the enrolment (NULL while
--   pending: a secret shown but not yet confirmed does not count as a factor).
-- totp_last_step: the 30 s step of the last code accepted; a code of that step or
--   an earlier one is refused, so a code is accepted once (no replay).
ALTER TABLE api_users ADD COLUMN password_hash TEXT;
ALTER TABLE api_users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_users ADD COLUMN totp_secret TEXT;
ALTER TABLE api_users ADD COLUMN totp_enabled_at INTEGER;
ALTER TABLE api_users ADD COLUMN totp_last_step INTEGER;

-- One-time recovery codes, by their SHA-256 (the codes are shown once).
CREATE TABLE recovery_codes (
    user_id     TEXT NOT NULL REFERENCES api_users(id),
    code_sha256 TEXT NOT NULL,
    used_at     INTEGER,
    PRIMARY KEY (user_id, code_sha256)
);

-- Failed sign-ins, per key ('account:<name>' whether or not the account exists,
-- 'source:<address>'), in the database so every node counts the same ones.
-- Rows older than the lockout are pruned as new ones arrive.
CREATE TABLE sign_in_failures (
    key TEXT NOT NULL,
    at  INTEGER NOT NULL
);
CREATE INDEX sign_in_failures_key_at ON sign_in_failures (key, at);

-- A sign-in half done (password right, second factor or password change to
-- come): only the SHA-256 of its cookie is stored, the stage decides what the
-- holder may do next, and it expires within minutes. Never a console session.
CREATE TABLE sign_in_pending (
    id_sha256  TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES api_users(id),
    stage      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    source_ip  TEXT
);
