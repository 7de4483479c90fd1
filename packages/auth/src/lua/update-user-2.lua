--[[
  Changes fields of a user only if the user exists (a concurrent delete must not resurrect it)
  and, when asked, only if its password hash is still the expected one (compare-and-swap).

  KEYS[1]  user hash

  ARGV[1]  expected passwordHash, or '' for no condition
  ARGV     (from 2) field, value, field, value, ...

  Returns 1 (changed) or 0 (no such user, or another password hash).
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'passwordHash') ~= ARGV[1] then
  return 0
end
if #ARGV > 1 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 2))
end
return 1
