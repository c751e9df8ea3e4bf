-- Version 1. `{schema}` and `{prefix}` are the store's schema and table prefix (plain
-- lower-case identifiers, checked before they are put here).
CREATE TABLE {schema}.{prefix}inbox (
    -- "C": keys compare as bytes, as on the other stores (dead letters are listed in
    -- key order), whatever the database's collation.
    endpoint    text COLLATE "C" NOT NULL,
    id          text COLLATE "C" NOT NULL,
    type        text        NOT NULL,
    body        bytea       NOT NULL,
    -- 0 queued, 1 claimed, 2 done, 3 dead
    state       smallint    NOT NULL,
    attempts    integer     NOT NULL DEFAULT 0,
    -- The database's clock: when due (queued), the claim deadline (claimed), when done
    -- or dead.
    due_at      timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    -- The claim's token while claimed.
    token       bigint,
    last_error  text,
    -- Recovered from Authgear's audit log, not delivered: its body is not signed bytes.
    recovered   boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (endpoint, id)
);
-- Claims: what is due, queued or claimed, oldest first.
CREATE INDEX {prefix}inbox_due ON {schema}.{prefix}inbox (due_at) WHERE state IN (0, 1);
-- Pruning: handled events by when they were handled.
CREATE INDEX {prefix}inbox_done ON {schema}.{prefix}inbox (due_at) WHERE state = 2;
-- Dead letters in key order.
CREATE INDEX {prefix}inbox_dead ON {schema}.{prefix}inbox (endpoint, id) WHERE state = 3;
-- The catch-up's leases and checkpoints: one row per name, who holds the lease and until
-- when (the database's clock), and where the catch-up has read up to.
CREATE TABLE {schema}.{prefix}catchup (
    name          text COLLATE "C" PRIMARY KEY,
    -- NULL when nobody holds the lease.
    holder        text,
    lease_until   timestamptz,
    -- Unix ms; NULL before it was first set.
    checkpoint_ms bigint
);
