--[[
  fail: records a failed run of job ARGV[3] if ARGV[4] holds its live lease.
    ARGV[5] last error text
    ARGV[6] retry delay in ms, or '' to dead-letter the job
  A retried job keeps owning its key, so later changes of the key wait behind it.
  Returns 1 = retried, 2 = dead, 0 = stale token or expired lease.
]]
local id, token = ARGV[3], ARGV[4]
-- Checked before any write: a script that errors midway keeps its earlier writes, and a job taken
-- out of the leased set but never rescheduled would be lost (and its key blocked for ever).
local retryIn = nil
if ARGV[6] ~= '' then
  retryIn = tonumber(ARGV[6])
  if not retryIn or retryIn ~= retryIn or retryIn < 0 or retryIn == math.huge then
    return redis.error_reply('ERR sync-queue: retry delay must be a finite number >= 0')
  end
end
if not fenced(id, token) then return 0 end
rcall('ZREM', A, id)
local jk = JP .. id
if not retryIn then
  toDead(id, rcall('HGET', jk, 'k'), ARGV[5])
  return 2
end
local runAt = NOW + retryIn
rcall('HSET', jk, 'tk', '', 'e', ARGV[5], 'ra', runAt)
rcall('ZADD', Q, runAt, id)
return 1
