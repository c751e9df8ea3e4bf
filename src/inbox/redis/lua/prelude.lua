-- The start of every script, after its flags: Redis's clock in Unix ms, and integers as
-- Redis arguments.
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function int(n) return string.format('%d', n) end
