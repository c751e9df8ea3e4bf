-- Sets a catch-up checkpoint if `holder` holds the lease of the same name (unexpired: an
-- expired lease's key is gone). Built as flags/allow_oom.lua, prelude.lua, this file.
--
-- KEYS[1] lease        the lease's key: its holder, while it holds
-- KEYS[2] checkpoints  the checkpoints, name to Unix ms
-- ARGV[1] holder       who sets it
-- ARGV[2] name         the checkpoint's name
-- ARGV[3] at           the checkpoint, in Unix ms
--
-- Returns 1 if set, 0 if `holder` does not hold the lease (nothing changed).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
