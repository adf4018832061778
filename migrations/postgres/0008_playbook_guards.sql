-- patrol store, PostgreSQL flavour: the guardrails of playbook runs (issue #7). The SQLite
-- folder holds the same logical schema.

-- One row per lock held: `key` is `<playbook>` or `<playbook>:<rendered lock>`. A row whose
-- expires_at has passed belongs to a holder that died (the runner releases its lock when the run
-- ends): the next run takes it over. holder is `host:pid` of the process running it.
CREATE TABLE playbook_locks (
    key         TEXT        NOT NULL PRIMARY KEY,
    run_id      TEXT        NOT NULL,
    holder      TEXT        NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);

-- One row per run admitted under a `rate_limit:`; rows older than the limit's window are
-- deleted as new runs are admitted.
CREATE TABLE playbook_admissions (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    playbook TEXT        NOT NULL,
    key      TEXT        NOT NULL,
    run_id   TEXT        NOT NULL,
    at       TIMESTAMPTZ NOT NULL
);

CREATE INDEX playbook_admissions_window ON playbook_admissions (playbook, key, at);

-- One row per approval asked through the approval API. Only the SHA-256 of the link's token is
-- kept. decision stays NULL while it waits; `expired` once nobody decided in time. step is NULL
-- when the whole run waits (`approve: true` on the playbook); input is the step's rendered
-- fields, secrets masked.
CREATE TABLE playbook_approvals (
    id          TEXT        NOT NULL PRIMARY KEY,
    run_id      TEXT        NOT NULL,
    playbook    TEXT        NOT NULL,
    step        TEXT,
    description TEXT        NOT NULL,
    input       JSONB       NOT NULL,
    token_hash  TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    decision    TEXT CHECK (decision IN ('approved', 'denied', 'expired')),
    decided_by  TEXT,
    decided_at  TIMESTAMPTZ
);

-- `GET /api/v1/approvals`: the pending ones, oldest first.
CREATE INDEX playbook_approvals_pending ON playbook_approvals (decision, created_at);
