-- patrol store, PostgreSQL flavour: the audit trail of playbook runs (issue #7). The SQLite
-- folder holds the same logical schema.

-- One row per run, written when it starts (status `running`), again when it ends, or once when a
-- guardrail refuses it. Texts are stored with registered secrets masked. `key` is the lock and
-- rate-limit key; `host` the machine of the patrol process that ran it.
CREATE TABLE playbook_runs (
    id          TEXT        NOT NULL PRIMARY KEY,
    playbook    TEXT        NOT NULL,
    status      TEXT        NOT NULL
        CHECK (status IN ('running', 'succeeded', 'failed', 'rolled_back', 'refused')),
    dry_run     BOOLEAN     NOT NULL,
    key         TEXT,
    started_by  TEXT        NOT NULL,
    approver    TEXT,
    params      JSONB       NOT NULL,
    trigger     JSONB       NOT NULL,
    error       TEXT,
    started_at  TIMESTAMPTZ NOT NULL,
    ended_at    TIMESTAMPTZ,
    host        TEXT        NOT NULL
);

-- `patrol playbook history [--playbook]` and `GET /api/v1/playbook-runs`: newest first.
CREATE INDEX playbook_runs_by_playbook ON playbook_runs (playbook, started_at);
CREATE INDEX playbook_runs_by_time ON playbook_runs (started_at);

-- One row per step of a run, written as the step ends; `seq` is its position in the run
-- (forward steps, then rollback steps). input and output are the rendered fields and the
-- result, secrets masked; attachments a JSON list of {name, content_type, bytes, encoding, body}.
CREATE TABLE playbook_steps (
    run_id      TEXT             NOT NULL REFERENCES playbook_runs (id) ON DELETE CASCADE,
    seq         BIGINT           NOT NULL CHECK (seq >= 0),
    name        TEXT             NOT NULL,
    kind        TEXT             NOT NULL,
    phase       TEXT             NOT NULL CHECK (phase IN ('steps', 'rollback')),
    status      TEXT             NOT NULL CHECK (status IN ('ok', 'failed', 'skipped', 'planned')),
    description TEXT             NOT NULL,
    input       JSONB            NOT NULL,
    output      JSONB            NOT NULL,
    error       TEXT,
    approver    TEXT,
    started_at  TIMESTAMPTZ      NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL,
    attachments JSONB            NOT NULL,
    PRIMARY KEY (run_id, seq)
);
