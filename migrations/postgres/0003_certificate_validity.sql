-- The start of each technician certificate's validity, so admission can refuse a
-- certificate that is not valid *now* (not_after was already stored). Rows that
-- predate this column are filled from their stored certificate when the store
-- migrates (Store::migrate); a row left NULL (unreadable certificate) is refused.
ALTER TABLE technicians ADD COLUMN not_before TIMESTAMPTZ;
