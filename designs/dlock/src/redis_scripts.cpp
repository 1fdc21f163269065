// Lua scripts and key names of the Redis data model (see redis_scripts.hpp).

#include "redis_scripts.hpp"

#include <algorithm>

namespace sd::dlock::redis {
namespace {

// Helpers every script starts with. A hold value is "<lease>:<token>" (exclusive string) or
// "<permits>:<token>" (hash field named after the lease). live(l): the lease key still exists.
constexpr const char* kPrelude = R"lua(
local function live(l) return redis.call('EXISTS', 'dlock:lease:' .. l) == 1 end
local function typ(k) return redis.call('TYPE', k).ok end
local function owner_of(k) return string.match(redis.call('GET', k), '^(%x+):') end
local function hash_empty(k)
  local n = redis.call('HLEN', k)
  return n == 0 or (n == 1 and redis.call('HEXISTS', k, '=limit') == 1)
end
local function channel(k)
  if string.sub(k, 1, 11) == 'dlock:lock:' then return 'dlock:released:' .. string.sub(k, 12) end
  return 'dlock:sem-released:' .. string.sub(k, 11)
end
)lua";

// KEYS: lease, holds, holder, counter. ARGV: lease, mode (x | s | m), permits, limit.
// -> {'ok', token, lease pttl, fresh} or {error code}. Atomic: the check, INCR and SET are one
// step.
constexpr const char* kAcquire = R"lua(
local lttl = redis.call('PTTL', KEYS[1])
if lttl <= 0 then return {'nolease'} end
local lease, mode, permits, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local t = typ(KEYS[3])
if t == 'string' then
  local owner, tok = string.match(redis.call('GET', KEYS[3]), '^(%x+):(%d+)$')
  if owner == lease then
    if mode ~= 'x' then return {'mode_mismatch'} end
    return {'ok', tonumber(tok), lttl, 0}
  end
  if owner and live(owner) then return {'locked'} end
  redis.call('DEL', KEYS[3])
elseif t == 'hash' then
  local f = redis.call('HGETALL', KEYS[3])
  local used, mine, stored_limit = 0, nil, 0
  for i = 1, #f, 2 do
    if f[i] == '=limit' then
      stored_limit = tonumber(f[i + 1])
    elseif not live(f[i]) then
      redis.call('HDEL', KEYS[3], f[i])
    elseif f[i] == lease then
      mine = f[i + 1]
    else
      used = used + tonumber(string.match(f[i + 1], '^(%d+):'))
    end
  end
  if mine then
    if mode == 'x' then return {'mode_mismatch'} end
    local p, tok = string.match(mine, '^(%d+):(%d+)$')
    if mode == 'm' and stored_limit ~= limit then return {'limit_mismatch'} end
    if tonumber(p) ~= permits then return {'permits_mismatch'} end
    return {'ok', tonumber(tok), lttl, 0}
  end
  if hash_empty(KEYS[3]) then
    redis.call('DEL', KEYS[3])
  elseif mode == 'x' then
    return {'locked'}
  elseif mode == 'm' then
    if stored_limit ~= limit then return {'limit_mismatch'} end
    if used + permits > limit then return {'locked'} end
  end
elseif t ~= 'none' then
  return {'wrongtype'}
end
local tok = redis.call('INCR', KEYS[4])
if mode == 'x' then
  redis.call('SET', KEYS[3], lease .. ':' .. tok, 'NX', 'PX', lttl)
else
  redis.call('HSET', KEYS[3], lease, permits .. ':' .. tok)
  if mode == 'm' then redis.call('HSET', KEYS[3], '=limit', limit) end
  if redis.call('PTTL', KEYS[3]) < lttl then redis.call('PEXPIRE', KEYS[3], lttl) end
end
redis.call('SADD', KEYS[2], KEYS[3])
redis.call('PEXPIRE', KEYS[2], lttl)
return {'ok', tok, lttl, 1}
)lua";

// KEYS: lease, holds, holder. ARGV: lease, token, 'eq' | 'le'. Compare, then DEL + SREM + PUBLISH.
constexpr const char* kRelease = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 'nolease' end
local lease, want = ARGV[1], tonumber(ARGV[2])
local t, tok = typ(KEYS[3]), nil
if t == 'string' then
  local owner, tk = string.match(redis.call('GET', KEYS[3]), '^(%x+):(%d+)$')
  if owner ~= lease then return 'not_holder' end
  tok = tonumber(tk)
elseif t == 'hash' then
  local v = redis.call('HGET', KEYS[3], lease)
  if not v then return 'not_holder' end
  tok = tonumber(string.match(v, ':(%d+)$'))
else
  return 'not_holder'
end
if (ARGV[3] == 'eq' and tok ~= want) or (ARGV[3] == 'le' and tok > want) then
  return 'not_holder'
end
if t == 'string' then
  redis.call('DEL', KEYS[3])
else
  redis.call('HDEL', KEYS[3], lease)
  if hash_empty(KEYS[3]) then redis.call('DEL', KEYS[3]) end
