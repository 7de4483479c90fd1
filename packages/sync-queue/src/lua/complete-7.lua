--[[
  complete: removes a finished job and frees its key, if ARGV[4] holds the live lease on job ARGV[3].
  Then, when ARGV[5] > 0, claims up to ARGV[5] jobs for ARGV[6] ms in the same step.
  Returns { 1 = completed | 0 = stale token or expired lease, claim result (only when fetching) }.
]]
local id, token = ARGV[3], ARGV[4]
local ok = 0
if fenced(id, token) then
  local key = rcall('HGET', JP .. id, 'k')
  rcall('ZREM', A, id)
  rcall('DEL', JP .. id)
  releaseKey(id, key)
  ok = 1
end
local fetch = tonumber(ARGV[5])
if fetch > 0 then
  return { ok, claim(fetch, tonumber(ARGV[6])) }
end
return { ok }
