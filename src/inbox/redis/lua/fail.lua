-- Ends a claim whose handler failed: the event waits to retry after `delay`, or is a dead
-- letter. Built as flags/allow_oom.lua, prelude.lua, held.lua, this file.
--
-- KEYS[1] stream      the queue
-- KEYS[2] retry       failed events by due time
-- KEYS[3] dead        dead letters
-- ARGV[1] group       the consumer group
-- ARGV[2] consumer    this store's consumer name
-- ARGV[3] entry       the claim's stream entry
-- ARGV[4] deliveries  the entry's delivery count when it was claimed
-- ARGV[5] delay       when the retry is due from now, in ms; -1: dead
-- ARGV[6] error       the handler's error, kept with the event
-- ARGV[7] parked      the start of every parked event's key
--
-- Returns 1 if failed, 0 if the claim no longer holds.
local f = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])[1][2]
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
local m, t, delay = f[2], now(), tonumber(ARGV[5])
redis.call(unpack(recovered({'HSET', ARGV[7] .. m, 't', f[4], 'b', f[6],
  'a', int(tonumber(f[8]) + deliveries), 'err', ARGV[6], 'at', int(t)}, f[10])))
if delay >= 0 then
  redis.call('ZADD', KEYS[2], int(t + delay), m)
else
  redis.call('ZADD', KEYS[3], 0, m)
end
return 1
