--[[
  stats: returns { waiting now, delayed, blocked behind their key, active, dead }.
]]
return {
  rcall('ZCOUNT', Q, '-inf', NOW),
  rcall('ZCOUNT', Q, '(' .. NOW, '+inf'),
  rcall('SCARD', B),
  rcall('ZCARD', A),
  rcall('ZCARD', D),
}
