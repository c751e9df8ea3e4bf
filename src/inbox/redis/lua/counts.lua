-- Counts the events in each state, as one snapshot. The stream holds exactly the queued
-- entries not yet read and the claimed ones (the group's pending list). Built as
-- flags/no_writes.lua, prelude.lua, this file.
--
-- KEYS[1] stream  the queue
-- KEYS[2] retry   failed events by due time
-- KEYS[3] dead    dead letters
-- KEYS[4] done    handled events
-- ARGV[1] group   the consumer group
--
-- Returns {queued, in flight, dead, done}.
local pending = 0
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1])
if type(p) == 'table' and type(p[1]) == 'number' then pending = p[1] end
local queued = redis.call('XLEN', KEYS[1]) - pending + redis.call('ZCARD', KEYS[2])
return {queued, pending, redis.call('ZCARD', KEYS[3]), redis.call('LLEN', KEYS[4])}
