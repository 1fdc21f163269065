#pragma once
// dlockd HTTP API pieces shared by dlock-cycle and dlock-handoff (see designs/dlock/README.md):
//   POST /v1/leases {"ttl_ms":N}                              -> 201 {"lease_id",...}
//   POST /v1/locks/{name}/acquire {"lease_id","wait_ms"}      -> 200 {"token",...} | 409 locked
//   POST /v1/locks/{name}/release {"lease_id","token"}        -> 200 | 409 not_holder
//   DELETE /v1/leases/{id}                                    -> 200
#include "workloads.hpp"

namespace sd::loadgen::wl::dlock {

inline Step create_lease(int64_t ttl_ms) {
  return Step{"create-lease",
              [ttl_ms](StepContext&) {
                return http_call(net::Method::kPost, "/v1/leases",
                                 "{\"ttl_ms\":" + std::to_string(ttl_ms) + "}");
              },
              [](const Reply& r, StepContext& ctx) {
                auto id = json_field(r.body, "lease_id");
                if ((r.status != 200 && r.status != 201) || !id)
                  return Verdict::error(http_error("POST /v1/leases", r));
                ctx.op.set("lease_id", *id);
                return Verdict::next();
              }};
}

inline Step delete_lease() {
  return Step{"delete-lease",
              [](StepContext& ctx) {
                return http_call(net::Method::kDelete,
                                 "/v1/leases/" + net::percent_encode(ctx.conn.get("lease_id")));
              },
              [](const Reply& r, StepContext&) {
                return r.status / 100 == 2 ? Verdict::ok()
                                           : Verdict::error(http_error("DELETE lease", r));
              }};
}

// 200 -> the token is captured into the op's vars; 409 -> conflict.
inline Step acquire(int64_t wait_ms, Outcome on_grant) {
  return Step{"acquire",
              [wait_ms](StepContext& ctx) {
                return http_call(net::Method::kPost,
                                 "/v1/locks/" + net::percent_encode(ctx.key) + "/acquire",
                                 "{\"lease_id\":" + json_escape(ctx.conn.get("lease_id")) +
                                     ",\"wait_ms\":" + std::to_string(wait_ms) + "}");
              },
              [on_grant](const Reply& r, StepContext& ctx) {
                if (r.status == 409) return Verdict::conflict();
                auto token = json_field(r.body, "token");
                if (r.status != 200 || !token) return Verdict::error(http_error("acquire", r));
                ctx.op.set("token", *token);
                return Verdict{on_grant, {}};
              }};
}

inline Step release() {
  return Step{"release",
              [](StepContext& ctx) {
                // The token is a JSON number (uint64): it is sent back exactly as received.
                return http_call(net::Method::kPost,
                                 "/v1/locks/" + net::percent_encode(ctx.key) + "/release",
                                 "{\"lease_id\":" + json_escape(ctx.conn.get("lease_id")) +
                                     ",\"token\":" + ctx.op.get("token") + "}");
              },
              [](const Reply& r, StepContext&) {
                return r.status == 200 ? Verdict::ok() : Verdict::error(http_error("release", r));
              }};
}

}  // namespace sd::loadgen::wl::dlock
