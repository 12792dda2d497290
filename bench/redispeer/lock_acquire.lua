-- KEYS[1] HASH lock: token, exp (ms), owner (absent = none)
-- KEYS[2] fencing counter (never expires)
-- ARGV: token, ttl_ms, has_owner ("1"/"0"), owner
-- Returns {1, fencing, expires_at_ms} or {0, ms until the holder expires}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local exp = tonumber(redis.call('HGET', KEYS[1], 'exp'))
if exp and exp > now then
  return {0, exp - now}
end
redis.call('DEL', KEYS[1])
local fencing = redis.call('INCR', KEYS[2])
exp = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'exp', exp)
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'owner', ARGV[4])
end
redis.call('PEXPIREAT', KEYS[1], exp)
return {1, fencing, exp}
