-- patrol store, SQLite flavour: what the daemon keeps besides runs and results. The PostgreSQL
-- folder holds the same logical schema. Timestamps are fixed-format UTC text, as in 0001.

-- The latest state of each check, maintained by every save: the worst status of its latest
-- results, since when it has been failing (crit/error), and the mean of its numeric values.
-- Health scores are computed from this table, never from result history.
CREATE TABLE check_state (
    check_name    TEXT NOT NULL PRIMARY KEY,
    status        TEXT NOT NULL CHECK (status IN ('skipped', 'ok', 'warn', 'crit', 'error')),
    failing_since TEXT,
    value         REAL,
    at            TEXT NOT NULL,
    CHECK (failing_since IS NULL OR status IN ('crit', 'error'))
) STRICT;

-- The event log behind the SSE stream (`result`, `score`, `reload`, `score_low`, …). Ids only
-- grow: AUTOINCREMENT never reuses an id, not even after the newest rows were pruned, and SQLite
-- has one writer at a time, so ids become visible in order.
CREATE TABLE events (
    id   INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind TEXT    NOT NULL,
    at   TEXT    NOT NULL,
    data TEXT    NOT NULL
) STRICT;

CREATE INDEX events_at ON events (at);

-- Health scores as a time series, one row per service and evaluation.
CREATE TABLE scores (
    id      INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    service TEXT    NOT NULL,
    at      TEXT    NOT NULL,
    score   REAL    NOT NULL CHECK (score >= 0 AND score <= 100),
    model   TEXT    NOT NULL,
    details TEXT    NOT NULL
) STRICT;

CREATE INDEX scores_service_at ON scores (service, at, id);
CREATE INDEX scores_at ON scores (at);

-- The newest score of each service, upserted with the history so that "current scores" is a
-- read of a few rows rather than a scan of the series.
CREATE TABLE latest_scores (
    service TEXT NOT NULL PRIMARY KEY,
    at      TEXT NOT NULL,
    score   REAL NOT NULL CHECK (score >= 0 AND score <= 100),
    model   TEXT NOT NULL,
    details TEXT NOT NULL
) STRICT;

-- The last start of each scheduled job (`check:NAME`, `suite:NAME`), for catch-up after a restart.
CREATE TABLE job_runs (
    job        TEXT NOT NULL PRIMARY KEY,
    planned_at TEXT NOT NULL,
    started_at TEXT NOT NULL
) STRICT;

-- Results newest first, of one check or of all (the API), and retention by age.
CREATE INDEX results_check_started ON results (check_name, started_at, id);
CREATE INDEX results_started ON results (started_at, id);
