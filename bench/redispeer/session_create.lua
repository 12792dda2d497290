-- KEYS[1] HASH session, KEYS[2] ZSET of the user's session ids by expiry.
-- ARGV: user_id, data (JSON), created_at_ms, expires_at_ms, id
redis.call('HSET', KEYS[1], 'user_id', ARGV[1], 'data', ARGV[2], 'created', ARGV[3], 'exp', ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], last[2])
return 1
