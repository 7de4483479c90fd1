-- Records a successful probe and releases its lease; closes the circuit (generation + 1) once
-- enough probes succeeded. Ignored unless the circuit is half-open at the caller's generation.
-- KEYS[1]  the breaker's hash
-- ARGV[1]  generation the caller saw
-- ARGV[2]  successful probes needed to close
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
if state == 'half-open' and generation == tonumber(ARGV[1]) then
  successes, probeUntil = successes + 1, 0
  if successes >= tonumber(ARGV[2]) then
    state, generation, successes = 'closed', generation + 1, 0
  end
  redis.call('HSET', KEYS[1], 'state', state, 'generation', generation, 'openedAt', openedAt,
    'probeUntil', probeUntil, 'probeSuccesses', successes)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return { state, generation, openedAt, probeUntil, successes, now }
