// http-get: one GET per op; any 2xx is ok.
#include "workloads.hpp"

namespace sd::loadgen::wl {

WorkloadSpec http_get(const WorkloadOptions& o) {
  WorkloadSpec w = base_spec("http-get", Protocol::kHttp, 80, o);
  std::string path = o.path;
  w.op.push_back(Step{"get", [path](StepContext&) { return http_call(net::Method::kGet, path); },
                      [path](const Reply& r, StepContext&) {
                        return r.status / 100 == 2 ? Verdict::ok()
                                                   : Verdict::error(http_error("GET " + path, r));
                      }});
  return w;
}

}  // namespace sd::loadgen::wl
