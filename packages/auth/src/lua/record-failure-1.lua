--[[
  Counts one failed attempt; a counter idle for the window starts again at 1.

  KEYS[1]  counter hash: count, lastFailureAt

  ARGV[1]  now, epoch ms
  ARGV[2]  window, ms (also the key's expiry)

  Returns {count, lastFailureAt}.
]]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local fields = redis.call('HMGET', KEYS[1], 'count', 'lastFailureAt')
local count = 1
if fields[1] and now - tonumber(fields[2]) < window then
  count = tonumber(fields[1]) + 1
end
redis.call('HSET', KEYS[1], 'count', count, 'lastFailureAt', now)
redis.call('PEXPIRE', KEYS[1], window)
return {count, now}
