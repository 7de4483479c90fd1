--[[
  Claims a cooldown if none is running.

  KEYS[1]  string: epoch ms at which the running cooldown ends

  ARGV[1]  now, epoch ms
  ARGV[2]  cooldown, ms

  Returns 1 (claimed, cooldown started) or 0 (one is running).
]]
local now = tonumber(ARGV[1])
local untilMs = tonumber(redis.call('GET', KEYS[1]) or '0')
if now < untilMs then
  return 0
end
local cooldown = tonumber(ARGV[2])
if cooldown <= 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('SET', KEYS[1], now + cooldown, 'PX', cooldown)
return 1
