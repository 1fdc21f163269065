// The redis:// store's Lua scripts and key names (see ratelimit_scripts.hpp). Each script mirrors
// the step() of src/<algorithm>.cpp statement by statement; keep them in sync (the store tests'
// equivalence traces fail on any difference).

#include "ratelimit_scripts.hpp"

#include <cstdio>
#include <cstdlib>

#include "limiter_math.hpp"

namespace sd::ratelimit::detail {
namespace {

// t: ARGV[1] or Redis TIME (µs). num(): exact doubles as strings. px(): PEXPIRE ms for a state
// that becomes idle `us` from now.
constexpr const char* kPrelude = R"lua(
local t
if ARGV[1] == '' then
  local now = redis.call('TIME')
  t = tonumber(now[1]) * 1000000 + tonumber(now[2])
else
  t = tonumber(ARGV[1])
end
local P, R, B, c = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local function num(x) return string.format('%.17g', x) end
local function px(us) return string.format('%d', math.ceil(us / 1000) + MARGIN_MS) end
local function reply(ok, remaining, reset, retry, delay)
  if retry ~= 'never' then retry = num(retry) end
  return {ok and 1 or 0, num(remaining), num(reset), retry, num(delay)}
end
local function fields(s)
  local out = {}
  for f in string.gmatch(s, '%S+') do out[#out + 1] = tonumber(f) end
  return out
end
)lua";

constexpr const char* kTokenBucket = R"lua(
local s = redis.call('GET', KEYS[1])
local tokens, last = B, t
if s then local f = fields(s); tokens, last = f[1], f[2] end
t = math.max(t, last)
local tok = math.min(B, tokens + (t - last) * R / P)
if c <= tok then
  local left = tok - c
  if c > 0 then redis.call('SET', KEYS[1], num(left) .. ' ' .. num(t), 'PX', px((B - left) * P / R)) end
  return reply(true, left, (B - left) * P / R, 0, 0)
end
local retry = 'never'
if not (c > B) then retry = (c - tok) * P / R end
return reply(false, tok, (B - tok) * P / R, retry, 0)
)lua";

constexpr const char* kLeakyBucket = R"lua(
local s = redis.call('GET', KEYS[1])
local level, last = 0, t
if s then local f = fields(s); level, last = f[1], f[2] end
t = math.max(t, last)
local lvl = math.max(0, level - (t - last) * R / P)
if lvl + c <= B then
  local filled = lvl + c
  if c > 0 then redis.call('SET', KEYS[1], num(filled) .. ' ' .. num(t), 'PX', px(filled * P / R)) end
  return reply(true, B - filled, filled * P / R, 0, 0)
end
local retry = 'never'
if not (c > B) then retry = (lvl + c - B) * P / R end
return reply(false, B - lvl, lvl * P / R, retry, 0)
)lua";

constexpr const char* kLeakyQueue = R"lua(
local T = P / R
local s = redis.call('GET', KEYS[1])
local free_at = -math.huge
if s then free_at = tonumber(s) end
local function remaining(f)
  if f <= t then return B + 1 end
  return math.max(0, math.floor((t + B * T - f) / T) + 1)
end
local start = math.max(t, free_at)
local wait = start - t
if wait <= B * T then
  local f = start + c * T
  if c > 0 then redis.call('SET', KEYS[1], num(f), 'PX', px(math.max(0, f - t))) end
  return reply(true, remaining(f), math.max(0, f - t), 0, wait)
end
return reply(false, remaining(free_at), math.max(0, free_at - t), wait - B * T, 0)
)lua";

constexpr const char* kFixedWindow = R"lua(
local s = redis.call('GET', KEYS[1])
local sw, scount = math.floor(t / P), 0
if s then local f = fields(s); sw, scount = f[1], f[2] end
local w = math.floor(t / P)
if w < sw then w = sw; t = w * P end
local count = 0
if sw == w then count = scount end
local reset = (w + 1) * P - t
if count + c <= R then
  count = count + c
  if c > 0 then redis.call('SET', KEYS[1], num(w) .. ' ' .. num(count), 'PX', px(reset)) end
  return reply(true, R - count, reset, 0, 0)
end
local retry = 'never'
if not (c > R) then retry = reset end
return reply(false, R - count, reset, retry, 0)
)lua";

