-- Claims the single half-open probe. Succeeds when the circuit is open and halfOpenAfterMs has
-- passed (the circuit becomes half-open, generation + 1), or when it is half-open and the previous
-- probe's lease has expired. Atomic: of many concurrent callers exactly one gets claimed = 1.
-- KEYS[1]  the breaker's hash
-- ARGV[1]  now, in ms since the epoch
-- ARGV[2]  halfOpenAfterMs
-- ARGV[3]  lease of the probe, in ms
-- ARGV[4]  time to live of the hash, in ms
-- Returns { claimed (1 | 0), state, generation, openedAt, probeUntil, probeSuccesses }.
local h = redis.call('HMGET', KEYS[1], 'state', 'generation', 'openedAt', 'probeUntil', 'probeSuccesses')
local state, generation = h[1] or 'closed', tonumber(h[2]) or 0
local openedAt, probeUntil, successes = tonumber(h[3]) or 0, tonumber(h[4]) or 0, tonumber(h[5]) or 0
local now = tonumber(ARGV[1])
local claimed = 0
if state == 'open' and now >= openedAt + tonumber(ARGV[2]) then
  state, generation, successes, probeUntil, claimed = 'half-open', generation + 1, 0, now + tonumber(ARGV[3]), 1
elseif state == 'half-open' and now >= probeUntil then
  probeUntil, claimed = now + tonumber(ARGV[3]), 1
end
if claimed == 1 then
  redis.call('HSET', KEYS[1], 'state', state, 'generation', generation, 'openedAt', openedAt,
    'probeUntil', probeUntil, 'probeSuccesses', successes)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return { claimed, state, generation, openedAt, probeUntil, successes }
