--[[
  Rotates a session's refresh token atomically (compare-and-swap), with reuse detection.

  KEYS[1]  session hash: userId, createdAt, lastUsedAt, idleExpiresAt, absoluteExpiresAt,
           generation, tokenHash, parentHash, rotatedAt, successorSealed, ip, userAgent
  KEYS[2]  set of every spent token hash of the session (the family)

  ARGV[1]  presented token hash
  ARGV[2]  successor token hash
  ARGV[3]  successor token sealed with a key derived from the presented token
  ARGV[4]  now, epoch ms
  ARGV[5]  grace window, ms
  ARGV[6]  new idle expiry, epoch ms (capped by absoluteExpiresAt here)

  Returns:
    {0}                     invalid: no such session, or the hash is none of its tokens
    {1, field, value, ...}  rotated: the session after the swap (HGETALL form)
    {2, field, value, ...}  grace: presented is the live token's parent, grace > 0 and rotated <= grace ago;
                            successorSealed is among the fields; nothing changed
    {3, userId}             reused: a spent token; both keys deleted (the family is revoked)
    {4, userId}             expired: idle or absolute expiry passed; both keys deleted
]]
local session = KEYS[1]
local spent = KEYS[2]
local presented = ARGV[1]
local now = tonumber(ARGV[4])

local fields = redis.call('HMGET', session, 'userId', 'tokenHash', 'parentHash', 'rotatedAt',
  'idleExpiresAt', 'absoluteExpiresAt')
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

if isLive then
  -- Kept as strings: Lua would print large numbers in %.14g form.
  local nextIdle = ARGV[6]
  if tonumber(ARGV[6]) > absoluteExpiresAt then
    nextIdle = fields[6]
  end
  redis.call('SADD', spent, tokenHash)
  redis.call('HSET', session, 'parentHash', tokenHash, 'tokenHash', ARGV[2], 'successorSealed', ARGV[3],
    'rotatedAt', ARGV[4], 'lastUsedAt', ARGV[4], 'idleExpiresAt', nextIdle)
  redis.call('HINCRBY', session, 'generation', 1)
  local ttl = math.max(1, tonumber(nextIdle) - now)
  redis.call('PEXPIRE', session, ttl)
  redis.call('PEXPIRE', spent, ttl)
  local result = redis.call('HGETALL', session)
  table.insert(result, 1, 1)
  return result
end

local rotatedAt = tonumber(fields[4])
local grace = tonumber(ARGV[5])
if fields[3] == presented and rotatedAt and grace > 0 and now - rotatedAt <= grace then
  local result = redis.call('HGETALL', session)
  table.insert(result, 1, 2)
  return result
end

redis.call('DEL', session, spent)
return {3, userId}
