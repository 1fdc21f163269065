// sd-load: command-line front end of the load engine. Parses flags, builds the workload, prints a
// progress line to stderr every second and the result JSON to stdout (or --out).
// Exit codes: 0 the run completed (op errors are in the JSON), 1 the run could not start (resolve,
// connect or per-connection setup failed; output file not writable), 2 usage error (bad flags,
// unknown workload, non-loopback target).
#include <cstdio>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "sd/loadgen/engine.hpp"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitCannotStart = 1;
constexpr int kExitUsage = 2;

std::string footer() {
  return sd::loadgen::workload_help() + R"(
Modes:
  closed loop (default): each connection sends its next op when the previous one completes.
  open loop (--rate R): R ops/s in total, evenly spread; latency is measured from each op's
      intended send time, so a stalled server shows up as latency (coordinated-omission
      correction, as in wrk2).

Keys (lock workloads): --dist uniform|zipf|hot|distinct over --keys K keys named
  <key-prefix><index>; zipf ranks key 0 hottest (--zipf-s, default 0.99); hot = every op on key 0;
  distinct = connection i uses key i (uncontended). --seed makes the key sequence reproducible.

Output: JSON on stdout (or --out FILE): {workload, target, mode, connections, rate, duration_s,
  ops, ok, conflicts, errors, retries, throughput_ops_s, latency_us:{p50,p90,p99,p999,max,mean},
  keys, seed, error_samples}, plus steps:{<step>:{count, latency_us}} for workloads that time one
  request of their op on its own (ticketing-book: hold). Progress goes to stderr once a second
  (--quiet to silence).

Targets must resolve to loopback (127.0.0.0/8 or ::1); anything else is refused.

Exit codes: 0 run completed (see "errors" in the JSON), 1 could not start (resolve/connect/setup
  failed), 2 usage error.

Examples:
  sd-load -w http-get -t 127.0.0.1:7401 -c 16 -d 10
  sd-load -w dlock-cycle -t 127.0.0.1:7401 -c 32 --dist zipf --keys 1000 --wait-ms 1000
  sd-load -w redis-lock-cycle -t 127.0.0.1:6379 -c 32 --rate 5000 --dist hot
  sd-load -w dlock-handoff -t 127.0.0.1:7401 -c 2 -d 10
  sd-load -w ticketing-book -t 127.0.0.1:7403 -c 64 --event 4 --hot 32
)";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sd::loadgen;
  CLI::App app{
      "sd-load: load generator for the project's services (and Redis, etcd, nginx as peers)",
      "sd-load"};
  app.footer(footer());
  app.get_formatter()->column_width(34);

  std::string workload_name, target_s, dist_s = "uniform", out_path;
  RunConfig cfg;
  WorkloadOptions wo;
  double duration_s = 10, warmup_s = 2, drain_s = 5;
  int64_t request_timeout_ms = 10'000, handoff_delay_ms = 5;
  bool quiet = false;

  app.add_option("-w,--workload", workload_name, "Workload name (see below)")
      ->required()
      ->envname("SD_LOAD_WORKLOAD");
  app.add_option("-t,--target", target_s,
                 "host:port, [::1]:port or scheme://host:port (default 127.0.0.1:<workload's "
                 "default port: dlock 7401, redis 6379, etcd 2379, http 80>)")
      ->envname("SD_LOAD_TARGET");
  app.add_option("-c,--connections", cfg.connections, "Connections (default 8)")
      ->check(CLI::Range(1u, 100000u))
      ->envname("SD_LOAD_CONNECTIONS");
  app.add_option("-T,--threads", cfg.threads, "Engine threads, one event loop each (default 1)")
      ->check(CLI::Range(1u, 256u))
      ->envname("SD_LOAD_THREADS");
  app.add_option("-d,--duration", duration_s, "Measured seconds (default 10)")
      ->check(CLI::PositiveNumber)
      ->envname("SD_LOAD_DURATION");
  app.add_option("--warmup", warmup_s, "Warm-up seconds, results discarded (default 2)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("-R,--rate", cfg.rate, "Open loop: total ops/s (default 0 = closed loop)")
      ->check(CLI::NonNegativeNumber)
      ->envname("SD_LOAD_RATE");
  app.add_option("--max-ops", cfg.max_ops, "Stop after this many measured ops (0 = no cap)");
  app.add_option("--drain-timeout", drain_s,
                 "Seconds in-flight ops may take after the end (default 5); then abandoned")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--request-timeout-ms", request_timeout_ms,
                 "One request/reply deadline (default 10000)")
      ->check(CLI::PositiveNumber);
  app.add_option("--op-timeout-ms", wo.op_timeout_ms,
                 "Give up retrying a conflicting op after this long (default 10000)")
      ->check(CLI::PositiveNumber);
  app.add_option("--path", wo.path, "http-get: request path (default /healthz)");
  app.add_option("--wait-ms", wo.wait_ms, "dlock: acquire wait_ms for contended runs (default 0)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--retry-ms", wo.retry_ms,
                 "redis/etcd: retry interval after a conflict, redis-handoff poll interval "
                 "(default 50; 0 = no retry)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--rl-rate", wo.rl_rate,
                 "redis-token-bucket: refill rate, tokens/s (default 1000000)")
      ->check(CLI::PositiveNumber);
  app.add_option("--rl-burst", wo.rl_burst, "redis-token-bucket: bucket capacity (default 1000000)")
      ->check(CLI::PositiveNumber);
  app.add_option("--event", wo.event, "ticketing-book: the event id to book seats of");
  app.add_option("--seats", wo.seats, "ticketing-book: use the event's first N seats (default all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--hot", wo.hot,
                 "ticketing-book: every op picks among the first K seats (flash sale; default "
                 "all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--ttl-ms", wo.ttl_ms, "redis: lock TTL (PX) in ms (default 10000)")
      ->check(CLI::PositiveNumber);
  app.add_option("--handoff-delay-ms", handoff_delay_ms,
                 "handoff: time between B's wait and A's release (default 5)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--dist", dist_s, "Key distribution: uniform|zipf|hot|distinct (default uniform)")
      ->check(CLI::IsMember({"uniform", "zipf", "hot", "distinct"}));
  app.add_option("--keys", cfg.keys.keyspace, "Keyspace size K (default 1000)")
      ->check(CLI::PositiveNumber);
  app.add_option("--zipf-s", cfg.keys.zipf_s, "Zipf exponent s (default 0.99)")
      ->check(CLI::PositiveNumber);
  app.add_option("--key-prefix", cfg.keys.prefix, "Key name prefix (default sdload-)");
  app.add_option("--seed", cfg.seed, "RNG seed for key choice (default 1)")
      ->envname("SD_LOAD_SEED");
  app.add_option("-o,--out", out_path, "Write the result JSON here instead of stdout");
  app.add_flag("-q,--quiet", quiet, "No progress lines on stderr");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  cfg.keys.dist = *parse_key_dist(dist_s);
  cfg.duration = std::chrono::milliseconds(static_cast<int64_t>(duration_s * 1000));
  cfg.warmup = std::chrono::milliseconds(static_cast<int64_t>(warmup_s * 1000));
  cfg.drain_timeout = std::chrono::milliseconds(static_cast<int64_t>(drain_s * 1000));
  cfg.request_timeout = std::chrono::milliseconds(request_timeout_ms);
  cfg.handoff_delay = std::chrono::milliseconds(handoff_delay_ms);
  // Leases (dlock, etcd) must outlive the run without keepalives: the run length plus a margin.
  int64_t run_ms = (cfg.warmup + cfg.duration + cfg.drain_timeout).count();
  wo.lease_ttl_ms = std::max<int64_t>(60'000, run_ms + 30'000);
  wo.seed = cfg.seed;

  auto w = make_workload(workload_name, wo);
  if (!w.is_ok()) {
    std::cerr << "sd-load: " << w.status().message() << "\n";
    return kExitUsage;
  }
  cfg.workload = std::move(*w);
  auto target = parse_target(target_s.empty() ? "127.0.0.1" : target_s, cfg.workload.default_port);
  if (!target.is_ok()) {
    std::cerr << "sd-load: " << target.status().message() << "\n";
    return kExitUsage;
  }
  cfg.target = *target;

  if (!quiet) {
    cfg.on_progress = [](const Progress& p) {
      std::fprintf(stderr, "[%6.1fs] %s ops=%llu ops/s=%.0f errors=%llu\n", p.elapsed_s,
                   p.warming_up ? "warmup  " : "measured", static_cast<unsigned long long>(p.ops),
                   p.ops_per_s, static_cast<unsigned long long>(p.errors));
    };
  }

  auto result = run(cfg);
  if (!result.is_ok()) {
    std::cerr << "sd-load: " << result.status().message() << "\n";
    return result.status().code() == sd::Code::kInvalidArgument ? kExitUsage : kExitCannotStart;
  }
  std::string json = to_json(*result).dump(2);
  if (out_path.empty()) {
    std::cout << json << "\n";
  } else {
    std::ofstream f(out_path);
    f << json << "\n";
    if (!f) {
      std::cerr << "sd-load: cannot write " << out_path << "\n";
      return kExitCannotStart;
    }
  }
  return kExitOk;
}
