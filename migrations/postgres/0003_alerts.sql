-- patrol store, PostgreSQL flavour: alerting (issue #4). The SQLite folder holds the same logical
-- schema.

-- The lifecycle state of each alert (a check's series, or a service score), as JSON. It is written
-- in the same transaction as the notifications its change produced.
CREATE TABLE alerts (
    fingerprint TEXT        NOT NULL PRIMARY KEY,
    state       JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- The durable outbox: every notification waits here until its receiver accepted it (`sent`),
-- refused it for good (`dead`, with the reason in last_error) or it was merged into a digest
-- because its receiver's rate budget ran out (`folded`, folded_into naming the digest).
CREATE TABLE notifications (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    receiver        TEXT        NOT NULL CHECK (receiver <> ''),
    group_key       TEXT        NOT NULL,
    idempotency_key TEXT        NOT NULL UNIQUE CHECK (idempotency_key <> ''),
    payload         JSONB       NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('pending', 'sent', 'dead', 'folded')),
    attempts        BIGINT      NOT NULL CHECK (attempts >= 0),
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    sent_at         TIMESTAMPTZ,
    folded_into     BIGINT REFERENCES notifications (id)
);

-- The sender's query: pending rows whose next attempt is due, oldest first.
CREATE INDEX notifications_due ON notifications (status, next_attempt_at, id);

-- Silences made through the API or the CLI; matchers are JSON.
CREATE TABLE silences (
    id         TEXT        NOT NULL PRIMARY KEY,
    matchers   JSONB       NOT NULL,
    starts_at  TIMESTAMPTZ NOT NULL,
    ends_at    TIMESTAMPTZ NOT NULL,
    created_by TEXT        NOT NULL,
    comment    TEXT        NOT NULL
);

CREATE INDEX silences_ends_at ON silences (ends_at);
