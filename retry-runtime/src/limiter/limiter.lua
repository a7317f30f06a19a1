-- The limiter's state machine in Redis: state.rs, function for function, on
-- microseconds of the server's clock. One call of this script is one atomic
-- update; the Rust tests run both on the same operations and compare.
--
-- KEYS[1]  the limiter's hash
-- ARGV[1]  op: reserve | record | observe | release | read | seed | clear
-- ARGV[2]  now in microseconds, or "" for the server's TIME (tests pin it)
-- the rest depends on op (see the bottom of the file).
--
-- Every op replies {kind, ticket, value, now, fields}: ticket is a call's
-- position in each dimension, fields the state as saved (HGETALL), which the
-- process caches for its waiters and snapshot().
--
-- Dimensions, in order: requests (r), tokens (t), input tokens (i), output
-- tokens (o). A bucket's fields carry its prefix: lim (limit per minute), cap
-- (the most it was seen to hold), org, pos, lvl (at org, positions below pos
-- spent and lvl more available), nxt (the next position), syn (when a
-- response's remaining last re-anchored it).

local key = KEYS[1]
local BETA, SCALE, FLOOR, MARGIN = 0.7, 0.4, 0.5, 0.95
local LONGEST_COOL_DOWN = 60 * 1000000
local MEASURE_WINDOW = 1000000
local RECHECK = 250000
local IDLE_TTL_MS = 600000
local FIRST_CONTACT_PACE = 50
local FIRST_CONTACT_LONGEST = 5000000
local RUN = 100000
local DIMS = {'r', 't', 'i', 'o'}
local BUCKET = {'lim', 'cap', 'org', 'pos', 'lvl', 'nxt', 'gon', 'syn', 'dec', 'tol', 'tlf'}

local function now_us()
  if ARGV[2] ~= '' then return tonumber(ARGV[2]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local NUMBERS = {'rate', 'ceiling', 'cool', 'probe', 'ldec', 'lmax', 'lthr', 'episodes', 'succ',
  's0t', 's0c', 's1t', 's1c', 'hrd', 'ctc', 'gfst', 'glst', 'epoch'}
for _, d in ipairs(DIMS) do
  for _, f in ipairs(BUCKET) do table.insert(NUMBERS, d .. f) end
end

-- The buckets as tables of their own: b.lim, b.org, ...
local function bucket_of(s, d)
  local b = {}
  for _, f in ipairs(BUCKET) do b[f] = s[d .. f] end
  b.cap = b.cap or 0
  b.pos = b.pos or 0
  b.lvl = b.lvl or 0
  b.nxt = b.nxt or 0
  b.gon = b.gon or 0
  return b
end

local function store_bucket(s, d, b)
  for _, f in ipairs(BUCKET) do s[d .. f] = b[f] end
end

-- The state, and whether the key existed (expired, flushed, a restarted Redis: no).
local function load()
  local s = {}
  local raw = redis.call('HGETALL', key)
  for i = 1, #raw, 2 do s[raw[i]] = tonumber(raw[i + 1]) end
  s.lmax = s.lmax or 0
  s.episodes = s.episodes or 0
  s.succ = s.succ or 0
  s.b = {}
  for k, d in ipairs(DIMS) do s.b[k] = bucket_of(s, d) end
  return s, #raw > 0
end

local function save(s, now)
  for k, d in ipairs(DIMS) do store_bucket(s, d, s.b[k]) end
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

-- Time plus seconds, as Rust's plus_secs: whole microseconds, never back.
local function plus_secs(t, secs)
  if secs ~= secs or secs <= 0 then return t end
  return t + math.floor(secs * 1000000)
end

-- Bucket arithmetic (Bucket in state.rs).
local function reach(b, now, rate)
  if b.org == nil then return math.huge end
  return b.pos + b.lvl + math.max(now - b.org, 0) / 1000000 * rate
end

local function bturn(b, position, cost, now, rate)
  if b.org == nil then return now end
  local short = position + cost - b.pos - b.lvl
  if short > 0 then return plus_secs(b.org, short / rate) end
  return b.org
end

local function brebase(b, now, rate, capacity)
  if b.org ~= nil and b.org > now then return end
  if b.org == nil then
    b.pos = math.min(b.gon, b.nxt)
    b.lvl = capacity
    b.org = now
    b.dec = now
    return
  end
  local r = reach(b, now, rate)
  if r >= b.nxt then
    b.lvl = math.min(r - b.nxt, capacity)
    b.pos = b.nxt
  else
    b.lvl = 0
    b.pos = r
  end
  b.org = now
  b.dec = now
end

local function hold_until(b, untl, rate, unit)
  if b.org == nil or not (untl > b.org) then return end
  if unit > 0 then
    local first = math.floor(b.pos / unit) * unit
    local due = bturn(b, first, unit, b.org, rate)
    if due + 2 >= untl then return end
    b.pos = first
    b.lvl = unit
  end
  b.org = untl
end

local function hold_at_most(b, now, rate, cap)
  if b.org ~= nil and b.org > now then
    b.lvl = math.min(b.lvl, math.max(b.pos, b.gon) - b.pos + cap)
    return
  end
  if reach(b, now, rate) > b.gon + cap then
    b.pos = b.gon
    b.lvl = cap
    b.org = now
    b.dec = now
  end
end

local function bresync(b, now, at, rate, remaining, only_lower, handed)
  b.cap = math.max(b.cap, remaining)
  if b.tol == nil or at >= b.tol then
    b.tol = at
    b.tlf = remaining
  end
  if b.syn ~= nil and b.syn > at then return end
  local most = math.min(b.gon, b.nxt)
  local least
  if b.dec ~= nil and b.dec <= at then
    least = math.min(reach(b, at, rate), most)
  elseif b.dec == nil then
    least = most
  elseif handed ~= nil then
    least = math.min(handed, b.nxt)
  else
    return
  end
  least = math.min(least, handed or math.huge)
  local was = reach(b, at, rate)
  local counted
  if least + remaining >= was + 1 and not only_lower then
    counted = least
  elseif most + remaining < was then
    counted = most
  else
    return
  end
  b.pos = counted
  b.lvl = remaining
  b.org = at
  b.syn = at
  b.dec = now
end

-- State (State in state.rs).
local function paced_below(per_minute)
  return per_minute / 60 * MARGIN
end

local function first_contact(s)
  if s.hrd ~= nil or s.rate ~= nil or s.probe ~= nil then return false end
  for d = 1, 4 do
    if s.b[d].lim then return false end
  end
  return true
end

local function pace(s, d)
  if d ~= 1 then
    local lim = s.b[d].lim
    if lim then return paced_below(lim) end
    return nil
  end
  local probe = 1000000 / LONGEST_COOL_DOWN
  if s.probe ~= nil then
    if s.rate then return math.min(s.rate, probe) end
    return probe
  end
  if s.rate == nil and first_contact(s) then return FIRST_CONTACT_PACE end
  return s.rate
end

local function capacity(s, d, rate)
  local b = s.b[d]
  if b.cap > 0 then return b.cap end
  if d == 1 then return 1 end
  return rate
end

local function unit(d)
  if d == 1 then return 1 end
  return 0
end

local function is_idle(s, now)
  for d = 1, 4 do
    if pace(s, d) ~= nil then return false end
  end
  return s.cool == nil or s.cool <= now
end

local function rebase(s, d, now)
  local rate = pace(s, d)
  if rate then brebase(s.b[d], now, rate, capacity(s, d, rate)) end
end

local function turn_at(s, ticket, cost, now)
  local at = now
  for d = 1, 4 do
    local rate = pace(s, d)
    if rate and cost[d] > 0 then
      local t = bturn(s.b[d], ticket[d], cost[d], now, rate)
      if t > at then at = t end
    end
  end
  if s.cool and s.cool > at then return s.cool end
  return at
end

local function check(s, ticket, cost, now, latest)
  local at = turn_at(s, ticket, cost, now)
  if at <= now then return {'go', now} end
  local climbing = s.probe == nil and s.rate ~= nil and s.rate ~= s.ceiling
  local sure = (s.cool ~= nil and s.cool > latest) or not climbing
  if at > latest and (sure or now >= latest) then return {'late', at - now} end
  return {'wait', math.min(at, latest, now + RECHECK)}
end

local function floor_of(s)
  if s.ceiling then return math.min(s.ceiling, FLOOR) end
  return FLOOR
end

local function hold(s, d, now, untl)
  local rate = pace(s, d)
  if rate then
    local cap = capacity(s, d, rate)
    brebase(s.b[d], now, rate, cap)
    hold_until(s.b[d], untl, rate, unit(d))
  end
end

local function hold_for_cool_down(s, d, now)
  if s.cool and s.cool > now then hold(s, d, now, s.cool) end
end

local function start_pacing(s, d, now)
  s.b[d].org = nil
  rebase(s, d, now)
  hold_for_cool_down(s, d, now)
end

local function set_rate(s, now, rate)
  local fl = floor_of(s)
  rate = math.max(rate, fl)
  if s.ceiling then rate = math.min(rate, s.ceiling) end
  if s.rate == rate then return end
  rebase(s, 1, now)
  if s.rate == nil or rate < s.rate then s.ldec = now end
  local started = pace(s, 1) == nil
  s.rate = rate
  if started then start_pacing(s, 1, now) end
end

-- What of a refused call's hint holds every caller: a hint in whole seconds
-- is a reset rounded up by up to a second, and with news as new as the call
-- on a known limit, that bucket paces the next turn (state.rs).
local function holds_everyone(s, hint, sent, cost)
  if sent == nil or hint % 1000000 ~= 0 or hint > LONGEST_COOL_DOWN then return hint end
  for d = 1, 4 do
    local b = s.b[d]
    if b.lim ~= nil and cost[d] > 0 and (b.tlf or 0) < cost[d] and b.tol ~= nil and b.tol >= sent then
      return math.max(hint - 1000000, 0)
    end
  end
  return hint
end

local function cool_down(s, now, wait)
  if wait > LONGEST_COOL_DOWN and s.probe == nil then
    rebase(s, 1, now)
    s.probe = now
  end
  local untl = now + math.min(wait, LONGEST_COOL_DOWN)
  if s.cool and s.cool >= untl then return end
  for d = 1, 4 do hold(s, d, now, untl) end
  s.cool = untl
end

local function end_probe(s, now)
  rebase(s, 1, now)
  s.probe = nil
  local b = s.b[1]
  b.pos = math.floor(b.pos)
  b.lvl = math.max(b.lvl, 1)
end

local function answers_probe(s, sent)
  return s.probe ~= nil and sent ~= nil and sent >= s.probe
end

local function hear(s, now)
  if first_contact(s) then rebase(s, 1, now) end
  s.hrd = 1
end

local function learn_limit(s, now, per_minute)
  if per_minute == 0 or s.b[1].lim == per_minute then return end
  s.b[1].lim = per_minute
  local ceiling = paced_below(per_minute)
  s.ceiling = ceiling
  local rate = ceiling
  if s.rate and s.lthr then rate = math.min(s.rate, ceiling) end
  set_rate(s, now, rate)
end

local function learn(s, d, now, per_minute)
  hear(s, now)
  if d == 1 then return learn_limit(s, now, per_minute) end
  if per_minute == 0 or s.b[d].lim == per_minute then return end
  local started = pace(s, d) == nil
  rebase(s, d, now)
  s.b[d].lim = per_minute
  if started then return start_pacing(s, d, now) end
  local cap = capacity(s, d, paced_below(per_minute))
  if s.b[d].lvl > cap then s.b[d].lvl = cap end
end

local function granted(s, now, ticket, cost)
  for d = 1, 4 do
    s.b[d].gon = math.max(s.b[d].gon, ticket[d] + cost[d])
  end
  if s.glst ~= nil and now - s.glst < RUN then
    s.glst = now
  else
    s.gfst, s.glst = now, now
  end
end

local function in_run(s, at)
  return s.gfst ~= nil and s.gfst < s.glst and at + RUN >= s.gfst and at <= s.glst + RUN
end

local function resync(s, d, now, at, remaining, handed)
  hear(s, now)
  local starts = s.b[d].syn == nil and s.ctc ~= nil
  local only_lower = in_run(s, at) and not starts
  local rate = pace(s, d)
  if rate then
    bresync(s.b[d], now, at, rate, remaining, only_lower, handed)
    hold_at_most(s.b[d], now, rate, capacity(s, d, rate))
    hold_for_cool_down(s, d, now)
  end
end

local function clear(s, now, limits)
  rebase(s, 1, now)
  local first = math.floor(s.b[1].pos)
  local nxt, gon = {}, {}
  for d = 1, 4 do nxt[d], gon[d] = s.b[d].nxt, s.b[d].gon end
  local epoch = s.epoch
  for _, name in ipairs(NUMBERS) do s[name] = nil end
  s.epoch = epoch
  s.lmax, s.episodes, s.succ = 0, 0, 0
  for d = 1, 4 do
    s.b[d] = {cap = 0, pos = 0, lvl = 0, nxt = nxt[d], gon = gon[d]}
    if limits[d] and limits[d] > 0 then s.b[d].lim = limits[d] end
  end
  if limits[1] and limits[1] > 0 then
    s.rate = paced_below(limits[1])
    s.ceiling = s.rate
  end
  s.b[1].org, s.b[1].pos, s.b[1].lvl, s.b[1].dec = now, first, 1, now
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

local function decrease(s, now, hint, cost)
  local current = s.rate or admitted_rate(s, now)
  if current <= 0 and hint and hint > LONGEST_COOL_DOWN then return end
  local tokens_paced = false
  for d = 2, 4 do
    if cost[d] > 0 and s.b[d].lim then tokens_paced = true end
  end
  if tokens_paced and s.b[1].lim == nil then return end
  s.episodes = s.episodes + 1
  s.lthr = now
  if current <= 0 then
    local probing = FLOOR
    if hint and hint > 0 then probing = math.max(1000000 / hint, FLOOR) end
    s.lmax = probing
    set_rate(s, now, probing)
    s.ldec = now
    return
  end
  s.lmax = current
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

local function refund(s, now, sent, cost)
  for d = 2, 4 do
    local rate = pace(s, d)
    if rate then
      local cap = capacity(s, d, rate)
      local b = s.b[d]
      local news = b.syn ~= nil and sent ~= nil and b.syn >= sent
      if cost[d] > 0 and not news then
        b.lvl = b.lvl + cost[d]
        hold_at_most(b, now, rate, cap)
      end
    end
  end
end

-- What a process knows, for a store that does not: limits (learned from the
-- server's headers, which override the store's, or given at construction,
-- which fill in only where the store has none), and a cool-down (a probe).
local function seed(s, now, limits, learned, cool, probing)
  for d = 1, 4 do
    local limit = limits[d]
    if limit and (s.b[d].lim == nil or (learned and s.b[d].lim ~= limit)) then
      learn(s, d, now, limit)
    end
  end
  if probing and s.probe == nil then
    rebase(s, 1, now)
    s.probe = now
  end
  if cool and cool > 0 then cool_down(s, now, cool) end
end

local function push_back(s, now, busy)
  local rate = pace(s, 1)
  if rate == nil or busy == nil or busy <= 0 then return end
  local untl = now + busy
  local b = s.b[1]
  if bturn(b, b.nxt, 1, now, rate) < untl then
    brebase(b, now, rate, capacity(s, 1, rate))
    hold_until(b, untl, rate, 1)
  end
end

-- Integers as text: tostring would write large ones in exponent form.
local function int(x)
  return string.format('%.0f', x)
end

local function num(x)
  return string.format('%.17g', x)
end

local function opt(i)
  if ARGV[i] == nil or ARGV[i] == '' then return nil end
  return tonumber(ARGV[i])
end

-- Four numbers from ARGV[i..i+3]; absent ones are 0 (costs) or nil (limits).
local function four(i, default)
  local v = {}
  for d = 1, 4 do
    local x = opt(i + d - 1)
    if x == nil then x = default end
    v[d] = x
  end
  return v
end

local function reply(s, kind, ticket, value, now)
  local t = {}
  for d = 1, 4 do t[d] = num(ticket and ticket[d] or 0) end
  return {kind, t, int(value), int(now), redis.call('HGETALL', key)}
end

local op = ARGV[1]
local now = now_us()
local s, existed = load()
-- When this key's positions began: a process's positions of an older key
-- (expired, flushed, a restarted Redis) mean nothing here.
if not existed then s.epoch = now end

if op == 'read' then
  return reply(s, 'read', nil, now, now)
elseif op == 'reserve' then
  -- ARGV[3]: the longest the caller may wait, in µs; ARGV[4..7]: its cost;
  -- ARGV[8..11]: the process's limits, ARGV[12]: its cool-down left (µs):
  -- taken where the store has no limit, all of it where the key was gone.
  local cost = four(4, 0)
  local limits = four(8, nil)
  if not existed then
    seed(s, now, limits, false, opt(12), false)
  else
    for d = 1, 4 do
      if limits[d] and s.b[d].lim == nil then learn(s, d, now, limits[d]) end
    end
  end
  sample(s, now)
  if is_idle(s, now) then
    save(s, now)
    return reply(s, 'free', nil, now, now)
  end
  if first_contact(s) then
    if s.ctc == nil then s.ctc = now end
    if now - s.ctc >= FIRST_CONTACT_LONGEST then hear(s, now) end
  end
  for d = 1, 4 do
    local rate = pace(s, d)
    if rate and reach(s.b[d], now, rate) >= s.b[d].nxt then rebase(s, d, now) end
  end
  local ticket = {}
  for d = 1, 4 do ticket[d] = s.b[d].nxt end
  local verdict = check(s, ticket, cost, now, now + opt(3))
  if verdict[1] == 'late' then
    save(s, now)
    return reply(s, 'late', nil, verdict[2], now)
  end
  if verdict[1] == 'go' then granted(s, now, ticket, cost) end
  for d = 1, 4 do s.b[d].nxt = s.b[d].nxt + cost[d] end
  save(s, now)
  return reply(s, verdict[1], ticket, verdict[2], now)
elseif op == 'record' then
  -- ARGV[3]: ok | throttle | overload; ARGV[4]: sent (µs) or ""; ARGV[5]: hint (µs)
  -- or ""; ARGV[6..9]: the call's cost.
  local kind, sent, hint = ARGV[3], opt(4), opt(5)
  local cost = four(6, 0)
  if kind == 'granted' then
    -- A turn a process handed out from its read: ARGV[6..9] the cost,
    -- ARGV[10..13] the ticket.
    granted(s, now, four(10, 0), cost)
    save(s, now)
    return reply(s, 'ok', nil, now, now)
  end
  hear(s, now)
  if kind == 'answered' then
    save(s, now)
    return reply(s, 'ok', nil, now, now)
  end
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
    refund(s, now, sent, cost)
    if hint then
      if hint <= LONGEST_COOL_DOWN and answers_probe(s, sent) then end_probe(s, now) end
      local held = holds_everyone(s, hint, sent, cost)
      if held > 0 then cool_down(s, now, held) end
    end
    local new_episode = s.ldec == nil or (sent ~= nil and sent > s.ldec)
    if new_episode then decrease(s, now, hint, cost) end
  end
  save(s, now)
  return reply(s, 'ok', nil, now, now)
elseif op == 'observe' then
  -- ARGV[3]: the request's send time (µs) or "" for now; ARGV[4]: a cool-down
  -- (µs) or ""; ARGV[5..12]: limit and remaining of each dimension, or "";
  -- ARGV[13..16]: where the turns handed out by then end, or "" if unknown.
  local at, reset = opt(3) or now, opt(4)
  if at > now then at = now end
  for d = 1, 4 do
    local limit = opt(5 + (d - 1) * 2)
    if limit then learn(s, d, now, limit) end
  end
  for d = 1, 4 do
    local remaining = opt(6 + (d - 1) * 2)
    if remaining and s.b[d].lim then resync(s, d, now, at, remaining, opt(12 + d)) end
  end
  if reset then cool_down(s, now, reset) end
  save(s, now)
  return reply(s, 'ok', nil, now, now)
elseif op == 'release' then
  -- ARGV[3..6]: the ticket; ARGV[7..10]: its cost.
  local ticket, cost = four(3, 0), four(7, 0)
  local last = true
  for d = 1, 4 do
    local b = s.b[d]
    if not (ticket[d] + cost[d] == b.nxt and ticket[d] >= b.pos) then last = false end
  end
  if last then
    for d = 1, 4 do s.b[d].nxt = ticket[d] end
  end
  save(s, now)
  return reply(s, 'ok', nil, now, now)
elseif op == 'seed' then
  -- On connect and reconnect. ARGV[3..6]: the limits per minute, or "";
  -- ARGV[7]: 1 when learned from the server; ARGV[8]: cool-down left (µs) or "";
  -- ARGV[9]: 1 while probing; ARGV[10]: how long (µs) this process's own queue
  -- still runs, which the store's schedule starts after; ARGV[11]: 1 to clear
  -- first, with ARGV[12..15] the limits given at construction; ARGV[16..19]:
  -- where this process's queue ends when it is on the store's positions (it
  -- went on from the store's state while Redis was away), or "", and
  -- ARGV[20..23] where the turns it handed out there end; ARGV[24]: the epoch
  -- of the key they are positions of, taken (instead of ARGV[10]) only if it
  -- is this key's.
  if ARGV[11] == '1' then clear(s, now, four(12, 0)) end
  seed(s, now, four(3, nil), ARGV[7] == '1', opt(8), ARGV[9] == '1')
  local same = ARGV[16] ~= nil and ARGV[16] ~= '' and existed and s.epoch == opt(24)
  if same then
    -- Its queue is in this schedule: what it handed out was paid.
    local nxt, gon = four(16, 0), four(20, 0)
    for d = 1, 4 do
      local b = s.b[d]
      if nxt[d] > b.nxt then b.nxt = nxt[d] end
      if gon[d] > b.gon then b.gon = gon[d] end
      local rate = pace(s, d)
      if rate and reach(b, now, rate) < b.gon then
        b.pos, b.lvl, b.org, b.dec = b.gon, 0, now, now
      end
    end
  else
    push_back(s, now, opt(10))
  end
  save(s, now)
  return reply(s, 'ok', nil, now, now)
elseif op == 'clear' then
  -- ARGV[3..6]: the limits given at construction.
  clear(s, now, four(3, 0))
  save(s, now)
  return reply(s, 'ok', nil, now, now)
end
return redis.error_reply('unknown op ' .. tostring(op))
