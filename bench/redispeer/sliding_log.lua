-- Sliding-log rate limit check, atomic.
-- KEYS[1] ZSET of allowed requests: score = ms timestamp, member = "seq:cost"
-- KEYS[2] HASH: sum (costs in the ZSET), maxw (largest window in use), seq
-- ARGV: limit, window_ms, cost
-- Returns {1, remaining, reset_ms} or {0, 0, retry_after_ms}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local log, meta = KEYS[1], KEYS[2]

local function cost_of(member)
  return tonumber(string.match(member, ':(%d+)$'))
end

local m = redis.call('HMGET', meta, 'sum', 'maxw')
local sum = tonumber(m[1]) or 0
local maxw = math.max(tonumber(m[2]) or 0, window)

-- Entries at or before now - maxw are outside every window in use: drop them
-- and take their cost off the running sum.
local cutoff = now - maxw
local old = redis.call('ZRANGEBYSCORE', log, '-inf', cutoff)
if #old > 0 then
  for _, member in ipairs(old) do sum = sum - cost_of(member) end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', cutoff)
end

-- Summed cost in (now - window, now]: the running sum when this check uses
-- the largest window, else a scan of the younger part of the log.
local used = sum
if window < maxw then
  used = 0
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', log, '(' .. (now - window), '+inf')) do
    used = used + cost_of(member)
  end
end

if used + cost <= limit then
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  redis.call('ZADD', log, now, seq .. ':' .. cost)
  redis.call('HSET', meta, 'sum', sum + cost, 'maxw', maxw)
  redis.call('PEXPIRE', log, maxw)
  redis.call('PEXPIRE', meta, maxw)
  -- This request is the newest entry: the key is back to its full limit
  -- once it leaves the window.
  return {1, limit - used - cost, window}
end

if #old > 0 then
  redis.call('HSET', meta, 'sum', sum)
end
-- Denied: find the oldest entries whose leaving frees enough room.
local excess = used + cost - limit
local freed, offset = 0, 0
while true do
  local batch = redis.call('ZRANGEBYSCORE', log, '(' .. (now - window), '+inf', 'WITHSCORES', 'LIMIT', offset, 256)
  if #batch == 0 then break end
  for i = 1, #batch, 2 do
    freed = freed + cost_of(batch[i])
    if freed >= excess then
      return {0, 0, math.max(tonumber(batch[i + 1]) + window - now, 1)}
    end
  end
  offset = offset + #batch / 2
end
return {0, 0, window} -- unreachable: cost <= limit
