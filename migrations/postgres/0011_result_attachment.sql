-- patrol store, postgres flavour (issue 10): evidence a probe kept with a result that is not ok
-- (a pprof goroutine profile), as {name, content_type, text}; NULL for most results.
ALTER TABLE results ADD COLUMN attachment JSONB;
