-- KEYS[1] ZSET of a user's session ids. ARGV: now, revoke ("1"/"0").
-- Listing returns {id, created, exp, id, created, exp, ...} of live
-- sessions; revoking deletes them all and returns how many were live.
local now = tonumber(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
local out, live = {}, 0
for _, id in ipairs(ids) do
  local s = redis.call('HMGET', 's:' .. id, 'created', 'exp')
  if s[2] and tonumber(s[2]) > now then
    live = live + 1
    if ARGV[2] ~= '1' then
      out[#out + 1] = id
      out[#out + 1] = s[1]
      out[#out + 1] = s[2]
    end
  end
  if ARGV[2] == '1' then
    redis.call('DEL', 's:' .. id)
  end
end
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[1])
  return live
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return out
