-- KEYS[1] HASH lock. ARGV: token, ttl_ms ("" to release).
-- Renew returns the new expires_at_ms, release returns 1; both return -1
-- when the token is not the live holder's.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = redis.call('HMGET', KEYS[1], 'token', 'exp')
if cur[1] ~= ARGV[1] or tonumber(cur[2]) <= now then
  return -1
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  return 1
end
local exp = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'exp', exp)
redis.call('PEXPIREAT', KEYS[1], exp)
return exp
