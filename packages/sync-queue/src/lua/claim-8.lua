--[[
  claim: reclaims expired leases (back to waiting, or dead on the last attempt), then leases
  up to ARGV[3] runnable jobs for ARGV[4] ms, each with a fresh fencing token.
  Returns { jobs, stalled ids, dead ids, ms until the next due job or -1, dead jobs } (see claim()
  in the prelude).
]]
return claim(tonumber(ARGV[3]), tonumber(ARGV[4]))
