-- Reads the shared state of one circuit breaker.
-- KEYS[1]  the breaker's hash ({hash tag} included by the caller)
-- Returns the state as an array:
--   { state ("closed" | "open" | "half-open"), generation, openedAt (ms), probeUntil (ms),
--     probeSuccesses, now (ms) }
-- Every time is Redis server time (TIME), so callers with skewed clocks agree; `now` is the
-- server's time at this read, which callers measure `openedAt` against.
-- A key that does not exist reads as closed at generation 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'state', 'generation', 'openedAt', 'probeUntil', 'probeSuccesses')
return { h[1] or 'closed', tonumber(h[2]) or 0, tonumber(h[3]) or 0, tonumber(h[4]) or 0, tonumber(h[5]) or 0, now }
