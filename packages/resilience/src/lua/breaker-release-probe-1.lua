-- Gives back a claimed probe that recorded nothing (its caller aborted, or it never ran), so
-- another caller can claim at once instead of waiting for the lease to expire. Ignored unless the
-- circuit is still half-open at the claim's generation and the lease is still the claimed one
-- (probeUntil unchanged): a lease someone else claimed since is never released.
-- KEYS[1]  the breaker's hash
-- ARGV[1]  generation the claim returned
-- ARGV[2]  probeUntil the claim returned (names the lease)
-- ARGV[3]  time to live of the hash, in ms
-- Returns the state after the operation as an array:
--   { state ("closed" | "open" | "half-open"), generation, openedAt (ms), probeUntil (ms),
--     probeSuccesses, now (ms, Redis server time) }
-- A key that does not exist reads as closed at generation 0. Reading TIME before writing needs
-- Redis 5 or later (script effects replication).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'state', 'generation', 'openedAt', 'probeUntil', 'probeSuccesses')
local state, generation = h[1] or 'closed', tonumber(h[2]) or 0
local openedAt, probeUntil, successes = tonumber(h[3]) or 0, tonumber(h[4]) or 0, tonumber(h[5]) or 0
if state == 'half-open' and generation == tonumber(ARGV[1]) and probeUntil == tonumber(ARGV[2]) then
  probeUntil = 0
  redis.call('HSET', KEYS[1], 'probeUntil', probeUntil)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return { state, generation, openedAt, probeUntil, successes, now }
