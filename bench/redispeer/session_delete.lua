-- KEYS[1] HASH session. ARGV: now, id. Returns 1 if a live session was
-- deleted, 0 if there was none (an expired one is removed all the same).
local now = tonumber(ARGV[1])
local s = redis.call('HMGET', KEYS[1], 'user_id', 'exp')
if not s[1] then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', 'u:' .. s[1], ARGV[2])
if tonumber(s[2]) <= now then
  return 0
end
return 1
