#pragma once
// Private to sd_loadgen: one builder per built-in workload (one file each, so each protocol can be
// checked on its own) and small helpers they share.
#include <string>

#include "sd/loadgen/workload.hpp"

namespace sd::loadgen::wl {

WorkloadSpec http_get(const WorkloadOptions& o);
WorkloadSpec dlock_cycle(const WorkloadOptions& o);
WorkloadSpec dlock_handoff(const WorkloadOptions& o);
WorkloadSpec redis_ping(const WorkloadOptions& o);
WorkloadSpec redis_lock_cycle(const WorkloadOptions& o);
WorkloadSpec redis_handoff(const WorkloadOptions& o);
WorkloadSpec etcd_lock_cycle(const WorkloadOptions& o);
WorkloadSpec ratelimit_check(const WorkloadOptions& o);
WorkloadSpec redis_token_bucket(const WorkloadOptions& o);
WorkloadSpec ticketing_book(const WorkloadOptions& o);

// The fields every builder fills the same way. `polls_on_conflict`: the engine has no server-side
// wait queue (Redis, etcd), so a conflict is retried every --retry-ms (0 turns retries off).
inline WorkloadSpec base_spec(std::string name, Protocol protocol, uint16_t default_port,
                              const WorkloadOptions& o, bool polls_on_conflict = false) {
  WorkloadSpec w;
  w.name = std::move(name);
  w.protocol = protocol;
  w.default_port = default_port;
  w.op_timeout = std::chrono::milliseconds(o.op_timeout_ms);
  if (polls_on_conflict) {
    w.retry_on_conflict = o.retry_ms > 0;
    w.retry_interval = std::chrono::milliseconds(o.retry_ms);
  }
  return w;
}

// "POST /x: HTTP 500 {body...}" — bodies are truncated so samples stay readable.
std::string http_error(std::string_view what, const Reply& r);

inline Call http_call(net::Method m, std::string target, std::string body = {}) {
  Call c;
  c.method = m;
  c.target = std::move(target);
  c.body = std::move(body);
  return c;
}

inline Call resp_call(std::vector<std::string> args) {
  Call c;
  c.args = std::move(args);
  return c;
}

// A per-op unique lock value "sdload-<conn>-<seq>" (unique within a run; a leftover key from an
// earlier run blocks NX rather than matching, so reuse across runs is harmless).
std::string unique_token(const StepContext& ctx);

}  // namespace sd::loadgen::wl