end
redis.call('SREM', KEYS[2], KEYS[3])
redis.call('PUBLISH', channel(KEYS[3]), 'released')
return 'ok'
)lua";

// KEYS: lease, holds. ARGV: lease. Renews the lease and every hold that still names it.
constexpr const char* kKeepalive = R"lua(
local ttl = redis.call('GET', KEYS[1])
if not ttl then return 'nolease' end
redis.call('PEXPIRE', KEYS[1], ttl)
for _, k in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local t = typ(k)
  if t == 'string' and owner_of(k) == ARGV[1] then
    redis.call('PEXPIRE', k, ttl)
  elseif t == 'hash' and redis.call('HEXISTS', k, ARGV[1]) == 1 then
    if redis.call('PTTL', k) < tonumber(ttl) then redis.call('PEXPIRE', k, ttl) end
  else
    redis.call('SREM', KEYS[2], k)
  end
end
redis.call('PEXPIRE', KEYS[2], ttl)
return 'ok'
)lua";

// KEYS: lease, holds. ARGV: lease. Releases what the lease still holds (waking waiters), then
// deletes it.
constexpr const char* kRevoke = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 'nolease' end
for _, k in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local t, released = typ(k), false
  if t == 'string' and owner_of(k) == ARGV[1] then
    redis.call('DEL', k)
    released = true
  elseif t == 'hash' and redis.call('HDEL', k, ARGV[1]) == 1 then
    if hash_empty(k) then redis.call('DEL', k) end
    released = true
  end
  if released then redis.call('PUBLISH', channel(k), 'released') end
end
redis.call('DEL', KEYS[1], KEYS[2])
return 'ok'
)lua";

// KEYS: holder, counter. -> {last token, limit, {lease, mode, permits, token, lease pttl}...}
constexpr const char* kDescribe = R"lua(
local out = {tonumber(redis.call('GET', KEYS[2]) or '0'), 0}
local function add(l, mode, p, tok)
  local ttl = redis.call('PTTL', 'dlock:lease:' .. l)
  if ttl > 0 then table.insert(out, {l, mode, tonumber(p), tonumber(tok), ttl}) end
end
local t = typ(KEYS[1])
if t == 'string' then
  local owner, tok = string.match(redis.call('GET', KEYS[1]), '^(%x+):(%d+)$')
  if owner then add(owner, 'exclusive', 1, tok) end
elseif t == 'hash' then
  local f = redis.call('HGETALL', KEYS[1])
  for i = 1, #f, 2 do
    if f[i] == '=limit' then
      out[2] = tonumber(f[i + 1])
    else
      local p, tok = string.match(f[i + 1], '^(%d+):(%d+)$')
      add(f[i], 'shared', p, tok)
    end
  end
end
return out
)lua";

RedisArgv eval(const char* body, std::initializer_list<std::string> keys,
               std::initializer_list<std::string> args) {
  RedisArgv argv{"EVAL", std::string(kPrelude) + body, std::to_string(keys.size())};
  argv.insert(argv.end(), keys);
  argv.insert(argv.end(), args);
  return argv;
}

std::string holds_key(const LeaseId& id) {
  return lease_key(id) + ":holds";
}

std::string glob_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string counter_prefix(Kind kind) {
  return kind == Kind::kLock ? "dlock:token:" : "dlock:sem-token:";
}

// Script error codes as Status, in the vocabulary of the core (core.cpp).
Status code_status(const std::string& code) {
  if (code == "nolease") return not_found("lease not found or expired");
  if (code == "wrongtype") return internal_error("redis: a dlock key holds an unexpected type");
  return conflict(code);  // locked, not_holder, mode_mismatch, permits_mismatch, limit_mismatch
}

Status unexpected(const char* what) {
  return internal_error(std::string("redis: unexpected reply to ") + what);
}

}  // namespace

std::string lease_key(const LeaseId& id) {
  return "dlock:lease:" + id;
}
std::string holder_key(Kind kind, const std::string& name) {
  return (kind == Kind::kLock ? "dlock:lock:" : "dlock:sem:") + name;
}
std::string counter_key(Kind kind, const std::string& name) {
  return counter_prefix(kind) + name;
}
std::string released_channel(Kind kind, const std::string& name) {
  return (kind == Kind::kLock ? "dlock:released:" : "dlock:sem-released:") + name;
}
std::string counter_pattern(Kind kind, const std::string& prefix) {
  return counter_prefix(kind) + glob_escape(prefix) + "*";
}
std::string name_of_counter(Kind kind, const std::string& key) {
  const std::string p = counter_prefix(kind);
  return key.starts_with(p) ? key.substr(p.size()) : std::string();
}

Status validate_ttl(Duration ttl) {
  if (ttl < kLimits.min_ttl || ttl > kLimits.max_ttl) {
    return invalid_argument("ttl must be between " + std::to_string(kLimits.min_ttl.count()) +
                            " and " + std::to_string(kLimits.max_ttl.count()) + " ms");
  }
  return Status::ok();
}

Status validate_acquire(const AcquireRequest& req) {
  return dlock::validate_acquire(req, kLimits);
}

