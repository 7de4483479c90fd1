--[[
  dead-purge: deletes up to ARGV[3] dead letters (oldest first) with their job hashes.
  Returns how many were deleted; call again until it returns less than ARGV[3].
]]
local ids = rcall('ZRANGE', D, 0, tonumber(ARGV[3]) - 1)
for _, id in ipairs(ids) do
  rcall('DEL', JP .. id)
  rcall('ZREM', D, id)
end
return #ids
