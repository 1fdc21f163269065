// dlock-cycle: acquire + release per op, one lease per connection created before the clock starts.
// No client-side retry: contention is handled by the server's wait queue (--wait-ms); a 409 after
// the wait is a conflict.
#include "dlock_common.hpp"

namespace sd::loadgen::wl {

WorkloadSpec dlock_cycle(const WorkloadOptions& o) {
  WorkloadSpec w = base_spec("dlock-cycle", Protocol::kHttp, 7401, o);
  w.setup.push_back(dlock::create_lease(o.lease_ttl_ms));
  w.op.push_back(dlock::acquire(o.wait_ms, Outcome::kNext));
  w.op.push_back(dlock::release());
  w.teardown.push_back(dlock::delete_lease());
  return w;
}

}  // namespace sd::loadgen::wl
