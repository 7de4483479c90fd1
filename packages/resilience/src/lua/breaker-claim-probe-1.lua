-- Claims the single half-open probe. Succeeds when the circuit is open and halfOpenAfterMs has
-- passed since openedAt (the circuit becomes half-open, generation + 1), or when it is half-open
-- and no lease is held or the previous probe's lease has expired. Atomic: of many concurrent
-- callers exactly one gets claimed = 1. Time is Redis server time (TIME), never the caller's
-- clock, so callers with skewed clocks agree; reading TIME before writing needs Redis 5 or later.
-- KEYS[1]  the breaker's hash
-- ARGV[1]  halfOpenAfterMs
-- ARGV[2]  lease of the probe, in ms
-- ARGV[3]  time to live of the hash, in ms
-- Returns { claimed (1 | 0), state, generation, openedAt, probeUntil, probeSuccesses, now };
-- when claimed, generation and probeUntil name the lease (see breaker-release-probe-1.lua).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'state', 'generation', 'openedAt', 'probeUntil', 'probeSuccesses')
local state, generation = h[1] or 'closed', tonumber(h[2]) or 0
local openedAt, probeUntil, successes = tonumber(h[3]) or 0, tonumber(h[4]) or 0, tonumber(h[5]) or 0
local claimed = 0
if state == 'open' and now >= openedAt + tonumber(ARGV[1]) then
  state, generation, successes, probeUntil, claimed = 'half-open', generation + 1, 0, now + tonumber(ARGV[2]), 1
elseif state == 'half-open' and now >= probeUntil then
  probeUntil, claimed = now + tonumber(ARGV[2]), 1
end
if claimed == 1 then
  redis.call('HSET', KEYS[1], 'state', state, 'generation', generation, 'openedAt', openedAt,
    'probeUntil', probeUntil, 'probeSuccesses', successes)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return { claimed, state, generation, openedAt, probeUntil, successes, now }
