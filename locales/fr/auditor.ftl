# The auditor pages (owned by the auditor area).
