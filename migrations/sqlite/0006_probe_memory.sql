-- patrol store, SQLite flavour: probe memory. The PostgreSQL folder holds the same logical schema.

-- What a check's probe keeps from one run to the next (the restart counts behind the kubernetes
-- value restarts_increase), written with the run that produced it. One row per check, replaced
-- whole; `fingerprint` is the check's measure fingerprint at the time: a check whose measuring
-- settings changed since ignores the row and starts afresh. `state` is JSON text.
CREATE TABLE probe_memory (
    check_name  TEXT NOT NULL PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    state       TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;
