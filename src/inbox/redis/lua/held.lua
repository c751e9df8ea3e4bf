-- The start of the scripts that act on one claim (extend.lua, fail.lua, release.lua),
-- after the prelude: they answer 0 unless the claim still holds, that is the entry is
-- pending to this consumer with this delivery count, which is then `deliveries`.
--
-- KEYS[1] stream      the queue
-- ARGV[1] group       the consumer group
-- ARGV[2] consumer    this store's consumer name
-- ARGV[3] entry       the claim's stream entry
-- ARGV[4] deliveries  the entry's delivery count when it was claimed
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)[1]
if not p or p[2] ~= ARGV[2] or p[4] ~= tonumber(ARGV[4]) then return 0 end
local deliveries = p[4]
