--[[
  Settles an attempt reserved by reserve-attempt. A failure keeps its count and moves
  lastFailureAt to its time (never backwards); a success takes its count back, and a counter left
  at zero is deleted. A reservation no longer in flight (settled, abandoned, or dropped when the
  counter started again) changes no count, except that a failure on a missing counter starts one.

  KEYS[1]  counter hash: count, lastFailureAt, 'r:<id>' per attempt in flight

  ARGV[1]  reservation id
  ARGV[2]  '1' failed, '0' succeeded
  ARGV[3]  now (the reservation's time), epoch ms
  ARGV[4]  window, ms (also the key's expiry after a failure)

  Returns 1 if the reservation was in flight, else 0.
]]
local held = redis.call('HDEL', KEYS[1], 'r:' .. ARGV[1])
local now = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local fields = redis.call('HMGET', KEYS[1], 'count', 'lastFailureAt')
local running = false
if fields[1] and fields[2] then
  running = now - tonumber(fields[2]) < window
  if not running then
    -- A counter past its window still runs while other attempts are in flight.
    for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
      if string.sub(field, 1, 2) == 'r:' then
        running = true
        break
      end
    end
  end
end
if ARGV[2] == '1' then
  if not running then
    redis.call('DEL', KEYS[1])
    redis.call('HSET', KEYS[1], 'count', 1, 'lastFailureAt', ARGV[3])
  elseif now > tonumber(fields[2]) then
    redis.call('HSET', KEYS[1], 'lastFailureAt', ARGV[3])
  end
  if redis.call('PTTL', KEYS[1]) < window then
    redis.call('PEXPIRE', KEYS[1], window)
  end
elseif held == 1 and fields[1] then
  if tonumber(fields[1]) <= 1 then
    redis.call('DEL', KEYS[1])
  else
    redis.call('HINCRBY', KEYS[1], 'count', -1)
  end
end
return held
