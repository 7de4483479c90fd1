--[[
  dead-retry: moves dead letter ARGV[3] back to waiting with its runs reset. If a newer job of
  the same key already waits in the key's pending slot, that job supersedes the dead one (latest
  payload wins) and the dead one is deleted.
  Returns the id that will run, or nil when ARGV[3] is not a dead letter.
]]
local id = ARGV[3]
if rcall('ZREM', D, id) == 0 then return false end
local jk = JP .. id
if rcall('EXISTS', jk) == 0 then return false end
local key = rcall('HGET', jk, 'k')
rcall('HSET', jk, 'at', 0, 'tk', '', 'e', '', 'ra', NOW)
if key then
  local pid = rcall('HGET', P, key)
  if pid and pid ~= id and unfinished(pid) then
    rcall('DEL', jk)
    return pid
  end
end
enqueueKeyed(id, key, NOW)
return id
