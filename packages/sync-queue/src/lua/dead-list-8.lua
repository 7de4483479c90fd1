--[[
  dead-list: lists dead letters from offset ARGV[3], at most ARGV[4], oldest first.
  Returns an array of { id, key or '', payload, runs made, last error, time of death }.
]]
local offset, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for _, id in ipairs(rcall('ZRANGE', D, offset, offset + limit - 1)) do
  local f = rcall('HMGET', JP .. id, 'k', 'p', 'at', 'e', 'fa')
  if f[2] or f[5] then
    out[#out + 1] = { id, f[1] or '', f[2] or '', f[3] or '0', f[4] or '', f[5] or '0' }
  end
end
return out
