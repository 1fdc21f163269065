// http-get: one GET per op; any 2xx is ok.
#include "workloads.hpp"

namespace sd::loadgen::wl {

WorkloadSpec http_get(const WorkloadOptions& o) {
  WorkloadSpec w;
  w.name = "http-get";
  w.protocol = Protocol::kHttp;
  w.default_port = 80;
  w.op_timeout = std::chrono::milliseconds(o.op_timeout_ms);
  std::string path = o.path;
  w.op.push_back(Step{"get", [path](StepContext&) { return http_call(net::Method::kGet, path); },
                      [path](const Reply& r, StepContext&) {
                        return r.status / 100 == 2 ? Verdict::ok()
                                                   : Verdict::error(http_error("GET " + path, r));
                      }});
  return w;
}

}  // namespace sd::loadgen::wl
