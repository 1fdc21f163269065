// redis-ping: PING -> +PONG. The RESP round-trip floor, to calibrate the lock numbers against.
#include "workloads.hpp"

namespace sd::loadgen::wl {

WorkloadSpec redis_ping(const WorkloadOptions& o) {
  WorkloadSpec w = base_spec("redis-ping", Protocol::kResp, 6379, o);
  w.op.push_back(Step{"ping", [](StepContext&) { return resp_call({"PING"}); },
                      [](const Reply& r, StepContext&) {
                        if (r.resp.type == RespValue::Type::kSimple && r.resp.str == "PONG")
                          return Verdict::ok();
                        return Verdict::error("PING: " + r.resp.describe());
                      }});
  return w;
}

}  // namespace sd::loadgen::wl
