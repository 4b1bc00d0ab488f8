"""The Lua scripts of the Redis feature store (`risk_redis`): a record writes every row of its
observations in one round trip, a read answers any number of queries in another. Each runs
whole, no other client's command between its own (Redis runs one script at a time).
"""

from __future__ import annotations

__all__ = ["READ", "RECORD"]

RECORD = """
-- KEYS: bucket hashes, then latest-time hashes, then pair sets;
-- ARGV: now, retention, how many of each kind of key, then each key's row
local now, retention = tonumber(ARGV[1]), tonumber(ARGV[2])
local buckets, lasts, pairs = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local at = 6
local function keep(key, till) -- the key lives at least until `till` (the server's time)
  if redis.call('TTL', key) < till - now then redis.call('EXPIRE', key, till - now) end
end
local function prune(key, before) -- a hash forgets its buckets that started at `before` or earlier
  for _, start in ipairs(redis.call('HKEYS', key)) do
    if tonumber(start) <= before then redis.call('HDEL', key, start) end
  end
end
for i = 1, buckets do
  local start, events, span = ARGV[at], tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  at = at + 3
  if redis.call('HINCRBY', KEYS[i], start, events) == events then
    prune(KEYS[i], now - span)
  end
  keep(KEYS[i], tonumber(start) + span)
end
for i = buckets + 1, buckets + lasts do
  local start, last = ARGV[at], tonumber(ARGV[at + 1])
  at = at + 2
  local was = redis.call('HGET', KEYS[i], start)
  if not was then prune(KEYS[i], now - retention) end
  if not was or tonumber(was) < last then redis.call('HSET', KEYS[i], start, last) end
  keep(KEYS[i], tonumber(start) + retention)
end
for i = buckets + lasts + 1, buckets + lasts + pairs do
  local other, last = ARGV[at], tonumber(ARGV[at + 1])
  at = at + 2
  redis.call('ZADD', KEYS[i], 'GT', last, other)
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - retention)
  keep(KEYS[i], last + retention)
end
return 0
"""

READ = """
-- KEYS: one per query; ARGV: now, then each query's kind (c count, l latest, d distinct) and
-- the time after which it counts
local now = tonumber(ARGV[1])
local values = {}
for i, key in ipairs(KEYS) do
  local kind, since = ARGV[2 * i], ARGV[2 * i + 1]
  if kind == 'd' then
    values[i] = redis.call('ZCOUNT', key, '(' .. since, ARGV[1])
  else
    local fields, total, latest = redis.call('HGETALL', key), 0, false
    for j = 1, #fields, 2 do
      local start = tonumber(fields[j])
      if start > tonumber(since) and start <= now then
        local value = tonumber(fields[j + 1])
        total = total + value
        if not latest or value > latest then latest = value end
      end
    end
    if kind == 'c' then values[i] = total else values[i] = latest end
  end
end
return values
"""
