--[[
  add: stores jobs; a job whose key already has a job in its pending slot replaces that job's
  payload instead (coalescing).
    ARGV[3..] groups of 4: key ('' for none), payload, delay in ms, runs allowed
  Returns a flat array: id, coalesced (1/0) per job, in order.
]]
local out = {}
for i = 3, #ARGV, 4 do
  local key, payload, delay, maxAttempts = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local coalesced = false
  if key ~= '' then
    local pid = rcall('HGET', P, key)
    if pid then
      if unfinished(pid) then
        rcall('HSET', JP .. pid, 'p', payload, 'ma', maxAttempts)
        out[#out + 1] = pid
        out[#out + 1] = 1
        coalesced = true
      else
        rcall('HDEL', P, key)
      end
    end
  end
  if not coalesced then
    local id = tostring(rcall('INCR', SEQ))
    local runAt = NOW + delay
    rcall('HSET', JP .. id, 'p', payload, 'at', 0, 'ma', maxAttempts, 'ct', NOW, 'ra', runAt, 'tk', '')
    if key ~= '' then
      rcall('HSET', JP .. id, 'k', key)
      enqueueKeyed(id, key, runAt)
    else
      enqueueKeyed(id, false, runAt)
    end
    out[#out + 1] = id
    out[#out + 1] = 0
  end
end
return out
