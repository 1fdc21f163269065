// LockCore micro-benchmarks: uncontended acquire+release (memory and SQLite stores), contended
// hand-off to a queued waiter, and the memory cost of 100k held locks.

#include <benchmark/benchmark.h>
#include <malloc.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "sd/base/clock.hpp"
#include "sd/base/ids.hpp"
#include "sd/base/log.hpp"
#include "sd/dlock/core.hpp"
#include "sd/dlock/store.hpp"

using namespace sd;
using namespace sd::dlock;
using namespace std::chrono_literals;

namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() / ("sd_dlock_bench_" + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

CoreOptions bench_options() {
  CoreOptions o;
  o.limits.max_holds_per_lease = 1'000'000;
  o.limits.max_leases = 10'000'000;
  return o;
}

// A core over the given store with a lease that never expires during the run (the fake clock
// does not move).
struct Harness {
  FakeClock clock;
  SeededIdGenerator ids{1};
  std::unique_ptr<Store> store;
  std::unique_ptr<LockCore> core;

  explicit Harness(std::unique_ptr<Store> s) : store(std::move(s)) {
    log::set_level(log::Level::kWarn);
    core = std::make_unique<LockCore>(*store, clock, ids, bench_options());
    if (!core->recover()) std::abort();
  }
  LeaseId lease() {
    auto l = core->create_lease(1h);
    if (!l) std::abort();
    return l->id;
  }
};

std::vector<std::string> make_names(size_t n, const std::string& prefix) {
  std::vector<std::string> v;
  v.reserve(n);
  for (size_t i = 0; i < n; ++i) v.push_back(prefix + std::to_string(i));
  return v;
}

// Acquire + release of distinct names, with `background` other locks held so the name index is
// not trivially small.
void run_uncontended(benchmark::State& state, Harness& h) {
  const auto background = static_cast<size_t>(state.range(0));
  LeaseId holder = h.lease();
  AcquireRequest bg;
  bg.lease_id = holder;
  for (const auto& n : make_names(background, "bg/")) {
    bg.name = n;
    if (!h.core->acquire(bg)) std::abort();
  }
  const auto names = make_names(4096, "job/");
  AcquireRequest req;
  req.lease_id = h.lease();
  size_t i = 0;
  for (auto _ : state) {
    req.name = names[i++ % names.size()];
    auto r = h.core->acquire(req);
    if (!r || !r->granted) {
      state.SkipWithError("acquire failed");
      break;
    }
    if (!h.core->release(Kind::kLock, req.name, req.lease_id, r->grant.token)) {
      state.SkipWithError("release failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_AcquireRelease_Memory(benchmark::State& state) {
  Harness h(make_memory_store());
  run_uncontended(state, h);
}
BENCHMARK(BM_AcquireRelease_Memory)->Arg(0)->Arg(100'000);

void BM_AcquireRelease_Sqlite(benchmark::State& state) {
  TempDir dir;
  auto s = open_sqlite_store((dir.path / "bench.db").string());
  if (!s) {
    state.SkipWithError(s.status().to_string().c_str());
    return;
  }
  Harness h(std::move(*s));
  run_uncontended(state, h);
}
BENCHMARK(BM_AcquireRelease_Sqlite)->Arg(0)->Arg(10'000);

// One name, two leases: the holder releases, the queued waiter is granted, the old holder queues
// again. One iteration = one hand-off (release + grant + re-queue).
void run_handoff(benchmark::State& state, Harness& h) {
  LeaseId a = h.lease(), b = h.lease();
  AcquireRequest req;
  req.name = "hot";
  req.lease_id = a;
  auto first = h.core->acquire(req);
  if (!first || !first->granted) std::abort();
  Token token = first->grant.token;
  req.lease_id = b;
  req.wait = 10s;
  if (!h.core->acquire(req)) std::abort();
  LeaseId holder = a, waiter = b;
  for (auto _ : state) {
    if (!h.core->release(Kind::kLock, "hot", holder, token)) {
      state.SkipWithError("release failed");
      break;
    }
    auto ev = h.core->take_events();
    if (ev.size() != 1 || !ev[0].granted) {
      state.SkipWithError("no hand-off");
      break;
    }
    token = ev[0].grant.token;
    std::swap(holder, waiter);
    req.lease_id = waiter;
    auto q = h.core->acquire(req);
    if (!q || q->granted) {
      state.SkipWithError("re-queue failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_ContendedHandoff_Memory(benchmark::State& state) {
  Harness h(make_memory_store());
  run_handoff(state, h);
}
BENCHMARK(BM_ContendedHandoff_Memory);

void BM_ContendedHandoff_Sqlite(benchmark::State& state) {
  TempDir dir;
  auto s = open_sqlite_store((dir.path / "bench.db").string());
  if (!s) {
    state.SkipWithError(s.status().to_string().c_str());
    return;
  }
  Harness h(std::move(*s));
  run_handoff(state, h);
}
BENCHMARK(BM_ContendedHandoff_Sqlite);

// Heap bytes per held lock with 100k locks held, `locks_per_lease` locks per lease (the lease's
// own cost is included, amortized). Names look like "resource/0000123" (SSO-sized strings).
void BM_Memory100kHeldLocks(benchmark::State& state) {
  const size_t kLocks = 100'000;
  const auto per_lease = static_cast<size_t>(state.range(0));
  const auto names = make_names(kLocks, "resource/");
  for (auto _ : state) {
    Harness h(make_memory_store());
    std::vector<LeaseId> leases;
    leases.reserve(kLocks / per_lease + 1);
    for (size_t i = 0; i < kLocks / per_lease + 1; ++i) leases.push_back(std::string(32, '0'));
    malloc_trim(0);
    const size_t before = mallinfo2().uordblks;
    AcquireRequest req;
    for (size_t i = 0; i < kLocks; ++i) {
      if (i % per_lease == 0) leases[i / per_lease] = h.lease();
      req.lease_id = leases[i / per_lease];
      req.name = names[i];
      if (!h.core->acquire(req)) std::abort();
    }
    const size_t after = mallinfo2().uordblks;
    if (h.core->stats().holds != kLocks) std::abort();
    state.counters["bytes_per_lock"] =
        static_cast<double>(after - before) / static_cast<double>(kLocks);
    state.counters["total_MB"] = static_cast<double>(after - before) / 1e6;
  }
}
BENCHMARK(BM_Memory100kHeldLocks)->Arg(1)->Arg(100)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
