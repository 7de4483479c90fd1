--[[
  Changes fields of a user only if the user exists (a concurrent delete must not resurrect it).

  KEYS[1]  user hash

  ARGV     field, value, field, value, ...

  Returns 1 (changed) or 0 (no such user).
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
