--[[
  Counts an attempt before it is checked and hashed (a reservation), and answers, atomically with
  counting it, what the caller decides on: the count with it and the other attempts in flight.
  Unlike record-failure it leaves lastFailureAt alone: only a failure moves it (settle-attempt).

  KEYS[1]  counter hash: count, lastFailureAt, and one field 'r:<id>' per attempt in flight,
           holding its reservation time (epoch ms)

  ARGV[1]  reservation id
  ARGV[2]  now, epoch ms
  ARGV[3]  window, ms: a counter whose latest failure is older starts again from the attempts in
           flight (also the key's expiry)
  ARGV[4]  abandon after, ms: an older reservation was lost with its process; its field goes, its
           count stays

  Returns {count, lastFailureAt, inFlight}: inFlight counts the other attempts, not this one.
]]
local now = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local abandonAfter = tonumber(ARGV[4])
local flat = redis.call('HGETALL', KEYS[1])
local count = 0
local last = nil
local others = 0
for index = 1, #flat, 2 do
  local field = flat[index]
  local value = flat[index + 1]
  if field == 'count' then
    count = tonumber(value)
  elseif field == 'lastFailureAt' then
    last = value
  elseif string.sub(field, 1, 2) == 'r:' then
    if now - tonumber(value) > abandonAfter then
      redis.call('HDEL', KEYS[1], field)
    else
      others = others + 1
    end
  end
end
-- Kept as strings: Lua would print large numbers in %.14g form.
if not last or now - tonumber(last) >= window then
  count = others
  last = ARGV[2]
end
count = count + 1
redis.call('HSET', KEYS[1], 'count', count, 'lastFailureAt', last, 'r:' .. ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], window)
return {count, tonumber(last), others}
