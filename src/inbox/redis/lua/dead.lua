-- Lists dead letters in key order, one page. Built as flags/no_writes.lua, prelude.lua,
-- this file.
--
-- KEYS[1] dead    dead letters, in key order
-- ARGV[1] start   where the page starts, as ZRANGEBYLEX reads it
-- ARGV[2] max     the most dead letters to list
-- ARGV[3] parked  the start of every parked event's key
--
-- Returns one row per dead letter: member, type, attempts, died at (Unix ms), last error.
local out = {}
for _, m in ipairs(redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], '+', 'LIMIT', 0, ARGV[2])) do
  local f = redis.call('HMGET', ARGV[3] .. m, 't', 'a', 'at', 'err')
  if f[1] then
    out[#out + 1] = {m, f[1], tonumber(f[2] or '0'), tonumber(f[3] or '0'), f[4]}
  end
end
return out
