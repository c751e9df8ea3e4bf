-- Marks a batch of claimed events handled. Built as flags/allow_oom.lua, prelude.lua, this
-- file.
--
-- KEYS[1] stream          the queue
-- KEYS[2] retry           failed events by due time
-- KEYS[3] dead            dead letters
-- KEYS[4] seen            the deduplication hash
-- KEYS[5] done            handled events, in the order they were handled
-- KEYS[6] bytes           the size estimate
-- ARGV[1] group           the consumer group
-- ARGV[2] parked          the start of every parked event's key
-- then for each event i to ack (from 1):
-- ARGV[3 * i]     entry   its claim's stream entry
-- ARGV[3 * i + 1] member  its key, as a member
-- ARGV[3 * i + 2] size    the bytes of its type and body
--
-- Returns one 0 or 1 per event, in order: 1 if it is now handled.
local stream, group = KEYS[1], ARGV[1]
local n = (#ARGV - 2) / 3
local function arg(i, k) return ARGV[3 * i + k] end
-- Each entry once, in one XACK: in the usual case every one was pending, and is acked.
local first, entries = {}, {}
for i = 1, n do
  local entry = arg(i, 0)
  if not first[entry] then
    first[entry] = i
    entries[#entries + 1] = entry
  end
end
local acked, pending = redis.call('XACK', stream, group, unpack(entries)), {}
for _, entry in ipairs(entries) do
  -- Not all: the entries still in the stream were pending (read, so not new).
  pending[entry] = acked == #entries or (acked > 0 and #redis.call('XRANGE', stream, entry, entry) > 0)
end
local out, handled, deleted, done, freed, at = {}, {}, {}, {}, 0, int(now()) .. ':'
for i = 1, n do
  local entry, m = arg(i, 0), arg(i, 1)
  local ok = false
  if handled[m] or first[entry] ~= i then
    -- Given twice in this batch: acked the first time only.
  elseif pending[entry] then
    ok = true
    deleted[#deleted + 1] = entry
  elseif redis.call('ZSCORE', KEYS[2], m) then
    -- A stale claim of an event waiting to retry: handled all the same.
    redis.call('ZREM', KEYS[2], m)
    redis.call('DEL', ARGV[2] .. m)
    ok = true
  elseif not redis.call('ZSCORE', KEYS[3], m) then
    -- A stale claim of an event queued again as another entry.
    local latest = redis.call('HGET', KEYS[4], m)
    if latest and latest ~= 'q' and latest ~= entry
      and #redis.call('XRANGE', stream, latest, latest) > 0 then
      redis.call('XACK', stream, group, latest)
      deleted[#deleted + 1] = latest
      ok = true
    end
  end
  if ok then
    handled[m] = true
    done[#done + 1] = at .. m
    freed = freed + tonumber(arg(i, 2))
  end
  out[i] = ok and 1 or 0
end
if #deleted > 0 then redis.call('XDEL', stream, unpack(deleted)) end
if #done > 0 then
  redis.call('RPUSH', KEYS[5], unpack(done))
  redis.call('DECRBY', KEYS[6], freed)
end
return out
