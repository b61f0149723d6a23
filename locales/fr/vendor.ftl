# The vendor pages (owned by the vendor area).
