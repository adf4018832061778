-- patrol store, SQLite flavour. The PostgreSQL folder holds the same logical schema: same tables,
-- same columns, backend-appropriate types. Timestamps are UTC text in one fixed format
-- (YYYY-MM-DDTHH:MM:SS.ffffffZ), so text order is time order and SQLite's date functions read them.

-- One execution of a set of checks.
CREATE TABLE runs (
    id            TEXT    NOT NULL PRIMARY KEY,
    started_at    TEXT    NOT NULL,
    finished_at   TEXT    NOT NULL,
    revision      TEXT    NOT NULL,
    triggered_by  TEXT    NOT NULL,
    count_ok      INTEGER NOT NULL CHECK (count_ok >= 0),
    count_warn    INTEGER NOT NULL CHECK (count_warn >= 0),
    count_crit    INTEGER NOT NULL CHECK (count_crit >= 0),
    count_error   INTEGER NOT NULL CHECK (count_error >= 0),
    count_skipped INTEGER NOT NULL CHECK (count_skipped >= 0)
) STRICT;

CREATE INDEX runs_started_at ON runs (started_at);

-- One verdict of a check for one series in one run. The value is either a number (value_num) or
-- text (value_text); the baseline_* columns hold the band the sample was judged against, all NULL
-- when there was none.
CREATE TABLE results (
    id               INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    run_id           TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    check_name       TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    target           TEXT    NOT NULL,
    series           TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('skipped', 'ok', 'warn', 'crit', 'error')),
    value_num        REAL,
    value_text       TEXT,
    unit             TEXT    NOT NULL,
    duration_ms      REAL    NOT NULL,
    message          TEXT    NOT NULL,
    baseline_mean    REAL,
    baseline_stddev  REAL,
    baseline_lower   REAL,
    baseline_upper   REAL,
    baseline_samples INTEGER CHECK (baseline_samples >= 0),
    shadow           INTEGER NOT NULL CHECK (shadow IN (0, 1)),
    service          TEXT,
    labels           TEXT    NOT NULL,
    revision         TEXT    NOT NULL,
    started_at       TEXT    NOT NULL,
    CHECK (value_num IS NULL OR value_text IS NULL)
) STRICT;

CREATE INDEX results_check_series_started ON results (check_name, series, started_at);
CREATE INDEX results_run ON results (run_id);

-- The learned EWMA state of one series (DESIGN §3), upserted by every run.
CREATE TABLE baselines (
    check_name TEXT    NOT NULL,
    series     TEXT    NOT NULL,
    mean       REAL    NOT NULL,
    variance   REAL    NOT NULL CHECK (variance >= 0),
    samples    INTEGER NOT NULL CHECK (samples >= 0),
    updated_at TEXT,
    PRIMARY KEY (check_name, series)
) STRICT;
