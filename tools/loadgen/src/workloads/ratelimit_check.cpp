// ratelimit-check: one POST /v1/check per op to ratelimitd, descriptor {client: <key>} in domain
// "bench" (the bench runner's rules file defines it). 200 allowed -> ok; 429 denied -> conflict
// (a decision too, counted apart so a run shows how many were denied).
#include "workloads.hpp"

namespace sd::loadgen::wl {

WorkloadSpec ratelimit_check(const WorkloadOptions& o) {
  WorkloadSpec w = base_spec("ratelimit-check", Protocol::kHttp, 7402, o);
  w.op.push_back(
      Step{"check",
           [](StepContext& ctx) {
             return http_call(
                 net::Method::kPost, "/v1/check",
                 R"({"domain":"bench","descriptors":[{"entries":[{"key":"client","value":)" +
                     json_escape(ctx.key) + "}]}],\"cost\":1}");
           },
           [](const Reply& r, StepContext&) {
             if (r.status == 200) return Verdict::ok();
             if (r.status == 429) return Verdict::conflict();
             return Verdict::error(http_error("POST /v1/check", r));
           }});
  return w;
}

}  // namespace sd::loadgen::wl
