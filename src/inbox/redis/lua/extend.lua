-- Moves a claim's deadline to `claim for` from now. Built as flags/allow_oom.lua,
-- prelude.lua, held.lua, this file.
--
-- KEYS[1] stream      the queue
-- KEYS[2] next        when a claim deadline may next pass
-- ARGV[1] group       the consumer group
-- ARGV[2] consumer    this store's consumer name
-- ARGV[3] entry       the claim's stream entry
-- ARGV[4] deliveries  the entry's delivery count when it was claimed
-- ARGV[5] claim for   how long the claim holds from now, in ms
-- ARGV[6] window      the delivery time is this many ms before the deadline
--
-- Returns 1 if extended, 0 if the claim no longer holds.
local deadline = now() + tonumber(ARGV[5])
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3],
  'TIME', int(deadline - tonumber(ARGV[6])), 'JUSTID')
if deadline < tonumber(redis.call('GET', KEYS[2]) or '0') then
  redis.call('SET', KEYS[2], int(deadline))
end
return 1
