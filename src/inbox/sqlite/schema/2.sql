-- Version 2: events recovered from Authgear's audit log, and the catch-up's leases and
-- checkpoints. The events already stored were deliveries: recovered = 0.
ALTER TABLE inbox ADD COLUMN recovered INTEGER NOT NULL DEFAULT 0;
-- One row per lease name: who holds the lease and until when, and the checkpoint of the
-- same name (where the catch-up has read up to).
CREATE TABLE catchup (
    name           TEXT    NOT NULL PRIMARY KEY,
    -- NULL when nobody holds the lease.
    holder         TEXT,
    -- Unix ms, the process's clock: the lease is held until then.
    lease_until_ms INTEGER,
    -- Unix ms; NULL before it was first set.
    checkpoint_ms  INTEGER
);
