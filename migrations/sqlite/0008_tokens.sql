-- Tokens for scripts and the account lifecycle (issue 11). An account owns any
-- number of named tokens, each stored as the SHA-256 of the secret (shown once)
-- with its first characters (`prefix`, e.g. "ptk_ab12cd") to tell them apart
-- in lists, an optional expiry, its last use and its revocation.
--
-- Every existing account's token is copied here as "initial", without expiry,
-- so existing deployments keep working; its prefix was never stored, so it
-- shows as "ptk_". The copy keeps the account's id as its id (one per account).
-- api_users.token_sha256 stays for this migration's sake but is no longer read
-- for authentication: new accounts store a placeholder there.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES api_users(id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
INSERT INTO api_tokens (id, user_id, name, prefix, token_sha256, created_at)
    SELECT id, id, 'initial', 'ptk_', token_sha256, created_at FROM api_users;
ALTER TABLE api_users ADD COLUMN email TEXT;
ALTER TABLE api_users ADD COLUMN last_sign_in_at INTEGER;
