// dlock-handoff: B's acquire long-polls on the server (event-driven grant), so the measured
// latency is the server's release -> next-waiter grant path plus one network hop.
#include <algorithm>

#include "dlock_common.hpp"

namespace sd::loadgen::wl {

WorkloadSpec dlock_handoff(const WorkloadOptions& o) {
  WorkloadSpec w = base_spec("dlock-handoff", Protocol::kHttp, 7401, o);
  w.setup.push_back(dlock::create_lease(o.lease_ttl_ms));
  w.teardown.push_back(dlock::delete_lease());
  HandoffSpec h;
  h.acquire = dlock::acquire(0, Outcome::kOk);
  h.wait = dlock::acquire(std::max<int64_t>(o.wait_ms, 30'000), Outcome::kOk);
  h.release = dlock::release();
  h.poll = false;
  w.handoff = std::move(h);
  return w;
}

}  // namespace sd::loadgen::wl
