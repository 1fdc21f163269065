// redis-lock-cycle: SET NX PX + EVAL compare-and-delete. Redis has no wait queue, so contended
// clients poll: a NX failure is retried every --retry-ms (50 ms default, as Redlock clients do)
// until it succeeds or --op-timeout-ms passes; the op latency covers the whole wait.
#include "redis_common.hpp"

namespace sd::loadgen::wl {

WorkloadSpec redis_lock_cycle(const WorkloadOptions& o) {
  WorkloadSpec w =
      base_spec("redis-lock-cycle", Protocol::kResp, 6379, o, /*polls_on_conflict=*/true);
  w.op.push_back(redis::set_nx(o.ttl_ms, Outcome::kNext));
  w.op.push_back(redis::release());
  return w;
}

}  // namespace sd::loadgen::wl
