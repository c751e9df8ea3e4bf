-- Queues a dead letter again, as a new event (its attempts start again). Built as
-- flags/none.lua, prelude.lua, this file.
--
-- KEYS[1] stream  the queue
-- KEYS[2] dead    dead letters
-- KEYS[3] seen    the deduplication hash
-- ARGV[1] member  the event's key, as a member
-- ARGV[2] parked  the start of every parked event's key
--
-- Returns 1 if queued again, 0 if the event is not a dead letter.
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
local key = ARGV[2] .. ARGV[1]
local f = redis.call('HMGET', key, 't', 'b', 'r')
local entry = redis.call(unpack(recovered(
  {'XADD', KEYS[1], '*', 'm', ARGV[1], 't', f[1], 'b', f[2], 'a', '0'}, f[3])))
redis.call('HSET', KEYS[3], ARGV[1], entry)
redis.call('DEL', key)
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
