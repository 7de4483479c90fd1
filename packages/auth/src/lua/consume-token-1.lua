--[[
  Spends a single-use token if it is the live one.

  KEYS[1]  token hash: tokenHash, expiresAt

  ARGV[1]  presented token hash
  ARGV[2]  now, epoch ms

  Returns 1 (spent), -1 (was live but expired; removed) or 0 (not the live token; unchanged).
]]
local fields = redis.call('HMGET', KEYS[1], 'tokenHash', 'expiresAt')
if not fields[1] or fields[1] ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
if tonumber(ARGV[2]) >= tonumber(fields[2]) then
  return -1
end
return 1
