--[[
  fail: records a failed run of job ARGV[3] if ARGV[4] holds its live lease.
    ARGV[5] last error text
    ARGV[6] retry delay in ms, or '' to dead-letter the job
  A retried job keeps owning its key, so later changes of the key wait behind it.
  Returns 1 = retried, 2 = dead, 0 = stale token or expired lease.
]]
local id, token = ARGV[3], ARGV[4]
if not fenced(id, token) then return 0 end
rcall('ZREM', A, id)
local jk = JP .. id
if ARGV[6] == '' then
  toDead(id, rcall('HGET', jk, 'k'), ARGV[5])
  return 2
end
local runAt = NOW + tonumber(ARGV[6])
rcall('HSET', jk, 'tk', '', 'e', ARGV[5], 'ra', runAt)
rcall('ZADD', Q, runAt, id)
return 1
