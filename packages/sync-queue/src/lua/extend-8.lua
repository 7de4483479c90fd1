--[[
  extend: pushes the lease deadline of job ARGV[3] to now + ARGV[5] ms if ARGV[4] holds its live lease.
  Returns 1 = extended, 0 = stale token or expired lease.
]]
if not fenced(ARGV[3], ARGV[4]) then return 0 end
rcall('ZADD', A, NOW + tonumber(ARGV[5]), ARGV[3])
return 1
