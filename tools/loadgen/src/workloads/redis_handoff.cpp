// redis-handoff: the waiter can only poll, so the handoff latency is dominated by --retry-ms
// (about half of it on average) — the cost dlock's server-side wait queue avoids.
#include "redis_common.hpp"

namespace sd::loadgen::wl {

WorkloadSpec redis_handoff(const WorkloadOptions& o) {
  WorkloadSpec w = base_spec("redis-handoff", Protocol::kResp, 6379, o);
  w.retry_interval = std::chrono::milliseconds(o.retry_ms > 0 ? o.retry_ms : 50);
  HandoffSpec h;
  h.acquire = redis::set_nx(o.ttl_ms, Outcome::kOk);
  h.wait = redis::set_nx(o.ttl_ms, Outcome::kOk);
  h.release = redis::release();
  h.poll = true;
  w.handoff = std::move(h);
  return w;
}

}  // namespace sd::loadgen::wl
