-- Ends a claim without an attempt: the event is queued again, as a new entry. Built as
-- flags/allow_oom.lua, prelude.lua, held.lua, this file.
--
-- KEYS[1] stream      the queue
-- KEYS[2] seen        the deduplication hash
-- ARGV[1] group       the consumer group
-- ARGV[2] consumer    this store's consumer name
-- ARGV[3] entry       the claim's stream entry
-- ARGV[4] deliveries  the entry's delivery count when it was claimed
--
-- Returns 1 if released, 0 if the claim no longer holds.
local f = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])[1][2]
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
-- This claim is not an attempt.
local before = math.max(tonumber(f[8]) + deliveries - 1, 0)
local entry = redis.call(unpack(recovered(
  {'XADD', KEYS[1], '*', 'm', f[2], 't', f[4], 'b', f[6], 'a', int(before)}, f[10])))
redis.call('HSET', KEYS[2], f[2], entry)
return 1
