--[[
  stats: returns { waiting now, delayed, blocked behind their key, active, dead, kept completed }.
]]
return {
  rcall('ZCOUNT', Q, '-inf', NOW),
  rcall('ZCOUNT', Q, '(' .. NOW, '+inf'),
  rcall('SCARD', B),
  rcall('ZCARD', A),
  rcall('ZCARD', D),
  rcall('ZCARD', C),
}
