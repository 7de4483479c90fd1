-- Opens the circuit now, unless another writer already moved it on (compare-and-set on generation).
-- KEYS[1]  the breaker's hash
-- ARGV[1]  generation the caller saw; nothing changes if the stored one differs
-- ARGV[2]  time to live of the hash, in ms (refreshed on every write)
-- Returns the state after the operation as an array:
--   { state ("closed" | "open" | "half-open"), generation, openedAt (ms), probeUntil (ms),
--     probeSuccesses, now (ms) }
-- openedAt is Redis server time (TIME), never the caller's clock, so callers with skewed clocks
-- agree on when the circuit is due for a probe. Reading TIME before writing needs Redis 5 or later
-- (script effects replication). A key that does not exist reads as closed at generation 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'state', 'generation', 'openedAt', 'probeUntil', 'probeSuccesses')
local state, generation = h[1] or 'closed', tonumber(h[2]) or 0
local openedAt, probeUntil, successes = tonumber(h[3]) or 0, tonumber(h[4]) or 0, tonumber(h[5]) or 0
if generation == tonumber(ARGV[1]) then
  state, generation, openedAt, probeUntil, successes = 'open', generation + 1, now, 0, 0
  redis.call('HSET', KEYS[1], 'state', state, 'generation', generation, 'openedAt', openedAt,
    'probeUntil', probeUntil, 'probeSuccesses', successes)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return { state, generation, openedAt, probeUntil, successes, now }
