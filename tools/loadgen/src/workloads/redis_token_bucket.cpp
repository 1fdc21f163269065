// redis-token-bucket: the usual production recipe, called directly — one EVALSHA per decision of a
// token-bucket Lua script (hash {tokens, ts} per key, Redis TIME, PEXPIRE). Per connection, SCRIPT
// LOAD before the clock starts. Allowed -> ok, denied -> conflict. The bucket: --rl-rate tokens/s,
// capacity --rl-burst.
#include "workloads.hpp"

namespace sd::loadgen::wl {
namespace {

// KEYS[1] bucket; ARGV rate (tokens/s), capacity, cost. Returns {allowed, tokens left}.
constexpr const char* kTokenBucketScript = R"lua(
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(s[1]) or capacity
local ts = tonumber(s[2]) or now
if now > ts then tokens = math.min(capacity, tokens + (now - ts) * rate / 1000000) end
local allowed = 0
if tokens >= cost then tokens = tokens - cost; allowed = 1 end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', math.max(now, ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return {allowed, math.floor(tokens)}
)lua";

}  // namespace

WorkloadSpec redis_token_bucket(const WorkloadOptions& o) {
  WorkloadSpec w = base_spec("redis-token-bucket", Protocol::kResp, 6379, o);
  w.setup.push_back(Step{"script-load",
                         [](StepContext&) {
                           return resp_call({"SCRIPT", "LOAD", kTokenBucketScript});
                         },
                         [](const Reply& r, StepContext& ctx) {
                           if (r.resp.type != RespValue::Type::kBulk)
                             return Verdict::error("SCRIPT LOAD: " + r.resp.describe());
                           ctx.op.set("sha", r.resp.str);
                           return Verdict::next();
                         }});
  const std::string rate = std::to_string(o.rl_rate), burst = std::to_string(o.rl_burst);
  w.op.push_back(Step{
      "evalsha",
      [rate, burst](StepContext& ctx) {
        return resp_call({"EVALSHA", ctx.conn.get("sha"), "1", "tb:" + ctx.key, rate, burst, "1"});
      },
      [](const Reply& r, StepContext&) {
        if (r.resp.type != RespValue::Type::kArray || r.resp.elements.size() != 2 ||
            r.resp.elements[0].type != RespValue::Type::kInteger)
          return Verdict::error("EVALSHA: " + r.resp.describe());
        return r.resp.elements[0].integer == 1 ? Verdict::ok() : Verdict::conflict();
      }});
  return w;
}

}  // namespace sd::loadgen::wl
