# The security pages (owned by the security area).
