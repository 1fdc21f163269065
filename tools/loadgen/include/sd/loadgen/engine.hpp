#pragma once
// The load engine: T threads, each with its own event loop, N connections spread over them.
// Closed loop (each connection sends its next op when the previous completes) or open loop (a fixed
// total arrival rate, latency from the intended send time). Warm-up results are discarded; the run
// stops by itself after warmup + duration (+ drain timeout) or after max_ops measured ops.
// Implementation (Asio, C++20 coroutines) is private to the library.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "sd/base/status.hpp"
#include "sd/loadgen/histogram.hpp"
#include "sd/loadgen/keys.hpp"
#include "sd/loadgen/workload.hpp"

namespace sd::loadgen {

struct Target {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string to_string() const;
};

// "host:port", "[::1]:port", "scheme://host:port[/...]" or "host" (default_port). kInvalidArgument
// when malformed.
Result<Target> parse_target(std::string_view s, uint16_t default_port);
// True for 127.0.0.0/8, ::1 and IPv4-mapped 127/8 (::ffff:127.x.y.z) literals.
bool is_loopback_literal(std::string_view address);

struct Progress {
  double elapsed_s = 0;  // since the start of warm-up
  bool warming_up = true;
  uint64_t ops = 0;  // measured so far
  uint64_t errors = 0;
  double ops_per_s = 0;  // measured ops / measured time so far
};

struct RunConfig {
  WorkloadSpec workload;
  Target target;
  uint32_t connections = 8;
  uint32_t threads = 1;
  double rate = 0;  // total ops/s; 0 = closed loop
  std::chrono::milliseconds warmup{2'000};
  std::chrono::milliseconds duration{10'000};
  std::chrono::milliseconds drain_timeout{5'000};
  std::chrono::milliseconds request_timeout{10'000};  // one request/reply on the wire
  std::chrono::milliseconds handoff_delay{5};         // B's wait is in place before A releases
  uint64_t max_ops = 0;                               // 0 = unlimited
  KeyConfig keys;
  uint64_t seed = 1;
  size_t max_error_samples = 5;
  std::function<void(const Progress&)> on_progress;  // about once a second, from run()'s thread
};

struct RunResult {
  std::string workload;
  std::string target;
  std::string mode;  // "closed" or "open"
  uint32_t connections = 0;
  uint32_t threads = 0;
  double rate = 0;
  double duration_s = 0;  // the measured window actually used
  uint64_t ops = 0;       // ok + conflicts + errors
  uint64_t ok = 0;
  uint64_t conflicts = 0;
  uint64_t errors = 0;
  uint64_t retries = 0;  // conflicting attempts that were retried
  double throughput_ops_s = 0;
  Histogram latency;  // nanoseconds, ops of every outcome
  // Round trips of the op script's timed steps (Step::timed), in script order, nanoseconds.
  struct StepLatency {
    std::string name;
    Histogram latency;
  };
  std::vector<StepLatency> steps;
  std::vector<std::string> error_samples;
  KeyConfig keys;
  uint64_t seed = 0;
};

// Runs the load. Errors: kInvalidArgument for a bad config or a non-loopback target; kUnavailable
// when the run could not start (resolve/connect/setup failed). Op failures during the run are not
// errors of run(): they are counted in the result.
Result<RunResult> run(const RunConfig& config);

// {workload, target, mode, connections, rate, duration_s, ops, ok, conflicts, errors,
//  throughput_ops_s, latency_us:{p50,p90,p99,p999,max,mean}, error_samples, ...}, plus
//  steps:{<name>:{count, latency_us:{...}}} when the workload has timed steps.
nlohmann::json to_json(const RunResult& r);

}  // namespace sd::loadgen
