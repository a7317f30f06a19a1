-- The limiter's state machine in Redis: state.rs, function for function, on
-- microseconds of the server's clock. One call of this script is one atomic
-- update; the Rust tests run both on the same operations and compare.
--
-- KEYS[1]  the limiter's hash
-- ARGV[1]  op: reserve | record | observe | release | read | seed | clear
-- ARGV[2]  now in microseconds, or "" for the server's TIME (tests pin it)
-- the rest depends on op (see the bottom of the file).
--
-- Every op replies {kind, ticket, value, now, fields}: fields is the state as
-- saved (HGETALL), which the process caches for its waiters and snapshot().

local key = KEYS[1]
local BETA, SCALE, FLOOR, MARGIN = 0.7, 0.4, 0.5, 0.95
local LONGEST_COOL_DOWN = 60 * 1000000
local LONGEST_INTERVAL = 24 * 3600 * 1000000
local MEASURE_WINDOW = 1000000
local RECHECK = 250000
local IDLE_TTL_MS = 600000

local function now_us()
  if ARGV[2] ~= '' then return tonumber(ARGV[2]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local NUMBERS = {'rate', 'ceiling', 'limit', 'origin', 'oticket', 'nticket', 'cool',
  'probe', 'ldec', 'lmax', 'lthr', 'episodes', 'succ', 's0t', 's0c', 's1t', 's1c'}

-- The state, and whether the key existed (expired, flushed, a restarted Redis: no).
local function load()
  local s = {}
  local raw = redis.call('HGETALL', key)
  for i = 1, #raw, 2 do s[raw[i]] = tonumber(raw[i + 1]) end
  s.oticket = s.oticket or 0
  s.nticket = s.nticket or 0
  s.lmax = s.lmax or 0
  s.episodes = s.episodes or 0
  s.succ = s.succ or 0
  return s, #raw > 0
end

local function save(s, now)
  local set, del = {}, {}
  for _, name in ipairs(NUMBERS) do
    if s[name] == nil then
      table.insert(del, name)
    else
      table.insert(set, name)
      table.insert(set, string.format('%.17g', s[name]))
    end
  end
  if #del > 0 then redis.call('HDEL', key, unpack(del)) end
  redis.call('HSET', key, unpack(set))
  -- Nothing piles up: the state goes with its last use, or its cool-down
  -- (at most LONGEST_COOL_DOWN: a day-long hint does not keep it a day).
  local ttl = IDLE_TTL_MS
  if s.cool and s.cool > now then ttl = ttl + math.floor((s.cool - now) / 1000) end
  redis.call('PEXPIRE', key, ttl)
end

local function is_idle(s, now)
  return s.rate == nil and s.probe == nil and (s.cool == nil or s.cool <= now)
end

local function interval(s)
  local paced = 0
  if s.rate ~= nil then paced = math.min(1000000 / s.rate, LONGEST_INTERVAL) end
  if s.probe ~= nil then return math.max(paced, LONGEST_COOL_DOWN) end
  return paced
end

local function scheduled(s, ticket, now)
  local origin = s.origin or now
  local ahead = math.max(ticket - s.oticket, 0)
  return origin + math.floor(interval(s) * ahead)
end

local function turn_at(s, ticket, now)
  local at = scheduled(s, ticket, now)
  if s.cool and s.cool > at then return s.cool end
  return at
end

local function first_pending(s, now)
  local iv = interval(s)
  local origin = s.origin or now
  if now < origin then return s.oticket end
  if iv == 0 then return s.nticket end
  local passed = math.ceil((now - origin) / iv)
  return math.min(s.oticket + passed, s.nticket)
end

local function rebase(s, now, not_before)
  local pending = first_pending(s, now)
  local at = math.max(scheduled(s, pending, now), now)
  if not_before and not_before > at then at = not_before end
  s.origin = at
  s.oticket = pending
end

local function floor_of(s)
  if s.ceiling then return math.min(s.ceiling, FLOOR) end
  return FLOOR
end

local function set_rate(s, now, rate)
  local fl = floor_of(s)
  rate = math.max(rate, fl)
  if s.ceiling then rate = math.min(rate, s.ceiling) end
  if s.rate == rate then return end
  rebase(s, now, nil)
  if s.rate == nil or rate < s.rate then s.ldec = now end
  s.rate = rate
end

local function cool_down(s, now, wait)
  if wait > LONGEST_COOL_DOWN and s.probe == nil then
    rebase(s, now, nil)
    s.probe = now
  end
  local untl = now + math.min(wait, LONGEST_COOL_DOWN)
  if s.cool and s.cool >= untl then return end
  rebase(s, now, untl)
  s.cool = untl
end

local function end_probe(s, now)
  local pending = first_pending(s, now)
  s.probe = nil
  s.origin = now
  s.oticket = pending
end

local function answers_probe(s, sent)
  return s.probe ~= nil and sent ~= nil and sent >= s.probe
end

local function clear(s, now)
  local pending = first_pending(s, now)
  local nticket = s.nticket
  for _, name in ipairs(NUMBERS) do s[name] = nil end
  s.lmax, s.episodes, s.succ = 0, 0, 0
  s.origin, s.oticket, s.nticket = now, pending, nticket
end

local function learn_limit(s, now, per_minute)
  if per_minute == 0 or s.limit == per_minute then return end
  s.limit = per_minute
  local ceiling = per_minute / 60 * MARGIN
  s.ceiling = ceiling
  local rate = ceiling
  if s.rate and s.lthr then rate = math.min(s.rate, ceiling) end
  set_rate(s, now, rate)
end

local function sample(s, now)
  if s.s1t == nil or now - s.s1t >= MEASURE_WINDOW then
    s.s0t, s.s0c = s.s1t, s.s1c
    s.s1t, s.s1c = now, s.succ
  end
end

local function admitted_rate(s, now)
  local at, counted = s.s0t, s.s0c
  if at == nil then at, counted = s.s1t, s.s1c end
  if at == nil then at, counted = now, 0 end
  local span = math.max(now - at, MEASURE_WINDOW)
  return math.max(s.succ - counted, 0) / (span / 1000000)
end

local function decrease(s, now)
  local current = s.rate or admitted_rate(s, now)
  if current <= 0 then return end
  s.episodes = s.episodes + 1
  s.lmax = current
  s.lthr = now
  set_rate(s, now, current * BETA)
  s.ldec = now
end

local function admitted_in_episode(s, now, sent)
  if s.ldec == nil or s.lthr == nil then return end
  if sent and sent >= s.ldec then return end
  local admitted = admitted_rate(s, now)
  if admitted > s.lmax then
    s.lmax = admitted
    if s.rate and s.rate < admitted * BETA then set_rate(s, now, admitted * BETA) end
  end
end

local function climb(s, now)
  if s.lthr == nil or s.rate == nil then return end
  local t = math.max(now - s.lthr, 0) / 1000000
  local k = (s.lmax * (1 - BETA) / SCALE) ^ (1 / 3)
  local cubic = SCALE * (t - k) ^ 3 + s.lmax
  if cubic == cubic and cubic < math.huge and cubic > s.rate then set_rate(s, now, cubic) end
end

local function check(s, ticket, now, latest)
  local at = turn_at(s, ticket, now)
  if at <= now then return {'go', ticket, now} end
  local sure = (s.cool ~= nil and s.cool > latest) or s.probe ~= nil
    or (s.rate ~= nil and s.rate == s.ceiling)
  if at > latest and (sure or now >= latest) then return {'late', at - now} end
  return {'wait', ticket, math.min(at, latest, now + RECHECK)}
end

-- Integers as text: tostring would write large ones in exponent form.
local function int(x)
  return string.format('%.0f', x)
end

local function opt(i)
  if ARGV[i] == nil or ARGV[i] == '' then return nil end
  return tonumber(ARGV[i])
end

-- What a process knows, for a store that does not: a limit (learned from the
-- server's headers, which overrides the store's, or given at construction,
-- which fills in only where the store has none), and a cool-down (a probe).
local function seed(s, now, limit, learned, cool, probing)
  if limit and (s.limit == nil or (learned and s.limit ~= limit)) then learn_limit(s, now, limit) end
  if probing and s.probe == nil then
    rebase(s, now, nil)
    s.probe = now
  end
  if cool and cool > 0 then cool_down(s, now, cool) end
end

local function reply(kind, ticket, value, now)
  return {kind, ticket, int(value), int(now), redis.call('HGETALL', key)}
end

local op = ARGV[1]
local now = now_us()
local s, existed = load()

if op == 'read' then
  return reply('read', 0, now, now)
elseif op == 'reserve' then
  -- ARGV[3]: the longest the caller may wait, in microseconds; ARGV[4..5]: the
  -- process's seed (limit per minute, cool-down left in µs, or ""), applied
  -- where the store has no limit, and the cool-down where the key was gone.
  local limit, cool = opt(4), opt(5)
  if not existed then seed(s, now, limit, false, cool, false)
  elseif limit and s.limit == nil then learn_limit(s, now, limit) end
  sample(s, now)
  if is_idle(s, now) then
    save(s, now)
    return reply('free', 0, now, now)
  end
  local ticket = s.nticket
  if s.origin == nil or scheduled(s, ticket, now) < now then
    s.origin = now
    s.oticket = ticket
  end
  local verdict = check(s, ticket, now, now + opt(3))
  if verdict[1] == 'late' then
    save(s, now)
    return reply('late', 0, verdict[2], now)
  end
  s.nticket = ticket + 1
  save(s, now)
  return reply(verdict[1], ticket, verdict[3], now)
elseif op == 'record' then
  -- ARGV[3]: ok | throttle | overload; ARGV[4]: sent (µs) or ""; ARGV[5]: hint (µs) or "".
  local kind, sent, hint = ARGV[3], opt(4), opt(5)
  if kind == 'ok' then s.succ = s.succ + 1 end
  sample(s, now)
  if kind == 'ok' then
    if answers_probe(s, sent) then
      end_probe(s, now)
      s.cool = nil
    end
    admitted_in_episode(s, now, sent)
    climb(s, now)
  elseif kind == 'overload' then
    if hint then cool_down(s, now, hint) end
  else
    if hint then
      if hint <= LONGEST_COOL_DOWN and answers_probe(s, sent) then end_probe(s, now) end
      cool_down(s, now, hint)
    end
    local new_episode = s.ldec == nil or (sent ~= nil and sent >= s.ldec)
    if new_episode then decrease(s, now) end
  end
  save(s, now)
  return reply('ok', 0, now, now)
elseif op == 'observe' then
  -- ARGV[3]: the announced limit per minute or ""; ARGV[4]: a reset (µs) or "".
  local limit, reset = opt(3), opt(4)
  if limit then learn_limit(s, now, limit) end
  if reset then cool_down(s, now, reset) end
  save(s, now)
  return reply('ok', 0, now, now)
elseif op == 'release' then
  local ticket = opt(3)
  if ticket + 1 == s.nticket and ticket >= s.oticket then s.nticket = ticket end
  save(s, now)
  return reply('ok', 0, now, now)
elseif op == 'seed' then
  -- On connect and reconnect. ARGV[3]: limit per minute or ""; ARGV[4]: 1 when
  -- learned from the server; ARGV[5]: cool-down left (µs) or ""; ARGV[6]: 1
  -- while probing; ARGV[7]: how long (µs) this process's own queue still
  -- runs, which the store's schedule starts after; ARGV[8]: 1 to clear first.
  if ARGV[8] == '1' then clear(s, now) end
  seed(s, now, opt(3), ARGV[4] == '1', opt(5), ARGV[6] == '1')
  local busy = opt(7)
  if busy and busy > 0 and s.rate ~= nil then
    local nb = now + busy
    if scheduled(s, s.nticket, now) < nb then rebase(s, now, nb) end
  end
  save(s, now)
  return reply('ok', 0, now, now)
elseif op == 'clear' then
  clear(s, now)
  save(s, now)
  return reply('ok', 0, now, now)
end
return redis.error_reply('unknown op ' .. tostring(op))