RedisArgv grant_lease_argv(const LeaseId& id, Duration ttl) {
  const std::string ms = std::to_string(ttl.count());
  return {"SET", lease_key(id), ms, "PX", ms, "NX"};
}

RedisArgv keepalive_argv(const LeaseId& id) {
  return eval(kKeepalive, {lease_key(id), holds_key(id)}, {id});
}

RedisArgv revoke_argv(const LeaseId& id) {
  return eval(kRevoke, {lease_key(id), holds_key(id)}, {id});
}

RedisArgv acquire_argv(const AcquireRequest& req) {
  const bool sem = req.kind == Kind::kSemaphore;
  const char* mode = sem ? "m" : (req.mode == Mode::kShared ? "s" : "x");
  return eval(kAcquire,
              {lease_key(req.lease_id), holds_key(req.lease_id), holder_key(req.kind, req.name),
               counter_key(req.kind, req.name)},
              {req.lease_id, mode, std::to_string(sem ? req.permits : 1),
               std::to_string(sem ? req.limit : 0)});
}

RedisArgv release_argv(Kind kind, const std::string& name, const LeaseId& lease, Token token,
                       bool exact_token) {
  return eval(kRelease, {lease_key(lease), holds_key(lease), holder_key(kind, name)},
              {lease, std::to_string(token), exact_token ? "eq" : "le"});
}

RedisArgv describe_argv(Kind kind, const std::string& name) {
  return eval(kDescribe, {holder_key(kind, name), counter_key(kind, name)}, {});
}

Result<ScriptGrant> parse_acquire(const RedisValue& v) {
  if (!v.is_array() || v.elements.empty() || !v.elements[0].is_str()) return unexpected("acquire");
  const auto& e = v.elements;
  if (e[0].str != "ok") return code_status(e[0].str);
  if (e.size() != 4 || !e[1].is_int() || !e[2].is_int() || !e[3].is_int() || e[1].integer <= 0) {
    return unexpected("acquire");
  }
  return ScriptGrant{static_cast<Token>(e[1].integer), e[2].integer, e[3].integer == 1};
}

Status parse_release(const RedisValue& v) {
  if (!v.is_str()) return unexpected("release");
  return v.str == "ok" ? Status::ok() : code_status(v.str);
}

Status parse_lease_op(const RedisValue& v) {
  if (!v.is_str()) return unexpected("a lease operation");
  return v.str == "ok" ? Status::ok() : code_status(v.str);
}

Result<LockInfo> parse_describe(Kind kind, const std::string& name, const RedisValue& v) {
  if (!v.is_array() || v.elements.size() < 2 || !v.elements[0].is_int() ||
      !v.elements[1].is_int()) {
    return unexpected("describe");
  }
  LockInfo info;
  info.kind = kind;
  info.name = name;
  info.last_token = static_cast<Token>(v.elements[0].integer);
  info.limit = kind == Kind::kLock ? 1 : static_cast<uint32_t>(v.elements[1].integer);
  for (size_t i = 2; i < v.elements.size(); ++i) {
    const auto& h = v.elements[i].elements;
    if (h.size() != 5 || !h[0].is_str() || !h[1].is_str()) return unexpected("describe");
    HolderInfo hi;
    hi.lease_id = h[0].str;
    hi.mode =
        kind == Kind::kSemaphore ? Mode::kShared : parse_mode(h[1].str).value_or(Mode::kExclusive);
    hi.permits = static_cast<uint32_t>(h[2].integer);
    hi.token = static_cast<Token>(h[3].integer);
    hi.ttl_ms_left = h[4].integer;
    info.holders.push_back(std::move(hi));
  }
  if (info.last_token == 0 && info.holders.empty()) {
    return not_found(std::string(kind_name(kind)) + " not found");
  }
  return info;
}

Status scan_names(RedisPool& pool, Kind kind, const std::string& prefix,
                  std::vector<std::string>& names) {
  std::string cursor = "0";
  do {
    auto r =
        pool.command({"SCAN", cursor, "MATCH", counter_pattern(kind, prefix), "COUNT", "1000"});
    if (!r) return r.status();
    if (!r->is_array() || r->elements.size() != 2 || !r->elements[1].is_array()) {
      return internal_error("redis " + pool.addr().str() + ": unexpected reply to SCAN");
    }
    cursor = r->elements[0].str;
    for (const auto& k : r->elements[1].elements) {
      if (auto n = name_of_counter(kind, k.str); !n.empty()) names.push_back(std::move(n));
    }
  } while (cursor != "0" && names.size() < kListLimit);
  return Status::ok();
}

Result<std::vector<LockInfo>> describe_names(
    std::vector<std::string> names,
    const std::function<Result<LockInfo>(const std::string&)>& describe) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::vector<LockInfo> out;
  for (const auto& n : names) {
    if (out.size() >= kListLimit) break;
    auto info = describe(n);
    if (info) {
      out.push_back(std::move(*info));
    } else if (info.status().code() != Code::kNotFound) {
      return info.status();  // (kNotFound: deleted meanwhile)
    }
  }
  return out;
}

}  // namespace sd::dlock::redis
