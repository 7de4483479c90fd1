--[[
  Shared prelude, prepended to every script of @postern/sync-queue (not a command by itself).
  Every script takes the same 8 keys, all sharing one {hash tag} so a queue lives in one
  Redis Cluster slot:
    KEYS[1] q    zset  waiting and delayed job ids, score = time the job may run (ms)
    KEYS[2] a    zset  leased job ids, score = lease deadline (ms)
    KEYS[3] d    zset  dead-letter ids, score = time of death (ms)
    KEYS[4] b    set   ids waiting in a key's pending slot while the key's owner has not finished
    KEYS[5] p    hash  key -> id of the job in the key's single pending slot
    KEYS[6] o    hash  key -> id of the job that owns the key (running or backing off)
    KEYS[7] seq  str   counter for job ids and fencing tokens
    KEYS[8] c    zset  completed job ids kept for inspection, score = time of completion (ms)
  and the same first two arguments:
    ARGV[1] prefix of job hashes (a job lives in hash ARGV[1] .. id, same hash tag)
    ARGV[2] current time in ms, or '' to use the Redis server's TIME (one clock for all workers)
  Job hash fields: p payload, k key (absent when none), at runs so far, ma runs allowed,
  ct created at, ra may run at, tk fencing token of the live lease ('' when none), e last error,
  fa time of death, ca time of completion (kept completed jobs only).
]]
local rcall = redis.call
local Q, A, D, B, P, O, SEQ, C = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local JP = ARGV[1]
local NOW
if ARGV[2] ~= '' then
  NOW = tonumber(ARGV[2])
else
  local t = rcall('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- True when job id exists and has not completed: a kept completed job owns no key and absorbs no
-- change, even if stray key state points at it.
local function unfinished(id)
  local f = rcall('HMGET', JP .. id, 'ct', 'ca')
  return f[1] ~= false and f[2] == false
end

-- Puts a job that is not running into its key's pending slot (blocked while the key is owned
-- by another live job) or straight into the waiting set.
local function enqueueKeyed(id, key, runAt)
  if not key then
    rcall('ZADD', Q, runAt, id)
    return
  end
  rcall('HSET', P, key, id)
  local owner = rcall('HGET', O, key)
  if owner and owner ~= id and unfinished(owner) then
    rcall('SADD', B, id)
  else
    -- An owner whose job no longer exists (or completed) can never release the key: drop it here.
    if owner then rcall('HDEL', O, key) end
    rcall('ZADD', Q, runAt, id)
  end
end

-- Frees the key owned by job id and promotes the job waiting in the key's pending slot.
local function releaseKey(id, key)
  if not key then return end
  if rcall('HGET', O, key) ~= id then return end
  rcall('HDEL', O, key)
  local pid = rcall('HGET', P, key)
  if pid and rcall('SREM', B, pid) == 1 then
    local runAt = tonumber(rcall('HGET', JP .. pid, 'ra') or NOW) or NOW
    rcall('ZADD', Q, math.max(NOW, runAt), pid)
  end
end

local function toDead(id, key, err)
  rcall('HSET', JP .. id, 'tk', '', 'e', err, 'fa', NOW)
  rcall('ZADD', D, NOW, id)
  releaseKey(id, key)
end

-- True when token holds the live (unexpired) lease on job id.
local function fenced(id, token)
  if token == '' then return false end
  local deadline = rcall('ZSCORE', A, id)
  if not deadline or tonumber(deadline) <= NOW then return false end
  return rcall('HGET', JP .. id, 'tk') == token
end

-- Reclaims expired leases, then leases up to count runnable jobs.
-- Returns { jobs, stalled ids, dead ids, ms until next due job or -1, dead jobs }, each job being
-- { id, key or '', payload, attempt, max attempts, token, created at } and each dead job
-- { id, key or '', payload or '', attempt, max attempts, created at } (the run whose lease expired).
local function claim(count, leaseMs)
  local stalled, dead, deadJobs = {}, {}, {}
  local expired = rcall('ZRANGEBYSCORE', A, '-inf', NOW, 'LIMIT', 0, 100)
  for _, id in ipairs(expired) do
    rcall('ZREM', A, id)
    local jk = JP .. id
    local f = rcall('HMGET', jk, 'at', 'ma', 'k', 'p', 'ct')
    if rcall('EXISTS', jk) == 1 then
      -- Malformed counters must not raise an error halfway through the script (its earlier
      -- writes would stay): a missing run count is 0, missing allowed runs mean no more runs.
      local attempt = tonumber(f[1]) or 0
      if attempt >= (tonumber(f[2]) or 0) then
        toDead(id, f[3], 'lease expired on attempt ' .. attempt)
        dead[#dead + 1] = id
        deadJobs[#deadJobs + 1] = {
          id, f[3] or '', f[4] or '', attempt, tonumber(f[2]) or attempt, tonumber(f[5]) or NOW
        }
      else
        rcall('HSET', jk, 'tk', '', 'ra', NOW)
        rcall('ZADD', Q, NOW, id)
        stalled[#stalled + 1] = id
      end
    end
  end
  local jobs = {}
  if count > 0 then
    local ids = rcall('ZRANGEBYSCORE', Q, '-inf', NOW, 'LIMIT', 0, count)
    for _, id in ipairs(ids) do
      rcall('ZREM', Q, id)
      local jk = JP .. id
      local f = rcall('HMGET', jk, 'k', 'p', 'at', 'ma', 'ct')
      if f[2] then
        local token = tostring(rcall('INCR', SEQ))
        -- Malformed counters never raise an error here, after the writes above.
        local attempt = (tonumber(f[3]) or 0) + 1
        local maxAttempts = tonumber(f[4]) or attempt
        rcall('HSET', jk, 'tk', token, 'at', attempt)
        rcall('ZADD', A, NOW + leaseMs, id)
        if f[1] then
          if rcall('HGET', P, f[1]) == id then rcall('HDEL', P, f[1]) end
          rcall('HSET', O, f[1], id)
        end
        jobs[#jobs + 1] = { id, f[1] or '', f[2], attempt, maxAttempts, token, tonumber(f[5]) or NOW }
      elseif rcall('EXISTS', jk) == 1 then
        -- A job without a payload cannot run; dropping it silently would lose it and leave its
        -- key's pending slot pointing at it, swallowing every later change of the key. It goes
        -- to the dead letters, where it is listed and counted.
        if f[1] and rcall('HGET', P, f[1]) == id then rcall('HDEL', P, f[1]) end
        toDead(id, f[1], 'stored job has no payload')
      end
    end
  end
  local nextDue = -1
  if #jobs < count then
    local first = rcall('ZRANGE', Q, 0, 0, 'WITHSCORES')
    if first[2] then nextDue = math.max(0, tonumber(first[2]) - NOW) end
  end
  return { jobs, stalled, dead, nextDue, deadJobs }
end
