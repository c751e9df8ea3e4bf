-- Takes or renews a catch-up lease for `holder`, until `ttl` from now (Redis's clock: the
-- key expires then). Built as flags/allow_oom.lua, prelude.lua, this file.
--
-- KEYS[1] lease   the lease's key: its holder, while it holds
-- ARGV[1] holder  who asks for it
-- ARGV[2] ttl     how long it holds from now, in ms (at least 1)
--
-- Returns 1 if `holder` holds the lease now, 0 if another holder's has not expired.
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
