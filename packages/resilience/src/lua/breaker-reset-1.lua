-- Closes the circuit unconditionally (manual reset), generation + 1.
-- KEYS[1]  the breaker's hash
-- ARGV[1]  time to live of the hash, in ms
-- Returns the state after the operation as an array:
--   { state ("closed" | "open" | "half-open"), generation, openedAt (ms), probeUntil (ms),
--     probeSuccesses, now (ms, Redis server time) }
-- A key that does not exist reads as closed at generation 0. Reading TIME before writing needs
-- Redis 5 or later (script effects replication).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'generation', 'openedAt')
local generation, openedAt = (tonumber(h[1]) or 0) + 1, tonumber(h[2]) or 0
redis.call('HSET', KEYS[1], 'state', 'closed', 'generation', generation, 'openedAt', openedAt,
  'probeUntil', 0, 'probeSuccesses', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return { 'closed', generation, openedAt, 0, 0, now }