constexpr const char* kSlidingWindow = R"lua(
local s = redis.call('GET', KEYS[1])
local sw, scur, sprev = math.floor(t / P), 0, 0
if s then local f = fields(s); sw, scur, sprev = f[1], f[2], f[3] end
local w = math.floor(t / P)
if w < sw then w = sw; t = w * P end
local cur, prev = 0, 0
if sw == w then cur, prev = scur, sprev elseif sw == w - 1 then prev = scur end
local weight = (P - (t - w * P)) / P
local estimate = prev * weight + cur
local ok, retry = false, 0
if estimate + c <= R then
  cur = cur + c
  if c > 0 then
    redis.call('SET', KEYS[1], num(w) .. ' ' .. num(cur) .. ' ' .. num(prev), 'PX', px((w + 2) * P - t))
  end
  ok = true
elseif c > R then
  retry = 'never'
else
  local at
  if cur + c <= R and prev > 0 then
    at = (w + 1) * P - (R - c - cur) * P / prev
  elseif cur > 0 then
    at = math.max((w + 1) * P, (w + 2) * P - (R - c) * P / cur)
  else
    at = (w + 1) * P
  end
  retry = at - t
end
local remaining = math.max(0, math.floor(R - (prev * weight + cur)))
local reset = 0
if cur > 0 then reset = (w + 2) * P - t elseif prev > 0 then reset = (w + 1) * P - t end
return reply(ok, remaining, reset, retry, 0)
)lua";

// KEYS[1]: the log (sorted set), KEYS[2]: the units in it. Pruning reads each expired entry once
// (amortized O(1)) to keep the sum exact; a denial walks the oldest entries in chunks.
constexpr const char* kSlidingLog = R"lua(
local function units(m) return tonumber(string.match(m, ':(%d+)$')) end
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local newest_t, newest_m = nil, nil
if #newest > 0 then
  newest_m, newest_t = newest[1], tonumber(newest[2])
  t = math.max(t, newest_t)
end
local horizon = t - P
local sum = tonumber(redis.call('GET', KEYS[2]) or '0')
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', num(horizon))
if #old > 0 then
  local gone = 0
  for i = 1, #old do gone = gone + units(old[i]) end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', num(horizon))
  sum = sum - gone
  if sum == 0 then redis.call('DEL', KEYS[2]) else redis.call('DECRBY', KEYS[2], gone) end
end
if newest_t and newest_t <= horizon then newest_t = nil end
local ok, remaining, retry = false, 0, 0
if sum + c <= R then
  if c > 0 then
    local u = c
    if newest_t == t then
      u = u + units(newest_m)
      redis.call('ZREM', KEYS[1], newest_m)
    end
    redis.call('ZADD', KEYS[1], num(t), num(t) .. ':' .. num(u))
    redis.call('INCRBY', KEYS[2], num(c))
    redis.call('PEXPIRE', KEYS[1], px(P))
    redis.call('PEXPIRE', KEYS[2], px(P))
    newest_t = t
  end
  ok = true
  remaining = R - (sum + c)
else
  remaining = R - sum
  if c > R then
    retry = 'never'
  else
    local left, i = sum, 0
    while retry == 0 do
      local chunk = redis.call('ZRANGE', KEYS[1], i, i + 127, 'WITHSCORES')
      if #chunk == 0 then break end
      for j = 1, #chunk, 2 do
        left = left - units(chunk[j])
        if left <= R - c then retry = tonumber(chunk[j + 1]) + P - t; break end
      end
      i = i + 128
    end
  end
end
local reset = 0
if newest_t then reset = newest_t + P - t end
return reply(ok, remaining, reset, retry, 0)
)lua";

constexpr const char* kGcra = R"lua(
local T = P / R
local tau = T * B
local s = redis.call('GET', KEYS[1])
local tat = t
if s then tat = tonumber(s) end
local tat0 = math.max(tat, t)
local inc = T * c
local new_tat = tat0 + inc
local allow_at = new_tat - tau
local ok, ttl, retry = false, 0, 0
if t >= allow_at then
  if c > 0 then redis.call('SET', KEYS[1], num(new_tat), 'PX', px(new_tat - t)) end
  ok = true
  ttl = new_tat - t
else
  ttl = tat0 - t
  if inc > tau then retry = 'never' else retry = allow_at - t end
end
return reply(ok, math.max(0, math.floor((tau - ttl) / T)), ttl, retry, 0)
)lua";

