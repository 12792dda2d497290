-- KEYS[1] HASH session. ARGV: now, id, has_data, data, ttl_ms ("" = keep).
-- Returns {user_id, data, created, exp}, or false if missing or expired.
local now = tonumber(ARGV[1])
local s = redis.call('HMGET', KEYS[1], 'user_id', 'data', 'created', 'exp')
if not s[1] or tonumber(s[4]) <= now then
  return false
end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'data', ARGV[4])
  s[2] = ARGV[4]
end
if ARGV[5] ~= '' then
  local exp = now + tonumber(ARGV[5])
  s[4] = string.format('%.0f', exp)
  redis.call('HSET', KEYS[1], 'exp', s[4])
  redis.call('PEXPIREAT', KEYS[1], s[4])
  local user = 'u:' .. s[1]
  redis.call('ZADD', user, s[4], ARGV[2])
  local last = redis.call('ZRANGE', user, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', user, last[2])
end
return s
