-- Version 1: the schema release 0.1.0 created (as `CREATE ... IF NOT EXISTS`, at every
-- open, without a version). A file it wrote is taken as version 1 without running this.
CREATE TABLE inbox (
    endpoint    TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    body        BLOB    NOT NULL,
    -- 0 queued, 1 claimed, 2 done, 3 dead
    state       INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    -- Unix ms: when due (queued), the claim deadline (claimed), when done or dead.
    due_at      INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    token       INTEGER,
    last_error  TEXT,
    PRIMARY KEY (endpoint, id)
);
CREATE INDEX inbox_state_due ON inbox (state, due_at);
