# The admin pages (owned by the admin area).
