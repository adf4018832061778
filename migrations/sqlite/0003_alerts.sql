-- patrol store, SQLite flavour: alerting (issue #4). The PostgreSQL folder holds the same logical
-- schema. Timestamps are fixed-format UTC text, as in 0001; JSON is stored as text.

-- The lifecycle state of each alert (a check's series, or a service score), as JSON. It is written
-- in the same transaction as the notifications its change produced.
CREATE TABLE alerts (
    fingerprint TEXT NOT NULL PRIMARY KEY,
    state       TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

-- The durable outbox: every notification waits here until its receiver accepted it (`sent`),
-- refused it for good (`dead`, with the reason in last_error) or it was merged into a digest
-- because its receiver's rate budget ran out (`folded`, folded_into naming the digest).
CREATE TABLE notifications (
    id              INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    receiver        TEXT    NOT NULL CHECK (receiver <> ''),
    group_key       TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL UNIQUE CHECK (idempotency_key <> ''),
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'dead', 'folded')),
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at TEXT    NOT NULL,
    last_error      TEXT,
    created_at      TEXT    NOT NULL,
    sent_at         TEXT,
    folded_into     INTEGER REFERENCES notifications (id)
) STRICT;

-- The sender's query: pending rows whose next attempt is due, oldest first.
CREATE INDEX notifications_due ON notifications (status, next_attempt_at, id);

-- Silences made through the API or the CLI; matchers are JSON.
CREATE TABLE silences (
    id         TEXT NOT NULL PRIMARY KEY,
    matchers   TEXT NOT NULL,
    starts_at  TEXT NOT NULL,
    ends_at    TEXT NOT NULL,
    created_by TEXT NOT NULL,
    comment    TEXT NOT NULL
) STRICT;

CREATE INDEX silences_ends_at ON silences (ends_at);
