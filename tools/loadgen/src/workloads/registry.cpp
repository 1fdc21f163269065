// Built-in workloads by name, with their --help text.
#include <functional>

#include "workloads.hpp"

namespace sd::loadgen {

namespace {
struct Entry {
  const char* name;
  const char* help;
  WorkloadSpec (*build)(const WorkloadOptions&);
};

const Entry kEntries[] = {
    {"http-get",
     "GET --path (default /healthz) over HTTP/1.1 keep-alive; non-2xx is an error. For any "
     "service's health route or nginx (--path /).",
     &wl::http_get},
    {"dlock-cycle",
     "dlockd: per connection a lease (POST /v1/leases, TTL covering the run); per op POST "
     "/v1/locks/{key}/acquire {lease_id, wait_ms: --wait-ms} -> token, then POST "
     "/v1/locks/{key}/release {lease_id, token}. 409 locked counts as a conflict.",
     &wl::dlock_cycle},
    {"dlock-handoff",
     "dlockd, 2 connections per key: A holds, B long-polls acquire (wait_ms >= 30 s), A releases; "
     "latency = A's release sent -> B's grant received; roles swap. Closed loop only.",
     &wl::dlock_handoff},
    {"redis-ping", "Redis PING (calibration: the floor of one RESP round trip).", &wl::redis_ping},
    {"redis-lock-cycle",
     "Redis single-instance lock: SET key token NX PX --ttl-ms, then EVAL compare-and-delete. A NX "
     "failure is a conflict, retried every --retry-ms (0: no retry) until --op-timeout-ms.",
     &wl::redis_lock_cycle},
    {"redis-handoff",
     "Redis, 2 connections per key: A holds, B polls SET NX every --retry-ms, A releases (EVAL); "
     "latency = A's release sent -> B's successful SET received. Closed loop only.",
     &wl::redis_handoff},
    {"etcd-lock-cycle",
     "etcd v3 JSON gateway: per connection POST /v3/lease/grant; per op POST /v3/kv/txn "
     "(create_revision(key) == 0 -> put key with the lease), then POST /v3/kv/deleterange. A "
     "failed compare is a conflict, retried every --retry-ms until --op-timeout-ms.",
     &wl::etcd_lock_cycle},
    {"ratelimit-check",
     "ratelimitd: POST /v1/check {domain: bench, descriptors: [{client: <key>}], cost: 1}; 200 "
     "allowed is ok, 429 denied is a conflict (both are decisions).",
     &wl::ratelimit_check},
    {"redis-token-bucket",
     "Redis, the usual rate-limiter recipe called directly: EVALSHA of a token-bucket Lua script "
     "(hash per key, Redis TIME, PEXPIRE), rate --rl-rate/s, capacity --rl-burst. Denied is a "
     "conflict.",
     &wl::redis_token_bucket},
    {"ticketing-book",
     "ticketd: one booking attempt per op by shopper c<connection>: POST "
     "/v1/events/{--event}/holds (one seat), POST /v1/holds/{id}/pay, then POST "
     "/v1/orders/{id}/cancel to put the seat back on sale (steady state). ok = booked; a 409 "
     "(seat taken, hold lost) is a conflict. Seats: the event's first --seats N (default all, read "
     "once from GET /v1/events/{E}/seats), each op uniform over the first --hot K of them "
     "(flash sale; default all). The hold request's own latency is reported as steps.hold.",
     &wl::ticketing_book},
};
}  // namespace

Result<WorkloadSpec> make_workload(std::string_view name, const WorkloadOptions& opts) {
  if (opts.retry_ms < 0 || opts.wait_ms < 0 || opts.ttl_ms <= 0 || opts.lease_ttl_ms <= 0 ||
      opts.op_timeout_ms <= 0 || opts.rl_rate <= 0 || opts.rl_burst <= 0)
    return invalid_argument("workload options must be positive (retry/wait may be 0)");
  if (opts.path.empty() || opts.path[0] != '/')
    return invalid_argument("--path must start with '/'");
  if (opts.seats < 0 || opts.hot < 0 || (opts.seats > 0 && opts.hot > opts.seats))
    return invalid_argument("--seats and --hot must be >= 0, and --hot <= --seats");
  if (name == "ticketing-book" && opts.event <= 0)
    return invalid_argument("ticketing-book needs --event (an event id of ticketd)");
  for (const auto& e : kEntries)
    if (name == e.name) return e.build(opts);
  return invalid_argument("unknown workload '" + std::string(name) + "' (one of: http-get, " +
                          "dlock-cycle, dlock-handoff, redis-ping, redis-lock-cycle, " +
                          "redis-handoff, etcd-lock-cycle, ratelimit-check, " +
                          "redis-token-bucket, ticketing-book)");
}

std::vector<std::string> workload_names() {
  std::vector<std::string> out;
  for (const auto& e : kEntries) out.emplace_back(e.name);
  return out;
}

std::string workload_help() {
  std::string out = "Workloads:\n";
  for (const auto& e : kEntries) {
    out += "  ";
    out += e.name;
    out += "\n";
    // Wrap at ~96 columns, indented under the name.
    std::string_view text = e.help;
    while (!text.empty()) {
      size_t cut = text.size() <= 90 ? text.size() : text.rfind(' ', 90);
      if (cut == std::string_view::npos || cut == 0) cut = std::min<size_t>(90, text.size());
      out += "      ";
      out += text.substr(0, cut);
      out += "\n";
      text.remove_prefix(cut);
      while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    }
  }
  return out;
}

namespace wl {

std::string http_error(std::string_view what, const Reply& r) {
  std::string body = r.body.size() > 120 ? r.body.substr(0, 120) + "..." : r.body;
  return std::string(what) + ": HTTP " + std::to_string(r.status) + " " + body;
}

std::string unique_token(const StepContext& ctx) {
  return "sdload-" + std::to_string(ctx.conn_index) + "-" + std::to_string(ctx.op_seq);
}

}  // namespace wl
}  // namespace sd::loadgen
