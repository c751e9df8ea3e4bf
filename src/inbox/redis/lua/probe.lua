-- Whether the store can take an event now, as store.lua would answer it: room for the
-- least event under its max size, and a write. Built as flags/none.lua (as store.lua: Redis
-- refuses it whole, before it runs, when it cannot write or is out of memory),
-- prelude.lua, this file.
--
-- KEYS[1] bytes     the size estimate
-- KEYS[2] probe     the probe's own key, written for a moment
-- ARGV[1] max size  the most the store may hold, in bytes
-- ARGV[2] least     the bytes the least event counts for (empty key, type and body)
-- ARGV[3] ttl       how long the probe's key lives, in ms
--
-- Returns 1; the error FULL if even the least event would take the store past its max
-- size (store.lua's test, with the least cost).
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[2]) > tonumber(ARGV[1]) then
  return redis.error_reply('FULL the inbox store is at its maximum size')
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
return 1
