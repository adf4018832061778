-- patrol store, PostgreSQL flavour: progress of multi-message deliveries. The SQLite folder holds
-- the same logical schema.

-- How many leading messages of a notification its receiver already accepted (WeCom sends its
-- @-mentions as a text message after the Markdown one): a retry resumes after them instead of
-- delivering them twice. 0 for single-message receivers.
ALTER TABLE notifications ADD COLUMN parts_done INTEGER NOT NULL DEFAULT 0 CHECK (parts_done >= 0);
