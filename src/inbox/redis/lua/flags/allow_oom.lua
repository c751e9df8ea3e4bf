#!lua flags=allow-oom
-- The first line of a script that frees memory or takes little: Redis reads a script's
-- flags from its first line. allow-oom: Redis runs the script when it is out of memory,
-- and refuses it whole, before it runs, when it cannot write (read-only, cannot persist).
