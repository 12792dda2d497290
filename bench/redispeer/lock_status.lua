-- KEYS[1] HASH lock, KEYS[2] fencing counter.
-- Returns {fencing, expires_at_ms or -1, owner or false}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fencing = tonumber(redis.call('GET', KEYS[2])) or 0
local cur = redis.call('HMGET', KEYS[1], 'exp', 'owner')
local exp = tonumber(cur[1])
if not exp or exp <= now then
  return {fencing, -1, false}
end
return {fencing, exp, cur[2]}
