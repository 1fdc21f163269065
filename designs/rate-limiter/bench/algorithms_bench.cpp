// Rate-limiting algorithms: ns per decision for one hot key, 100k and 1M keys round-robin, and
// bytes per key (memory_bytes() / key_count(); sliding_log with 1 and with R entries per key).
// Time advances by a fixed step per decision (a fake clock), so each run is deterministic.

#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "sd/ratelimit/limiter.hpp"

using namespace sd::ratelimit;
using namespace std::chrono_literals;

namespace {

// 1000 per second; the bucket algorithms get burst 100, the leaky queue a queue of 10.
Limit bench_limit(Algorithm a) {
  Limit l{.requests = 1000, .period = 1s, .burst = 0};
  if (a == Algorithm::kTokenBucket || a == Algorithm::kLeakyBucket || a == Algorithm::kGcra) {
    l.burst = 100;
  }
  if (a == Algorithm::kLeakyQueue) l.burst = 10;
  return l;
}

sd::TimePoint start() {
  return sd::TimePoint{} + 1h;
}

const std::vector<std::string>& keys(size_t n) {
  static std::vector<std::string> k;
  while (k.size() < n) k.push_back("user:" + std::to_string(k.size()));
  return k;
}

// One key at twice its limit (a step of half the emission interval): about half the decisions
// are denials, so both paths are measured.
void BM_HotKey(benchmark::State& state, Algorithm a) {
  auto l = make_limiter(a, bench_limit(a));
  sd::TimePoint now = start();
  size_t allowed = 0;
  for (auto _ : state) {
    now += 500us;
    Decision d = l->decide("user:42", 1, now);
    allowed += d.allowed;
    benchmark::DoNotOptimize(d);
  }
  state.counters["allowed_pct"] =
      100.0 * static_cast<double>(allowed) / static_cast<double>(state.iterations());
}

// n distinct keys in turn, 1µs apart: every decision is a hash lookup in a map of n keys (after
// the first pass) whose nodes are scattered over memory.
void BM_ManyKeys(benchmark::State& state, Algorithm a) {
  const auto n = static_cast<size_t>(state.range(0));
  const auto& names = keys(n);
  auto l = make_limiter(a, bench_limit(a));
  sd::TimePoint now = start();
  for (size_t i = 0; i < n; ++i) (void)l->decide(names[i], 1, now += 1us);  // warm: all keys exist
  size_t i = 0;
  for (auto _ : state) {
    Decision d = l->decide(names[i], 1, now += 1us);
    benchmark::DoNotOptimize(d);
    if (++i == n) i = 0;
  }
  state.counters["keys"] = static_cast<double>(l->key_count());
  state.counters["bytes_per_key"] =
      static_cast<double>(l->memory_bytes()) / static_cast<double>(l->key_count());
}

// Bytes per key after `per_key` admitted requests (distinct microseconds) on each of 100k keys
// (10k when each key holds 100 log entries).
void BM_BytesPerKey(benchmark::State& state, Algorithm a) {
  const auto per_key = static_cast<uint64_t>(state.range(0));
  const size_t kKeys = per_key > 1 ? 10'000 : 100'000;
  const auto& names = keys(kKeys);
  Limit lim = bench_limit(a);
  if (per_key > 1) lim.requests = per_key;  // a window that holds per_key entries
  double bytes = 0;
  for (auto _ : state) {
    auto l = make_limiter(a, lim);
    sd::TimePoint now = start();
    for (uint64_t j = 0; j < per_key; ++j) {
      now += 1us;
      for (size_t i = 0; i < kKeys; ++i) (void)l->decide(names[i], 1, now);
    }
    bytes = static_cast<double>(l->memory_bytes()) / static_cast<double>(l->key_count());
  }
  state.counters["bytes_per_key"] = bytes;
  state.counters["entries_per_key"] = static_cast<double>(per_key);
}

[[maybe_unused]] const bool registered = [] {
  for (Algorithm a : kAllAlgorithms) {
    const std::string name(algorithm_name(a));
    benchmark::RegisterBenchmark(("HotKey/" + name).c_str(), BM_HotKey, a);
    benchmark::RegisterBenchmark(("ManyKeys/" + name).c_str(), BM_ManyKeys, a)
        ->Arg(100'000)
        ->Arg(1'000'000);
    auto* b = benchmark::RegisterBenchmark(("BytesPerKey/" + name).c_str(), BM_BytesPerKey, a);
    b->Arg(1)->Iterations(1)->Unit(benchmark::kMillisecond);
    if (a == Algorithm::kSlidingLog) b->Arg(100);
  }
  return true;
}();

}  // namespace
