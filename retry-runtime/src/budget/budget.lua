-- A RetryBudget's pool in Redis, shared by a fleet: each process adds what its
-- calls earned and takes what its retries spent since its last sync, and reads
-- back the pool and this second's floor, in one atomic call.
--
-- A sync is a numbered batch: a process sends a batch again, unchanged, until
-- it hears back, and a batch already applied is not applied twice (a sync that
-- ran but answered late would otherwise count its deposits and retries again).
--
-- KEYS[1]  the budget's hash
-- KEYS[2]  this process's last applied batch number
-- ARGV     batch number, deposits, earned withdrawals, floor withdrawals,
--          thousandths earned per deposit, the pool's cap in thousandths,
--          now in µs or "" for TIME

local key, seq_key = KEYS[1], KEYS[2]
local seq = tonumber(ARGV[1])
local deposits, withdrawals, floor_taken = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local earn, cap = tonumber(ARGV[5]), tonumber(ARGV[6])
local now
if ARGV[7] ~= '' then
  now = tonumber(ARGV[7])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local second = math.floor(now / 1000000)
local balance = tonumber(redis.call('HGET', key, 'balance') or '0')
local fsec = tonumber(redis.call('HGET', key, 'fsec') or '-1')
local fused = tonumber(redis.call('HGET', key, 'fused') or '0')
if fsec ~= second then
  fsec, fused = second, 0
end
local applied = tonumber(redis.call('GET', seq_key) or '-1')
if seq > applied then
  balance = math.min(cap, balance + deposits * earn) - withdrawals * 1000
  if balance < 0 then balance = 0 end
  fused = fused + floor_taken
end
redis.call('SET', seq_key, string.format('%.0f', math.max(seq, applied)), 'PX', 600000)
redis.call('HSET', key, 'balance', string.format('%.0f', balance), 'fsec', string.format('%.0f', fsec),
  'fused', string.format('%.0f', fused))
redis.call('PEXPIRE', key, 600000)
return {string.format('%.0f', balance), string.format('%.0f', fused)}
