-- Gives up a catch-up lease if `holder` holds it. Built as flags/allow_oom.lua,
-- prelude.lua, this file.
--
-- KEYS[1] lease   the lease's key: its holder, while it holds
-- ARGV[1] holder  who gives it up
--
-- Returns 1 if the lease was given up, 0 if `holder` did not hold it.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
