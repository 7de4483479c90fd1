--[[
  completed-list: lists kept completed jobs from offset ARGV[3], at most ARGV[4], latest completion first.
  Returns an array of { id, key or '', payload, runs made, created at, completed at }.
]]
local offset, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for _, id in ipairs(rcall('ZREVRANGE', C, offset, offset + limit - 1)) do
  local f = rcall('HMGET', JP .. id, 'k', 'p', 'at', 'ct', 'ca')
  if f[2] then
    out[#out + 1] = { id, f[1] or '', f[2], f[3] or '0', f[4] or '0', f[5] or '0' }
  end
end
return out
