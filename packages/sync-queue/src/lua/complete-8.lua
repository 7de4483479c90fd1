--[[
  complete: finishes jobs and frees their keys, each only if its token still holds the job's live
  lease; trims the kept completed jobs; then, when ARGV[3] > 0, claims up to ARGV[3] jobs for
  ARGV[4] ms, all in the same step.
    ARGV[5] completed jobs to keep; 0 deletes each finished job (and trims any kept earlier)
    ARGV[6] keep only completions younger than this many ms, or '' for no age limit
    ARGV[7..] pairs: job id, fencing token
  Returns { per pair 1 = completed | 0 = stale token or expired lease, claim result (only when fetching) }.
]]
local keepCount = tonumber(ARGV[5])
local keepAgeMs = tonumber(ARGV[6])
local flags = {}
local kept = 0
for i = 7, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  if fenced(id, token) then
    local jk = JP .. id
    local key = rcall('HGET', jk, 'k')
    rcall('ZREM', A, id)
    if keepCount > 0 then
      rcall('HSET', jk, 'tk', '', 'ca', NOW)
      rcall('ZADD', C, NOW, id)
      kept = kept + 1
    else
      rcall('DEL', jk)
    end
    releaseKey(id, key)
    flags[#flags + 1] = 1
  else
    flags[#flags + 1] = 0
  end
end
-- Trimming deletes at most what this call kept plus 1,000, so one script never blocks Redis for
-- long after the retention shrinks; the following completions catch up.
if keepCount > 0 or rcall('EXISTS', C) == 1 then
  local budget = kept + 1000
  local function drop(ids)
    for _, id in ipairs(ids) do
      rcall('DEL', JP .. id)
      rcall('ZREM', C, id)
    end
    budget = budget - #ids
  end
  if keepAgeMs then
    drop(rcall('ZRANGEBYSCORE', C, '-inf', NOW - keepAgeMs, 'LIMIT', 0, budget))
  end
  local excess = rcall('ZCARD', C) - keepCount
  if excess > 0 and budget > 0 then
    drop(rcall('ZRANGE', C, 0, math.min(excess, budget) - 1))
  end
end
local fetch = tonumber(ARGV[3])
if fetch > 0 then
  return { flags, claim(fetch, tonumber(ARGV[4])) }
end
return { flags }
