-- Claims up to `max` events for this consumer: first those whose claim deadline passed
-- (when one may have), then the retries that are due, then new entries. Built as
-- flags/allow_oom.lua, prelude.lua, this file.
--
-- KEYS[1] stream          the queue
-- KEYS[2] retry           failed events by due time
-- KEYS[3] seen            the deduplication hash
-- KEYS[4] next            when a claim deadline may next pass
-- KEYS[5] cursor          where XAUTOCLAIM goes on
-- KEYS[6] cleanup         the lock for removing leftover consumers
-- KEYS[7] older stream    0.1.0's stream
-- KEYS[8] older retry     0.1.0's retry
-- KEYS[9] older dead      0.1.0's dead
-- ARGV[1] group           the consumer group
-- ARGV[2] consumer        this store's consumer name
-- ARGV[3] max             the most events to claim
-- ARGV[4] claim for       how long the claims hold, in ms
-- ARGV[5] window          the delivery time is this many ms before the deadline
-- ARGV[6] parked          the start of every parked event's key
-- ARGV[7] idle consumers  how long a consumer with nothing pending may stay idle, in ms
-- ARGV[8] reclaim every   the longest wait for the next full XAUTOCLAIM pass, in ms
--
-- Returns one row per event: entry, delivery count, member, type, body, attempt, recovered
-- (1 or 0). The error OLDER while 0.1.0's keys hold events.
local stream, group, me = KEYS[1], ARGV[1], ARGV[2]
local max, window, t = tonumber(ARGV[3]), tonumber(ARGV[5]), now()
local deadline = t + tonumber(ARGV[4])
local out, ids = {}, {'XCLAIM', stream, group, me, 0}
local function take(e, deliveries)
  local f = e[2]
  local r = f[10] == '1' and 1 or 0
  out[#out + 1] = {e[1], deliveries, f[2], f[4], f[6], tonumber(f[8]) + deliveries, r}
  ids[#ids + 1] = e[1]
end
-- Claims whose deadline passed (a dead instance's), when one may have.
local reclaim_at = tonumber(redis.call('GET', KEYS[4]) or '0')
if reclaim_at <= t then
  -- Events acknowledged by 0.1.0 would never be handled here: say so until they are gone.
  if redis.call('XLEN', KEYS[7]) + redis.call('ZCARD', KEYS[8]) + redis.call('ZCARD', KEYS[9]) > 0 then
    return redis.error_reply('OLDER events of the 0.1.0 layout are waiting')
  end
  local r = redis.pcall('XAUTOCLAIM', stream, group, me, window,
    redis.call('GET', KEYS[5]) or '0-0', 'COUNT', max)
  if r[1] then
    redis.call('SET', KEYS[5], r[1])
    for _, e in ipairs(r[2]) do
      if type(e) == 'table' and type(e[2]) == 'table' then
        take(e, redis.call('XPENDING', stream, group, e[1], e[1], 1)[1][4])
      end
    end
    -- A whole pass: the next one within a second, or at an earlier deadline.
    if r[1] == '0-0' then
      reclaim_at = t + tonumber(ARGV[8])
      redis.call('SET', KEYS[4], int(reclaim_at))
    end
    -- Leftover consumers, by one instance at a time.
    local idle = tonumber(ARGV[7])
    if redis.call('SET', KEYS[6], me, 'NX', 'PX', ARGV[7]) then
      for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', stream, group)) do
        local info = {}
        for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
        if info['name'] ~= me and info['pending'] == 0 and info['idle'] >= idle then
          redis.call('XGROUP', 'DELCONSUMER', stream, group, info['name'])
        end
      end
    end
  end
end
-- Retries that are due join the stream.
if #out < max then
  local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', int(t), 'LIMIT', 0, max - #out)
  for _, m in ipairs(due) do
    local key = ARGV[6] .. m
    local f = redis.call('HMGET', key, 't', 'b', 'a', 'r')
    local entry = redis.call(unpack(recovered(
      {'XADD', stream, '*', 'm', m, 't', f[1], 'b', f[2], 'a', f[3]}, f[4])))
    redis.call('HSET', KEYS[3], m, entry)
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[2], m)
  end
end
-- New entries, oldest first; the group is made on the first claim.
if #out < max then
  local read = {'XREADGROUP', 'GROUP', group, me, 'COUNT', max - #out, 'STREAMS', stream, '>'}
  local new = redis.pcall(unpack(read))
  if type(new) == 'table' and new.err then
    redis.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
    new = redis.call(unpack(read))
  end
  if new then
    for _, e in ipairs(new[1][2]) do take(e, 1) end
  end
end
-- The deadline, as the delivery time `window` before it.
if #out > 0 then
  ids[#ids + 1] = 'TIME'
  ids[#ids + 1] = int(deadline - window)
  ids[#ids + 1] = 'JUSTID'
  redis.call(unpack(ids))
  if deadline < reclaim_at then redis.call('SET', KEYS[4], int(deadline)) end
end
return out
