-- patrol store, SQLite flavour: the guardrails of playbook runs (issue #7). The PostgreSQL
-- folder holds the same logical schema. Timestamps are fixed-format UTC text, as in 0001; JSON
-- is stored as text.

-- One row per lock held: `key` is `<playbook>` or `<playbook>:<rendered lock>`. A row whose
-- expires_at has passed belongs to a holder that died (the runner releases its lock when the run
-- ends): the next run takes it over. holder is `host:pid` of the process running it.
CREATE TABLE playbook_locks (
    key         TEXT NOT NULL PRIMARY KEY,
    run_id      TEXT NOT NULL,
    holder      TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL
) STRICT;

-- One row per run admitted under a `rate_limit:`; rows older than the limit's window are
-- deleted as new runs are admitted.
CREATE TABLE playbook_admissions (
    id       INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    playbook TEXT    NOT NULL,
    key      TEXT    NOT NULL,
    run_id   TEXT    NOT NULL,
    at       TEXT    NOT NULL
) STRICT;

CREATE INDEX playbook_admissions_window ON playbook_admissions (playbook, key, at);

-- One row per approval asked through the approval API. Only the SHA-256 of the link's token is
-- kept. decision stays NULL while it waits; `expired` once nobody decided in time. step is NULL
-- when the whole run waits (`approve: true` on the playbook); input is the step's rendered
-- fields, secrets masked.
CREATE TABLE playbook_approvals (
    id          TEXT NOT NULL PRIMARY KEY,
    run_id      TEXT NOT NULL,
    playbook    TEXT NOT NULL,
    step        TEXT,
    description TEXT NOT NULL,
    input       TEXT NOT NULL,
    token_hash  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    decision    TEXT CHECK (decision IN ('approved', 'denied', 'expired')),
    decided_by  TEXT,
    decided_at  TEXT
) STRICT;

-- `GET /api/v1/approvals`: the pending ones, oldest first.
CREATE INDEX playbook_approvals_pending ON playbook_approvals (decision, created_at);
