-- Accounts of the hospital's directory (issue 11): the DN a person bound as.
-- NULL: a local account. A directory account has no local password; its role
-- is re-read from the directory's groups at each sign-in.
ALTER TABLE api_users ADD COLUMN directory_dn TEXT;
