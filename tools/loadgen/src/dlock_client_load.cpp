// sd-load-dlock: lock cycles through the dlock client library (Session + Mutex), for any backend
// URI (memory://, sqlite://, dlockd://, redis://, redlock://, etcd://). sd-load speaks the wire
// protocols itself; this tool measures what an application gets from the client API, including
// the backend's own algorithm (Redlock's quorum round, etcd's txn + watch, ...). Closed loop: each
// client is a thread with its own Session, cycling lock(wait) + unlock. Output: the same JSON as
// sd-load, so the bench runner treats both alike (throughput counts completed cycles only).
// Exit codes: 0 run completed (op errors are in the JSON), 1 could not start, 2 usage error.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "sd/dlock/backend.hpp"
#include "sd/dlock/client.hpp"
#include "sd/loadgen/engine.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using sd::loadgen::Histogram;

struct Config {
  std::string backend;
  uint32_t clients = 8;
  double duration_s = 5, warmup_s = 1;
  std::string dist = "distinct";  // distinct | hot | uniform
  uint64_t keys = 1000;
  std::string prefix = "sdload-";
  int64_t wait_ms = 1000;
  int64_t ttl_ms = 10'000;
  uint64_t seed = 1;
};

// One client's tallies; merged after the threads join.
struct Tally {
  Histogram latency;
  uint64_t ok = 0, conflicts = 0, errors = 0;
  std::vector<std::string> error_samples;
};

void note_error(Tally& t, const std::string& what) {
  ++t.errors;
  if (t.error_samples.size() < 3) t.error_samples.push_back(what);
}

void client_loop(const Config& cfg, std::shared_ptr<sd::dlock::Backend> backend, uint32_t index,
                 Clock::time_point measure_from, Clock::time_point end, Tally& tally) {
  sd::dlock::SessionOptions so;
  so.ttl = sd::Duration{cfg.ttl_ms};
  auto session = sd::dlock::Session::create(backend, so);
  if (!session) return note_error(tally, "session: " + session.status().to_string());
  std::mt19937_64 rng(cfg.seed * 1'000'003 + index);
  std::uniform_int_distribution<uint64_t> pick(0, cfg.keys - 1);
  while (Clock::now() < end) {
    uint64_t k = cfg.dist == "hot" ? 0 : cfg.dist == "distinct" ? index : pick(rng);
    sd::dlock::Mutex m(*session, cfg.prefix + std::to_string(k));
    auto t0 = Clock::now();
    auto token = m.lock(sd::Duration{cfg.wait_ms});
    bool counted = t0 >= measure_from;
    if (!token) {
      if (token.status().code() == sd::Code::kConflict) {
        if (counted) ++tally.conflicts;
      } else if (counted) {
        note_error(tally, "lock: " + token.status().to_string());
      }
      if (!(*session)->alive()) return note_error(tally, "session lost");
      continue;
    }
    sd::Status st = m.unlock();
    auto t1 = Clock::now();
    if (!counted) continue;
    tally.latency.record(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
    if (st.is_ok()) {
      ++tally.ok;
    } else {
      note_error(tally, "unlock: " + st.to_string());
    }
  }
  (void)(*session)->close();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sd-load-dlock: lock cycles through the dlock client library, any backend URI",
               "sd-load-dlock"};
  Config cfg;
  std::string out_path;
  bool quiet = false;
  app.add_option("-b,--backend", cfg.backend, "Backend URI (dlockd://, redis://, etcd://, ...)")
      ->required();
  app.add_option("-c,--clients", cfg.clients, "Client threads, one Session each (default 8)")
      ->check(CLI::Range(1u, 1024u));
  app.add_option("-d,--duration", cfg.duration_s, "Measured seconds (default 5)")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", cfg.warmup_s, "Warm-up seconds, discarded (default 1)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--dist", cfg.dist, "distinct (client i: key i) | hot (one key) | uniform")
      ->check(CLI::IsMember({"distinct", "hot", "uniform"}));
  app.add_option("--keys", cfg.keys, "Keyspace for uniform (default 1000)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  app.add_option("--key-prefix", cfg.prefix, "Lock name prefix (default sdload-)");
  app.add_option("--wait-ms", cfg.wait_ms, "lock() wait per attempt (default 1000)")
      ->check(CLI::Range(int64_t{0}, int64_t{300'000}));
  app.add_option("--ttl-ms", cfg.ttl_ms, "Session TTL (default 10000)")
      ->check(CLI::Range(int64_t{10}, int64_t{3'600'000}));
  app.add_option("--seed", cfg.seed, "RNG seed for uniform keys (default 1)");
  app.add_option("-o,--out", out_path, "Write the result JSON here instead of stdout");
  app.add_flag("-q,--quiet", quiet, "No progress line on stderr");
  CLI11_PARSE(app, argc, argv);

  auto backend = sd::dlock::open_backend(cfg.backend);
  if (!backend) {
    std::cerr << "sd-load-dlock: " << backend.status().to_string() << "\n";
    return backend.status().code() == sd::Code::kInvalidArgument ? 2 : 1;
  }
  auto start = Clock::now();
  auto measure_from = start + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(cfg.warmup_s));
  auto end = measure_from + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(cfg.duration_s));
  std::vector<Tally> tallies(cfg.clients);
  std::vector<std::thread> threads;
  for (uint32_t i = 0; i < cfg.clients; ++i) {
    threads.emplace_back(client_loop, std::cref(cfg), *backend, i, measure_from, end,
                         std::ref(tallies[i]));
  }
  if (!quiet) {
    while (Clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      double t = std::chrono::duration<double>(Clock::now() - start).count();
      std::fprintf(stderr, "\r[sd-load-dlock] %.0f s / %.0f s", t, cfg.warmup_s + cfg.duration_s);
    }
    std::fprintf(stderr, "\n");
  }
  for (auto& t : threads) t.join();
  // Threads finish their last cycle after `end`; the window is the nominal one (a cycle that
  // started before `end` counts, as sd-load's drain does).
  sd::loadgen::RunResult r;
  r.workload = "dlock-client-cycle";
  r.target = cfg.backend;
  r.mode = "closed";
  r.connections = cfg.clients;
  r.threads = cfg.clients;
  r.duration_s = cfg.duration_s;
  r.keys.keyspace = cfg.keys;
  r.keys.dist = cfg.dist == "hot"        ? sd::loadgen::KeyDist::kHot
                : cfg.dist == "distinct" ? sd::loadgen::KeyDist::kDistinct
                                         : sd::loadgen::KeyDist::kUniform;
  r.seed = cfg.seed;
  for (auto& t : tallies) {
    r.latency.merge(t.latency);
    r.ok += t.ok;
    r.conflicts += t.conflicts;
    r.errors += t.errors;
    for (auto& e : t.error_samples) {
      if (r.error_samples.size() < 5) r.error_samples.push_back(e);
    }
  }
  r.ops = r.ok + r.conflicts + r.errors;
  r.throughput_ops_s = static_cast<double>(r.ok) / cfg.duration_s;
  std::string text = sd::loadgen::to_json(r).dump(2) + "\n";
  if (out_path.empty()) {
    std::cout << text;
  } else if (!(std::ofstream(out_path) << text)) {
    std::cerr << "sd-load-dlock: cannot write " << out_path << "\n";
    return 1;
  }
  return 0;
}
