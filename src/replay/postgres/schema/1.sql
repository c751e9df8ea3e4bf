-- Version 1. `{schema}` and `{prefix}` are the store's schema and table prefix (plain
-- lower-case identifiers, checked before they are put here).
CREATE TABLE {schema}.{prefix}replay (
    -- The delivery: endpoint and id. "C": compared as bytes, whatever the collation.
    key        text COLLATE "C" PRIMARY KEY,
    -- Replay protection's value: a claim in flight, or the first copy's answer.
    value      bytea       NOT NULL,
    -- The database's clock: the end of the replay window. A row past it counts as absent
    -- and is swept now and then.
    expires_at timestamptz NOT NULL
);
CREATE INDEX {prefix}replay_expires ON {schema}.{prefix}replay (expires_at);
