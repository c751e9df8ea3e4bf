#!lua
-- The first line of a script that takes memory: Redis reads a script's flags from its
-- first line. No flags: Redis refuses the script whole, before it runs, when it cannot
-- write (read-only, cannot persist) or is out of memory.
