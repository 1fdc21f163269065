#pragma once
// Shared helpers for the LockCore unit tests: a store that fails on demand and records batches,
// a temp dir, and a fixture wiring LockCore to a FakeClock and a SeededIdGenerator.

#include <catch2/catch.hpp>

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

namespace sd::dlock::testing {

using namespace std::chrono_literals;

// Forwards to an inner store; fails every apply() (and/or load()) while told to; records what was
// applied successfully.
class FlakyStore final : public Store {
 public:
  explicit FlakyStore(Store& inner) : inner_(inner) {}
  Result<Snapshot> load() override {
    if (fail_load) return unavailable("injected load failure");
    return inner_.load();
  }
  Status apply(const std::vector<Mutation>& batch) override {
    ++attempts;
    if (fail) return unavailable("injected store failure");
    Status st = inner_.apply(batch);
    if (st) batches.push_back(batch);
    return st;
  }
  std::string describe() const override { return "flaky+" + inner_.describe(); }
  // Group commit passes through (only apply() and load() fail on demand).
  Status set_group_commit(bool on) override { return inner_.set_group_commit(on); }
  bool has_pending() const override { return inner_.has_pending(); }
  Status commit_pending() override { return inner_.commit_pending(); }
  void discard_pending() override { inner_.discard_pending(); }

  bool fail = false;
  bool fail_load = false;
  size_t attempts = 0;
  std::vector<std::vector<Mutation>> batches;

 private:
  Store& inner_;
};

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() /
           ("sd_dlock_test_" + std::to_string(rd()) + "_" + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
};

struct QuietLogs {
  log::Level saved = log::level();
  QuietLogs() { log::set_level(log::Level::kOff); }
  ~QuietLogs() { log::set_level(saved); }
};

inline CoreOptions default_options() {
  CoreOptions o;
  o.limits.min_ttl = 10ms;
  o.limits.max_ttl = 60s;
  o.limits.max_wait = 30s;
  return o;
}

struct Fixture {
  QuietLogs quiet;
  FakeClock clock;
  SeededIdGenerator ids{42};
  std::unique_ptr<Store> inner;
  FlakyStore store;
  std::unique_ptr<LockCore> core;

  explicit Fixture(CoreOptions o = default_options(),
                   std::unique_ptr<Store> s = make_memory_store())
      : inner(std::move(s)), store(*inner) {
    core = std::make_unique<LockCore>(store, clock, ids, o);
    REQUIRE(core->recover().is_ok());
  }

  LeaseId lease(Duration ttl = 10s) {
    auto r = core->create_lease(ttl);
    REQUIRE(r.is_ok());
    return r->id;
  }

  Result<AcquireOutcome> lock(const std::string& name, const LeaseId& l,
                              Mode mode = Mode::kExclusive, Duration wait = 0ms) {
    AcquireRequest req;
    req.kind = Kind::kLock;
    req.name = name;
    req.lease_id = l;
    req.mode = mode;
    req.wait = wait;
    return core->acquire(req);
  }

  Result<AcquireOutcome> sem(const std::string& name, const LeaseId& l, uint32_t limit,
                             uint32_t permits, Duration wait = 0ms) {
    AcquireRequest req;
    req.kind = Kind::kSemaphore;
    req.name = name;
    req.lease_id = l;
    req.limit = limit;
    req.permits = permits;
    req.wait = wait;
    return core->acquire(req);
  }

  // Acquires and requires an immediate grant; returns its token.
  Token must_lock(const std::string& name, const LeaseId& l, Mode mode = Mode::kExclusive) {
    auto r = lock(name, l, mode);
    INFO(r.status().to_string());
    REQUIRE(r.is_ok());
    REQUIRE(r->granted);
    return r->grant.token;
  }

  // Acquires with a wait and requires that it queued; returns the waiter id.
  WaiterId must_queue(const std::string& name, const LeaseId& l, Mode mode = Mode::kExclusive,
                      Duration wait = 5s) {
    auto r = lock(name, l, mode, wait);
    INFO(r.status().to_string());
    REQUIRE(r.is_ok());
    REQUIRE_FALSE(r->granted);
    REQUIRE(r->waiter != 0);
    return r->waiter;
  }

  LockInfo info(const std::string& name, Kind kind = Kind::kLock) {
    auto r = core->describe(kind, name);
    INFO(r.status().to_string());
    REQUIRE(r.is_ok());
    return *r;
  }

  std::vector<LeaseId> holders(const std::string& name, Kind kind = Kind::kLock) {
    std::vector<LeaseId> out;
    auto r = core->describe(kind, name);
    if (!r) return out;
    for (const auto& h : r->holders) out.push_back(h.lease_id);
    return out;
  }

  std::vector<LeaseId> queue(const std::string& name, Kind kind = Kind::kLock) {
    std::vector<LeaseId> out;
    auto r = core->describe(kind, name);
    if (!r) return out;
    for (const auto& w : r->waiters) out.push_back(w.lease_id);
    return out;
  }

  void advance(Duration d) { clock.advance(d); }
};

}  // namespace sd::dlock::testing
