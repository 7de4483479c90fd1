--[[
  release: returns leased job ARGV[3] to waiting without counting the run, if ARGV[4] holds its
  live lease (used by a graceful close). The job keeps owning its key.
  Returns 1 = released, 0 = stale token or expired lease.
]]
local id = ARGV[3]
if not fenced(id, ARGV[4]) then return 0 end
rcall('ZREM', A, id)
local jk = JP .. id
rcall('HINCRBY', jk, 'at', -1)
rcall('HSET', jk, 'tk', '', 'ra', NOW)
rcall('ZADD', Q, NOW, id)
return 1
