--[[
  complete: removes finished jobs and frees their keys, each only if its token still holds the
  job's live lease; then, when ARGV[3] > 0, claims up to ARGV[3] jobs for ARGV[4] ms in the same step.
    ARGV[5..] pairs: job id, fencing token
  Returns { per pair 1 = completed | 0 = stale token or expired lease, claim result (only when fetching) }.
]]
local flags = {}
for i = 5, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  if fenced(id, token) then
    local key = rcall('HGET', JP .. id, 'k')
    rcall('ZREM', A, id)
    rcall('DEL', JP .. id)
    releaseKey(id, key)
    flags[#flags + 1] = 1
  else
    flags[#flags + 1] = 0
  end
end
local fetch = tonumber(ARGV[3])
if fetch > 0 then
  return { flags, claim(fetch, tonumber(ARGV[4])) }
end
return { flags }