std::string build(const char* body) {
  std::string prelude(kPrelude);
  const std::string marker = "MARGIN_MS";
  prelude.replace(prelude.find(marker), marker.size(), std::to_string(kTtlMarginMs));
  return prelude + body;
}

std::string num(double x) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

double burst_of(const StoreItem& item) {
  return static_cast<double>(detail::effective_burst(item.algorithm, item.limit));
}

// <prefix><name>:<P>:<R>:<B>:<key>
std::string key_of(std::string_view prefix, std::string_view name, const StoreItem& item) {
  std::string k(prefix);
  k.append(name).append(":").append(num(period_us(item.limit))).append(":");
  k.append(std::to_string(item.limit.requests)).append(":");
  k.append(num(burst_of(item))).append(":").append(item.key);
  return k;
}

// A %.17g reply field as a double ("inf"/"-inf" included).
std::optional<double> parse_double(const redis::RedisValue& v) {
  if (!v.is_str() || v.str.empty()) return std::nullopt;
  char* end = nullptr;
  const double x = std::strtod(v.str.c_str(), &end);
  if (end != v.str.c_str() + v.str.size()) return std::nullopt;
  return x;
}

}  // namespace

const redis::RedisScript& script_for(Algorithm a) {
  static const redis::RedisScript kScripts[] = {
      redis::RedisScript(build(kTokenBucket)), redis::RedisScript(build(kLeakyBucket)),
      redis::RedisScript(build(kLeakyQueue)),  redis::RedisScript(build(kFixedWindow)),
      redis::RedisScript(build(kSlidingLog)),  redis::RedisScript(build(kSlidingWindow)),
      redis::RedisScript(build(kGcra)),
  };
  switch (a) {
    case Algorithm::kTokenBucket:
      return kScripts[0];
    case Algorithm::kLeakyBucket:
      return kScripts[1];
    case Algorithm::kLeakyQueue:
      return kScripts[2];
    case Algorithm::kFixedWindow:
      return kScripts[3];
    case Algorithm::kSlidingLog:
      return kScripts[4];
    case Algorithm::kSlidingWindow:
      return kScripts[5];
    case Algorithm::kGcra:
      return kScripts[6];
  }
  return kScripts[0];
}

std::string state_key(std::string_view prefix, const StoreItem& item) {
  return key_of(prefix, algorithm_name(item.algorithm), item);
}

std::string sum_key(std::string_view prefix, const StoreItem& item) {
  return key_of(prefix, "sliding_log#sum", item);
}

redis::ScriptCall decide_call(std::string_view prefix, const StoreItem& item,
                              std::optional<double> t_us) {
  redis::ScriptCall call;
  call.script = &script_for(item.algorithm);
  call.keys.push_back(state_key(prefix, item));
  if (item.algorithm == Algorithm::kSlidingLog) call.keys.push_back(sum_key(prefix, item));
  call.args = {t_us ? num(*t_us) : std::string(), num(period_us(item.limit)),
               std::to_string(item.limit.requests), num(burst_of(item)), std::to_string(item.cost)};
  return call;
}

Result<Decision> parse_decision(const redis::RedisAddr& addr, const StoreItem& item,
                                const redis::RedisValue& v) {
  if (v.type == redis::RedisValue::Type::kError) return redis::redis_error_status(addr, v.str);
  auto bad = [&] {
    return internal_error("redis " + addr.str() + ": malformed " +
                          std::string(algorithm_name(item.algorithm)) + " script reply");
  };
  if (!v.is_array() || v.elements.size() != 5 || !v.elements[0].is_int()) return bad();
  const auto remaining = parse_double(v.elements[1]);
  const auto reset = parse_double(v.elements[2]);
  const auto delay = parse_double(v.elements[4]);
  const bool never = v.elements[3].is_str() && v.elements[3].str == "never";
  const auto retry = never ? std::optional<double>(0) : parse_double(v.elements[3]);
  if (!remaining || !reset || !retry || !delay) return bad();
  Decision d;
  d.allowed = v.elements[0].integer == 1;
  d.limit = item.limit.requests;
  d.remaining = floor_count(*remaining);
  d.reset_after = us_to_nanos(*reset);
  d.retry_after = never ? kNever : us_to_nanos(*retry);
  d.delay = us_to_nanos(*delay);
  if (item.cost == 0) {  // report only, as KeyedLimiter does
    d.allowed = true;
    d.retry_after = Nanos{0};
    d.delay = Nanos{0};
  }
  return d;
}

}  // namespace sd::ratelimit::detail
