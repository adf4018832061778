-- patrol store, PostgreSQL flavour: what the daemon keeps besides runs and results. The SQLite
-- folder holds the same logical schema.

-- The latest state of each check, maintained by every save: the worst status of its latest
-- results, since when it has been failing (crit/error), and the mean of its numeric values.
-- Health scores are computed from this table, never from result history.
CREATE TABLE check_state (
    check_name    TEXT             NOT NULL PRIMARY KEY,
    status        TEXT             NOT NULL CHECK (status IN ('skipped', 'ok', 'warn', 'crit', 'error')),
    failing_since TIMESTAMPTZ,
    value         DOUBLE PRECISION,
    at            TIMESTAMPTZ      NOT NULL,
    CHECK (failing_since IS NULL OR status IN ('crit', 'error'))
);

-- The event log behind the SSE stream (`result`, `score`, `reload`, `score_low`, …). Ids only
-- grow: identity values are never reused, and writers serialise their appends so that a reader
-- resuming after id N can never miss an event committed later with a smaller id.
CREATE TABLE events (
    id   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT        NOT NULL,
    at   TIMESTAMPTZ NOT NULL,
    data JSONB       NOT NULL
);

CREATE INDEX events_at ON events (at);

-- Health scores as a time series, one row per service and evaluation.
CREATE TABLE scores (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service TEXT             NOT NULL,
    at      TIMESTAMPTZ      NOT NULL,
    score   DOUBLE PRECISION NOT NULL CHECK (score >= 0 AND score <= 100),
    model   TEXT             NOT NULL,
    details JSONB            NOT NULL
);

CREATE INDEX scores_service_at ON scores (service, at, id);
CREATE INDEX scores_at ON scores (at);

-- The newest score of each service, upserted with the history so that "current scores" is a
-- read of a few rows rather than a scan of the series.
CREATE TABLE latest_scores (
    service TEXT             NOT NULL PRIMARY KEY,
    at      TIMESTAMPTZ      NOT NULL,
    score   DOUBLE PRECISION NOT NULL CHECK (score >= 0 AND score <= 100),
    model   TEXT             NOT NULL,
    details JSONB            NOT NULL
);

-- The last start of each scheduled job (`check:NAME`, `suite:NAME`), for catch-up after a restart.
CREATE TABLE job_runs (
    job        TEXT        NOT NULL PRIMARY KEY,
    planned_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ NOT NULL
);

-- Results newest first, of one check or of all (the API), and retention by age.
CREATE INDEX results_check_started ON results (check_name, started_at, id);
CREATE INDEX results_started ON results (started_at, id);
