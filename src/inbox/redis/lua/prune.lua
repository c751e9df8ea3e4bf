-- Removes up to `max` events handled before `before`, the oldest first (`done` is in the
-- order of Redis's clock), and ends their deduplication. Built as flags/allow_oom.lua,
-- prelude.lua, this file.
--
-- KEYS[1] done      handled events, as `time:member`, in the order they were handled
-- KEYS[2] seen      the deduplication hash
-- KEYS[3] bytes     the size estimate
-- ARGV[1] before    remove the events handled before this, in Unix ms
-- ARGV[2] max       the most events to remove
-- ARGV[3] overhead  the bytes counted per event besides its body, type and key
--
-- Returns how many were removed.
local members, freed = {}, 0
for _, e in ipairs(redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)) do
  local colon = string.find(e, ':', 1, true)
  if tonumber(string.sub(e, 1, colon - 1)) >= tonumber(ARGV[1]) then break end
  local m = string.sub(e, colon + 1)
  members[#members + 1] = m
  freed = freed + tonumber(ARGV[3]) + 2 * #m
end
if #members > 0 then
  redis.call('LTRIM', KEYS[1], #members, -1)
  redis.call('HDEL', KEYS[2], unpack(members))
  redis.call('DECRBY', KEYS[3], freed)
end
return #members
