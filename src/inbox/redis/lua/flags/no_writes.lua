#!lua flags=no-writes,allow-oom
-- The first line of a script that only reads: Redis reads a script's flags from its first
-- line. no-writes: the script writes nothing; allow-oom: Redis runs it when it is out of
-- memory.
