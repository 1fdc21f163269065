#pragma once
// The single-instance Redis lock (the building block of Redlock, see redis.io "Distributed locks
// with Redis"):
//   acquire: SET key token NX PX ttl   -> +OK | (nil) when held
//   release: EVAL <compare-and-delete> 1 key token -> :1 deleted | :0 not ours any more
#include "workloads.hpp"

namespace sd::loadgen::wl::redis {

// The standard script: delete only if the value is still our token, atomically.
inline constexpr const char* kReleaseScript =
    "if redis.call(\"get\",KEYS[1]) == ARGV[1] then return redis.call(\"del\",KEYS[1]) else "
    "return 0 end";

inline Step set_nx(int64_t ttl_ms, Outcome on_success) {
  return Step{
      "set-nx",
      [ttl_ms](StepContext& ctx) {
        // Keep one token per hold: a polling waiter retries with the same value.
        if (ctx.op.get("token").empty()) ctx.op.set("token", unique_token(ctx));
        return resp_call({"SET", ctx.key, ctx.op.get("token"), "NX", "PX", std::to_string(ttl_ms)});
      },
      [on_success](const Reply& r, StepContext&) {
        if (r.resp.is_ok_status()) return Verdict{on_success, {}};
        if (r.resp.type == RespValue::Type::kNull) return Verdict::conflict();
        return Verdict::error("SET NX: " + r.resp.describe());
      }};
}

inline Step release() {
  return Step{"release",
              [](StepContext& ctx) {
                return resp_call({"EVAL", kReleaseScript, "1", ctx.key, ctx.op.get("token")});
              },
              [](const Reply& r, StepContext& ctx) {
                ctx.op.set("token", {});  // the next hold needs a fresh token
                if (r.resp.type == RespValue::Type::kInteger && r.resp.integer == 1)
                  return Verdict::ok();
                if (r.resp.type == RespValue::Type::kInteger)
                  return Verdict::error("release: lock no longer ours (TTL expired?)");
                return Verdict::error("release EVAL: " + r.resp.describe());
              }};
}

}  // namespace sd::loadgen::wl::redis
