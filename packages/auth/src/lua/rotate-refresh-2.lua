--[[
  Rotates a session's refresh token atomically (compare-and-swap), with reuse detection.

  KEYS[1]  session hash: userId, createdAt, lastUsedAt, idleExpiresAt, absoluteExpiresAt,
           generation, tokenHash, parentHash, rotatedAt, storeRotatedAt, successorSealed, ip,
           userAgent
  KEYS[2]  set of every spent token hash of the session (the family)

  ARGV[1]  presented token hash
  ARGV[2]  successor token hash
  ARGV[3]  successor token sealed with a key derived from the presented token
  ARGV[4]  now, epoch ms, on the caller's clock: checked against the expiries, stored as
           rotatedAt and lastUsedAt
  ARGV[5]  grace window, ms, measured on this Redis's clock (TIME) from storeRotatedAt, so callers
           whose clocks disagree still agree on it
  ARGV[6]  new idle expiry, epoch ms (capped by absoluteExpiresAt here)

  Returns:
    {0}                     invalid: no such session, or the hash is none of its tokens
    {1, field, value, ...}  rotated: the session after the swap (HGETALL form)
    {2, field, value, ...}  grace: presented is the live token's parent, grace > 0 and rotated <= grace ago;
                            successorSealed is among the fields; nothing changed
    {3, userId}             reused: a spent token; both keys deleted (the family is revoked)
    {4, userId}             expired: idle or absolute expiry passed; both keys deleted (the store
                            then answers invalid, as for a session Redis has already evicted)
]]
local session = KEYS[1]
local spent = KEYS[2]
local presented = ARGV[1]
local now = tonumber(ARGV[4])

local fields = redis.call('HMGET', session, 'userId', 'tokenHash', 'parentHash', 'rotatedAt',
  'idleExpiresAt', 'absoluteExpiresAt', 'storeRotatedAt')
local userId = fields[1]
if not userId then
  return {0}
end
local tokenHash = fields[2]
local isLive = tokenHash == presented
if not isLive and redis.call('SISMEMBER', spent, presented) == 0 then
  return {0}
end

local idleExpiresAt = tonumber(fields[5])
local absoluteExpiresAt = tonumber(fields[6])
if now >= idleExpiresAt or now >= absoluteExpiresAt then
  redis.call('DEL', session, spent)
  return {4, userId}
end

-- This server's time in ms, as a string built from TIME's parts (exact; no float formatting).
-- Redis 5+ replicates a script's effects, not the script, so reading the clock before writing is allowed.
local time = redis.call('TIME')
local storeNow = time[1] .. string.format('%03d', math.floor(tonumber(time[2]) / 1000))

if isLive then
  -- Kept as strings: Lua would print large numbers in %.14g form.
  local nextIdle = ARGV[6]
  if tonumber(ARGV[6]) > absoluteExpiresAt then
    nextIdle = fields[6]
  end
  redis.call('SADD', spent, tokenHash)
  redis.call('HSET', session, 'parentHash', tokenHash, 'tokenHash', ARGV[2], 'successorSealed', ARGV[3],
    'rotatedAt', ARGV[4], 'storeRotatedAt', storeNow, 'lastUsedAt', ARGV[4], 'idleExpiresAt', nextIdle)
  redis.call('HINCRBY', session, 'generation', 1)
  local ttl = math.max(1, tonumber(nextIdle) - now)
  redis.call('PEXPIRE', session, ttl)
  redis.call('PEXPIRE', spent, ttl)
  local result = redis.call('HGETALL', session)
  table.insert(result, 1, 1)
  return result
end

local grace = tonumber(ARGV[5])
local elapsed = nil
if fields[7] then
  elapsed = tonumber(storeNow) - tonumber(fields[7])
elseif fields[4] then
  -- Rotated by an older version of this package, which kept only the caller's time.
  elapsed = now - tonumber(fields[4])
end
if fields[3] == presented and elapsed and grace > 0 and elapsed <= grace then
  local result = redis.call('HGETALL', session)
  table.insert(result, 1, 2)
  return result
end

redis.call('DEL', session, spent)
return {3, userId}
