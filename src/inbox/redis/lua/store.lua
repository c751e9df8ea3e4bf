-- Stores a new event, queued and due now, unless an event with its key is stored already.
-- Built as flags/none.lua, prelude.lua, this file.
--
-- KEYS[1] seen      the deduplication hash
-- KEYS[2] stream    the queue
-- KEYS[3] bytes     the size estimate
-- ARGV[1] member    the event's key, as a member
-- ARGV[2] type      the event's type
-- ARGV[3] body      the event's body
-- ARGV[4] max size  the most the store may hold, in bytes
-- ARGV[5] overhead  the bytes counted per event besides its body, type and key
-- ARGV[6] recovered 1 if the event was recovered from the audit log, else 0
--
-- Returns 1 if stored, 0 if the key is stored already; the error FULL if the event would
-- take the store past its max size.
if redis.call('HSETNX', KEYS[1], ARGV[1], 'q') == 0 then return 0 end
local cost = tonumber(ARGV[5]) + 2 * #ARGV[1] + #ARGV[2] + #ARGV[3]
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
if used + cost > tonumber(ARGV[4]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return redis.error_reply('FULL the inbox store is at its maximum size')
end
redis.call(unpack(recovered(
  {'XADD', KEYS[2], '*', 'm', ARGV[1], 't', ARGV[2], 'b', ARGV[3], 'a', '0'}, ARGV[6])))
redis.call('INCRBY', KEYS[3], cost)
return 1
