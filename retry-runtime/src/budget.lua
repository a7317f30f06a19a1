-- A RetryBudget's pool in Redis, shared by a fleet: each process adds what its
-- calls earned and takes what its retries spent since its last sync, and reads
-- back the pool and this second's floor, in one atomic call.
--
-- KEYS[1]  the budget's hash
-- ARGV     deposits, earned withdrawals, floor withdrawals, thousandths earned
--          per deposit, the pool's cap in thousandths, now in µs or "" for TIME

local key = KEYS[1]
local deposits, withdrawals, floor_taken = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local earn, cap = tonumber(ARGV[4]), tonumber(ARGV[5])
local now
if ARGV[6] ~= '' then
  now = tonumber(ARGV[6])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local second = math.floor(now / 1000000)
local balance = tonumber(redis.call('HGET', key, 'balance') or '0')
balance = math.min(cap, balance + deposits * earn) - withdrawals * 1000
if balance < 0 then balance = 0 end
local fsec = tonumber(redis.call('HGET', key, 'fsec') or '-1')
local fused = tonumber(redis.call('HGET', key, 'fused') or '0')
if fsec ~= second then
  fsec, fused = second, 0
end
fused = fused + floor_taken
redis.call('HSET', key, 'balance', string.format('%.0f', balance), 'fsec', string.format('%.0f', fsec),
  'fused', string.format('%.0f', fused))
redis.call('PEXPIRE', key, 600000)
return {string.format('%.0f', balance), string.format('%.0f', fused)}
