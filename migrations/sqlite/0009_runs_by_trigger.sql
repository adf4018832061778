-- patrol store, SQLite flavour: reports compare a run with the previous run of the same trigger
-- (`suite:nightly`, `cli`) and `patrol report --suite` finds a suite's latest run; both read this
-- index backwards instead of walking every scheduled run in `runs_started_at`.
CREATE INDEX runs_by_trigger ON runs (triggered_by, started_at);
