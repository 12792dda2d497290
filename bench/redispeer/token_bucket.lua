-- Token bucket as GCRA, atomic. The state is kept relative to its last
-- update so that floating point keeps sub-millisecond precision:
-- KEYS[1] HASH: d = ms of "debt" (time the bucket needs to refill fully) at t
-- ARGV: limit, window_ms, cost
-- Returns {1, remaining, reset_ms} or {0, 0, retry_after_ms}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'd', 't')
local d = tonumber(h[1]) or 0
local last = tonumber(h[2]) or now
d = math.max(d - math.max(now - last, 0), 0)

local interval = window / limit -- ms to refill one token
local nd = d + cost * interval
local eps = window * 1e-9       -- absorbs rounding of interval
if nd <= window + eps then
  redis.call('HSET', KEYS[1], 'd', string.format('%.17g', nd), 't', now)
  redis.call('PEXPIRE', KEYS[1], math.max(math.ceil(nd), 1))
  return {1, math.floor((window - nd) / interval + 1e-9), math.ceil(nd - eps)}
end
return {0, 0, math.max(math.ceil(nd - window - eps), 1)}
