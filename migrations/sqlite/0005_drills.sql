-- patrol store, SQLite flavour: chaos drills (issue #5). The PostgreSQL folder holds the same
-- logical schema. Timestamps are fixed-format UTC text, as in 0001; JSON is stored as text.

-- Every fault of a drill, written BEFORE it is injected (`intended`), then with the state its
-- revert needs (`injected`), then `reverted`. A row that is not `reverted` is still active: a
-- recovery (`patrol drill --recover`, daemon start-up) reverts it from this row alone. A failed
-- revert leaves the row active, with the reason in revert_error. host / owner_pid / owner_start
-- name the patrol process that journaled it: a recovery leaves alone the faults of a patrol that
-- still runs, and those journaled on another host (pids and files are local).
CREATE TABLE fault_journal (
    id           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    drill_run    TEXT    NOT NULL,
    drill        TEXT    NOT NULL,
    fault_index  INTEGER NOT NULL CHECK (fault_index >= 0),
    kind         TEXT    NOT NULL CHECK (kind <> ''),
    spec         TEXT    NOT NULL,
    state        TEXT,
    status       TEXT    NOT NULL CHECK (status IN ('intended', 'injected', 'reverted')),
    intended_at  TEXT    NOT NULL,
    injected_at  TEXT,
    reverted_at  TEXT,
    inject_error TEXT,
    revert_error TEXT,
    outcome      TEXT,
    host         TEXT    NOT NULL,
    owner_pid    INTEGER NOT NULL,
    owner_start  INTEGER
) STRICT;

-- The recovery's query: the active rows.
CREATE INDEX fault_journal_active ON fault_journal (status, id);
CREATE INDEX fault_journal_run ON fault_journal (drill_run, id);

-- One row per drill run, with its report, for trends.
CREATE TABLE drill_runs (
    id          TEXT NOT NULL PRIMARY KEY,
    drill       TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    report      TEXT NOT NULL
) STRICT;

CREATE INDEX drill_runs_by_drill ON drill_runs (drill, started_at);
CREATE INDEX drill_runs_by_time ON drill_runs (started_at);
