--[[
  gcra: the check-and-charge of @postern/rate-limit (GCRA) for one or more keys, all or none.
  Run by SHA1 of this text, so two versions of the package on one Redis never run each other's
  script. Time is Redis server time (TIME), so callers with skewed clocks agree.

  KEYS[i]     state of subject i: a string holding its theoretical arrival time (TAT), in
              microseconds of Redis server time. All keys of one call share one {hash tag}.
  ARGV[1]     mode: '0' peek (writes nothing), '1' consume (charges every key if all have room),
              '2' reset (deletes every key).
  ARGV[2i]    increment of key i, in microseconds: cost x emission interval, an integer >= 1.
  ARGV[2i+1]  tolerance of key i, in microseconds: burst x emission interval, an integer.

  Returns, modes 0 and 1: { allowed, backlog_1, ..., backlog_n } where allowed is 1 when every
  key had room for its increment (in mode 1 all were then charged) and 0 when none was written;
  backlog_i = max(TAT_i - now, 0) before this call, in microseconds.
  Returns, mode 2: the number of keys deleted.
  Each charged key expires when its backlog has drained, so idle keys leave on their own.
]]
local mode = ARGV[1]
if mode == '2' then
  return redis.call('DEL', unpack(KEYS))
end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local count = #KEYS
local result = { 1 }
for i = 1, count do
  local tat = tonumber(redis.call('GET', KEYS[i]))
  local backlog = 0
  if tat ~= nil and tat > now then
    backlog = tat - now
  end
  result[i + 1] = backlog
  if backlog + tonumber(ARGV[2 * i]) > tonumber(ARGV[2 * i + 1]) then
    result[1] = 0
  end
end

if mode == '1' and result[1] == 1 then
  for i = 1, count do
    local after = result[i + 1] + tonumber(ARGV[2 * i])
    redis.call('SET', KEYS[i], string.format('%.0f', now + after), 'PX', string.format('%.0f', math.ceil(after / 1000)))
  end
end
return result
