--[[
  Deletes a string key only if it holds the expected value (an email index entry that still
  points at the user being deleted).

  KEYS[1]  string key

  ARGV[1]  expected value

  Returns 1 (deleted) or 0.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
