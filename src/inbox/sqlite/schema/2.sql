-- Version 2: events recovered from Authgear's audit log. The events already stored were
-- deliveries: recovered = 0.
ALTER TABLE inbox ADD COLUMN recovered INTEGER NOT NULL DEFAULT 0;
