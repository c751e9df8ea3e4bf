-- The start of every script, after its flags: Redis's clock in Unix ms, integers as Redis
-- arguments, and an event's recovered mark.
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function int(n) return string.format('%d', n) end
-- `command` (a list: the command and its arguments, ending with an event's fields) with the
-- field r = 1 added when `r` is '1': the event was recovered from the audit log. Absent, it
-- was delivered (events stored before the mark existed included).
local function recovered(command, r)
  if r == '1' then
    command[#command + 1] = 'r'
    command[#command + 1] = '1'
  end
  return command
end
