--[[
  gcra: the check-and-charge of @postern/rate-limit (GCRA), for a batch of independent calls;
  each call covers one or more keys (a combined limiter) and is all or nothing.
  Run by SHA1 of this text, so two versions of the package on one Redis never run each
  other's script. Time is Redis server time (TIME), so callers with skewed clocks agree.

  KEYS        the keys of every call, in call order. A key holds its theoretical arrival
              time (TAT) in microseconds of Redis server time. All keys of one run share one
              {hash tag} on Redis Cluster (the client never batches calls there).
  ARGV        per call, in order:
                mode   '0' peek (writes nothing), '1' consume (charges every key of the call
                       if all have room), '2' reset (deletes every key of the call)
                n      number of keys of the call
                then, unless mode is '2', per key i of the call:
                  increment_i  cost x emission interval, in microseconds, an integer >= 1
                  tolerance_i  burst x emission interval, in microseconds, an integer
  Returns     per call, in order, modes 0 and 1: allowed, backlog_1, ..., backlog_n, where
              allowed is 1 when every key had room for its increment (in mode 1 all were
              charged), 0 when none was written, -1 when a key holds another type or a value
              that is not a number of microseconds (nothing written; that call only);
              backlog_i = max(TAT_i - now, 0) before the call, in microseconds.
              Mode 2: the number of keys deleted.
  A charged key expires when its backlog has drained, so idle keys leave on their own.
  A run of exactly 4 ARGV whose first call is a mode 0 or 1 call on one key (so the only call)
  takes a straight-line path with the same result; two one-key resets are also 4 ARGV.
  Numbers go to SET as string.format('%d') text: exact for these integers (< 2^53; Lua 5.1
  formats %d as a C long) and about 10% cheaper per call than Redis's own %.17g conversion.
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
-- A stored TAT is used only when it is a number whose doubles are exact integers (|TAT| < 2^53).
local exact = 9007199254740992
if #ARGV == 4 and ARGV[1] ~= '2' and ARGV[2] == '1' then
  -- One call on one key (mode 0 or 1): the common case, straight-line (about 1 us less).
  local stored = redis.pcall('GET', KEYS[1])
  local backlog = 0
  if stored then
    -- A key of another type gives an error table; text that is not a number gives nil.
    local tat = type(stored) == 'string' and tonumber(stored)
    if not (tat and tat > -exact and tat < exact) then
      return {-1, 0}
    end
    backlog = tat - now
    if backlog < 0 then
      backlog = 0
    end
  end
  local after = backlog + tonumber(ARGV[3])
  if after > tonumber(ARGV[4]) then
    return {0, backlog}
  end
  if ARGV[1] == '1' then
    redis.call('SET', KEYS[1], string.format('%d', now + after), 'PX', string.format('%d', math.ceil(after / 1000)))
  end
  return {1, backlog}
end
local result = {}
local key = 0
local arg = 1
local argc = #ARGV
while arg <= argc do
  local mode = ARGV[arg]
  local count = tonumber(ARGV[arg + 1])
  arg = arg + 2
  if mode == '2' then
    local deleted = 0
    for i = 1, count do
      deleted = deleted + redis.call('DEL', KEYS[key + i])
    end
    result[#result + 1] = deleted
  else
    local at = #result + 1
    local allowed = 1
    local first = arg
    for i = 1, count do
      local stored = redis.pcall('GET', KEYS[key + i])
      local backlog = 0
      if stored then
        local tat = type(stored) == 'string' and tonumber(stored)
        if tat and tat > -exact and tat < exact then
          backlog = tat - now
          if backlog < 0 then
            backlog = 0
          end
        else
          allowed = -1
        end
      end
      if allowed == 1 and backlog + tonumber(ARGV[arg]) > tonumber(ARGV[arg + 1]) then
        allowed = 0
      end
      result[at + i] = backlog
      arg = arg + 2
    end
    result[at] = allowed
    if allowed == 1 and mode == '1' then
      for i = 1, count do
        local after = result[at + i] + tonumber(ARGV[first + 2 * i - 2])
        redis.call('SET', KEYS[key + i], string.format('%d', now + after), 'PX', string.format('%d', math.ceil(after / 1000)))
      end
    end
  end
  key = key + count
end
return result
