// redis-lock-cycle: SET NX PX + EVAL compare-and-delete. Redis has no wait queue, so contended
// clients poll: a NX failure is retried every --retry-ms (50 ms default, as Redlock clients do)
// until it succeeds or --op-timeout-ms passes; the op latency covers the whole wait.
#include "redis_common.hpp"

namespace sd::loadgen::wl {

WorkloadSpec redis_lock_cycle(const WorkloadOptions& o) {
  WorkloadSpec w;
  w.name = "redis-lock-cycle";
  w.protocol = Protocol::kResp;
  w.default_port = 6379;
  w.op_timeout = std::chrono::milliseconds(o.op_timeout_ms);
  w.retry_on_conflict = o.retry_ms > 0;
  w.retry_interval = std::chrono::milliseconds(o.retry_ms);
  w.op.push_back(redis::set_nx(o.ttl_ms, Outcome::kNext));
  w.op.push_back(redis::release());
  return w;
}

}  // namespace sd::loadgen::wl
