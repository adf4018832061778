-- patrol store, PostgreSQL flavour. The SQLite folder holds the same logical schema: same tables,
-- same columns, backend-appropriate types (TIMESTAMPTZ, DOUBLE PRECISION, BOOLEAN, JSONB).

-- One execution of a set of checks.
CREATE TABLE runs (
    id            TEXT        NOT NULL PRIMARY KEY,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ NOT NULL,
    revision      TEXT        NOT NULL,
    triggered_by  TEXT        NOT NULL,
    count_ok      BIGINT      NOT NULL CHECK (count_ok >= 0),
    count_warn    BIGINT      NOT NULL CHECK (count_warn >= 0),
    count_crit    BIGINT      NOT NULL CHECK (count_crit >= 0),
    count_error   BIGINT      NOT NULL CHECK (count_error >= 0),
    count_skipped BIGINT      NOT NULL CHECK (count_skipped >= 0)
);

CREATE INDEX runs_started_at ON runs (started_at);

-- One verdict of a check for one series in one run. The value is either a number (value_num) or
-- text (value_text); the baseline_* columns hold the band the sample was judged against, all NULL
-- when there was none.
CREATE TABLE results (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id           TEXT             NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    check_name       TEXT             NOT NULL,
    kind             TEXT             NOT NULL,
    target           TEXT             NOT NULL,
    series           TEXT             NOT NULL,
    status           TEXT             NOT NULL CHECK (status IN ('skipped', 'ok', 'warn', 'crit', 'error')),
    value_num        DOUBLE PRECISION,
    value_text       TEXT,
    unit             TEXT             NOT NULL,
    duration_ms      DOUBLE PRECISION NOT NULL,
    message          TEXT             NOT NULL,
    baseline_mean    DOUBLE PRECISION,
    baseline_stddev  DOUBLE PRECISION,
    baseline_lower   DOUBLE PRECISION,
    baseline_upper   DOUBLE PRECISION,
    baseline_samples BIGINT CHECK (baseline_samples >= 0),
    shadow           BOOLEAN          NOT NULL,
    service          TEXT,
    labels           JSONB            NOT NULL,
    revision         TEXT             NOT NULL,
    started_at       TIMESTAMPTZ      NOT NULL,
    CHECK (value_num IS NULL OR value_text IS NULL)
);

CREATE INDEX results_check_series_started ON results (check_name, series, started_at);
CREATE INDEX results_run ON results (run_id);

-- The learned EWMA state of one series (DESIGN §3), upserted by every run.
CREATE TABLE baselines (
    check_name TEXT             NOT NULL,
    series     TEXT             NOT NULL,
    mean       DOUBLE PRECISION NOT NULL,
    variance   DOUBLE PRECISION NOT NULL CHECK (variance >= 0),
    samples    BIGINT           NOT NULL CHECK (samples >= 0),
    updated_at TIMESTAMPTZ,
    PRIMARY KEY (check_name, series)
);
