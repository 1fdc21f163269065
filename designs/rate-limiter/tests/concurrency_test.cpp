// ConcurrencyLimiter against real dlock backends: memory:// in-process, and a real redis-server
// shared by two limiters on independent connections (two "processes"), plus a real child process
// that is SIGKILLed while holding permits.

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include "sd/dlock/backend.hpp"
#include "sd/ratelimit/concurrency.hpp"
#include "sd/testing/servers.hpp"
#include "sd/testing/testing.hpp"

namespace sd::ratelimit {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

std::shared_ptr<dlock::Backend> open(const std::string& uri, dlock::BackendOptions o = {}) {
  auto b = dlock::open_backend(uri, o);
  if (!b) FAIL("open_backend(" << uri << "): " << b.status().to_string());
  return *b;
}

long long ms_since(Steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - t).count();
}

// Tracks how many permits the test believes are held: incremented after a grant, decremented
// before the release, so it can only undercount what the backend grants.
struct InFlight {
  std::atomic<int> now{0}, peak{0};
  std::atomic<int> errors{0};
  std::atomic<int> grants{0};
  void enter() {
    int v = now.fetch_add(1) + 1;
    int p = peak.load();
    while (v > p && !peak.compare_exchange_weak(p, v)) {
    }
    grants.fetch_add(1);
  }
  void leave() { now.fetch_sub(1); }
};

// `threads` workers per limiter, each doing `loops` of acquire -> hold -> release. Odd workers use
// acquire(wait), even ones spin on try_acquire; releases alternate between release() and the
// destructor. No Catch assertions inside the threads (Catch2 v2 is not thread-safe).
void hammer(const std::vector<ConcurrencyLimiter*>& limiters, int threads, int loops,
            uint32_t max_in_flight, InFlight& f) {
  std::vector<std::thread> ts;
  for (ConcurrencyLimiter* lim : limiters) {
    for (int i = 0; i < threads; ++i) {
      ts.emplace_back([&f, lim, i, loops, max_in_flight] {
        for (int k = 0; k < loops; ++k) {
          std::optional<Permit> p;
          const auto deadline = Steady::now() + 20s;
          while (!p && Steady::now() < deadline) {
            auto r = (i % 2) ? lim->acquire("shared", max_in_flight, 5s)
                             : lim->try_acquire("shared", max_in_flight);
            if (r) {
              p = std::move(*r);
            } else if (r.status().code() == Code::kResourceExhausted) {
              std::this_thread::sleep_for(1ms);
            } else {
              f.errors.fetch_add(1);
              return;
            }
          }
          if (!p) {
            f.errors.fetch_add(1);
            return;
          }
          f.enter();
          std::this_thread::sleep_for(std::chrono::microseconds(500 + 250 * (k % 4)));
          f.leave();
          if (k % 2 == 0 && !p->release().is_ok()) f.errors.fetch_add(1);
        }
      });
    }
  }
  for (auto& t : ts) t.join();
}

TEST_CASE("concurrency limiter never exceeds max_in_flight with 16 threads on memory",
          "[unit][ratelimit][concurrency]") {
  auto backend = open("memory://");
  ConcurrencyLimiter lim(backend);
  InFlight f;
  hammer({&lim}, 16, 40, 4, f);
  CHECK(f.errors.load() == 0);
  CHECK(f.grants.load() == 16 * 40);
  CHECK(f.peak.load() <= 4);
  CHECK(f.peak.load() == 4);
  // Pool reuse: each thread holds at most one session at a time, so at most 16 ever exist.
  CHECK(lim.sessions_created() <= 16);
  CHECK(lim.idle_sessions() == lim.sessions_created());
}

TEST_CASE("concurrency permits release on destruction and release() and when moved",
          "[unit][ratelimit][concurrency]") {
  ConcurrencyLimiter lim(open("memory://"));
  auto a = lim.try_acquire("k", 2);
  auto b = lim.try_acquire("k", 2);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->held());
  CHECK(a->token() > 0);
  CHECK(b->token() != a->token());

  auto full = lim.try_acquire("k", 2);
  REQUIRE_FALSE(full);
  CHECK(full.status().code() == Code::kResourceExhausted);
  CHECK(full.status().message().find("too many requests in flight (2)") != std::string::npos);
  CHECK(lim.try_acquire("other-key", 2));  // keys are independent

  SECTION("release() frees a permit and is idempotent") {
    CHECK(a->release().is_ok());
    CHECK_FALSE(a->held());
    CHECK(a->release().is_ok());
    auto c = lim.try_acquire("k", 2);
    REQUIRE(c);
    CHECK(c->token() > b->token());
    CHECK_FALSE(lim.try_acquire("k", 2));  // a's double release did not free a second slot
  }
  SECTION("destruction frees a permit") {
    { Permit gone = std::move(*a); }
    CHECK(lim.try_acquire("k", 2));
  }
  SECTION("a moved permit is held once") {
    Permit moved = std::move(*a);
    CHECK(moved.held());
    CHECK_FALSE(a->held());  // NOLINT(bugprone-use-after-move): a moved-from permit is empty
    CHECK(a->release().is_ok());
    CHECK(a->token() == 0);
    CHECK_FALSE(lim.try_acquire("k", 2));  // releasing the moved-from one freed nothing
    Permit assigned;
    CHECK_FALSE(assigned.held());
    assigned = std::move(moved);
    CHECK(assigned.held());
    CHECK_FALSE(lim.try_acquire("k", 2));
    // Assigning over a held permit releases the one it held.
    assigned = std::move(*b);
    CHECK(assigned.held());
    auto c = lim.try_acquire("k", 2);
    CHECK(c);
    CHECK_FALSE(lim.try_acquire("k", 2));
  }
}

TEST_CASE("concurrency limiter rejects a different max_in_flight for a held key",
          "[unit][ratelimit][concurrency]") {
  auto backend = open("memory://");
  ConcurrencyLimiter one(backend), two(backend);  // e.g. two processes configured differently
  auto p = one.try_acquire("k", 4);
  REQUIRE(p);
  auto q = two.try_acquire("k", 3);
  REQUIRE_FALSE(q);
  CHECK(q.status().code() == Code::kFailedPrecondition);
  CHECK(q.status().message().find("max_in_flight 3") != std::string::npos);
  CHECK(q.status().message().find("different max_in_flight") != std::string::npos);
  CHECK(two.try_acquire("k", 4));
  // Once nobody holds it the new limit applies.
  CHECK(p->release().is_ok());
  CHECK(two.try_acquire("k", 3));

  auto zero = one.try_acquire("k", 0);
  REQUIRE_FALSE(zero);
  CHECK(zero.status().code() == Code::kInvalidArgument);
  auto bad = one.try_acquire(std::string(300, 'x'), 1);  // dlock names are at most 256 bytes
  REQUIRE_FALSE(bad);
  CHECK(bad.status().code() == Code::kInvalidArgument);
}

TEST_CASE("concurrency limiter reuses pooled sessions up to max_idle_sessions",
          "[unit][ratelimit][concurrency]") {
  auto backend = open("memory://");
  SECTION("sequential permits share one session") {
    ConcurrencyLimiter lim(backend);
    for (int i = 0; i < 50; ++i) {
      auto p = lim.try_acquire("k", 1);
      REQUIRE(p);
    }
    CHECK(lim.sessions_created() == 1);
    CHECK(lim.idle_sessions() == 1);
    auto held = lim.try_acquire("k", 1);
    REQUIRE(held);
    CHECK_FALSE(lim.try_acquire("k", 1));  // a refused session goes back to the pool too
    CHECK(lim.sessions_created() == 2);
    CHECK(lim.idle_sessions() == 1);
  }
  SECTION("the pool keeps at most max_idle_sessions") {
    ConcurrencyOptions o;
    o.max_idle_sessions = 2;
    ConcurrencyLimiter lim(backend, o);
    std::vector<Permit> held;
    for (int i = 0; i < 5; ++i) {
      auto p = lim.try_acquire("k", 5);
      REQUIRE(p);
      held.push_back(std::move(*p));
    }
    CHECK(lim.sessions_created() == 5);
    held.clear();
    CHECK(lim.idle_sessions() == 2);
    // The dropped sessions were closed, so their permits are free: 5 fit again.
    for (int i = 0; i < 5; ++i) {
      auto p = lim.try_acquire("k", 5);
      REQUIRE(p);
      held.push_back(std::move(*p));
    }
    CHECK(lim.sessions_created() == 8);
  }
  SECTION("max_idle_sessions 0 disables pooling") {
    ConcurrencyOptions o;
    o.max_idle_sessions = 0;
    ConcurrencyLimiter lim(backend, o);
    for (int i = 0; i < 3; ++i) CHECK(lim.try_acquire("k", 1));
    CHECK(lim.sessions_created() == 3);
    CHECK(lim.idle_sessions() == 0);
  }
}

TEST_CASE("concurrency limiter never reuses a session whose lease expired",
          "[unit][ratelimit][concurrency]") {
  // The engine runs on a FakeClock: advancing it past the TTL expires the leases in the engine
  // while the sessions' own (real-time) view still says alive.
  FakeClock clock;
  dlock::BackendOptions bo;
  bo.clock = &clock;
  auto backend = open("memory://", bo);
  ConcurrencyOptions o;
  o.session_ttl = 1'000ms;
  ConcurrencyLimiter lim(backend, o);

  SECTION("an idle session") {
    CHECK(lim.try_acquire("k", 1));
    REQUIRE(lim.idle_sessions() == 1);
    clock.advance(2s);
    auto p = lim.try_acquire("k", 1);  // the pooled lease is gone: a fresh session, no error
    REQUIRE(p);
    CHECK(lim.sessions_created() == 2);
  }
  SECTION("a held permit") {
    auto p = lim.try_acquire("k", 1);
    REQUIRE(p);
    CHECK_FALSE(lim.try_acquire("k", 1));
    clock.advance(2s);
    auto q = lim.try_acquire("k", 1);  // the expired lease's permit is free
    REQUIRE(q);
    const size_t created = lim.sessions_created();
    CHECK_FALSE(p->release().is_ok());  // its lease is gone: reported, and never pooled
    CHECK_FALSE(p->held());
    CHECK(p->release().is_ok());
    CHECK(q->release().is_ok());
    CHECK(lim.idle_sessions() == 1);  // q's, not p's
    CHECK(lim.try_acquire("k", 1));
    CHECK(lim.sessions_created() == created);
  }
}

TEST_CASE("concurrency acquire waits for a permit up to its deadline",
          "[unit][ratelimit][concurrency]") {
  ConcurrencyLimiter lim(open("memory://"));
  auto p = lim.try_acquire("k", 1);
  REQUIRE(p);
  auto t0 = Steady::now();
  auto timed_out = lim.acquire("k", 1, 100ms);
  REQUIRE_FALSE(timed_out);
  CHECK(timed_out.status().code() == Code::kResourceExhausted);
  CHECK(ms_since(t0) >= 95);

  std::thread releaser([&] {
    std::this_thread::sleep_for(150ms);
    (void)p->release();
  });
  t0 = Steady::now();
  auto q = lim.acquire("k", 1, 5s);
  const long long waited = ms_since(t0);
  releaser.join();
  REQUIRE(q);
  CHECK(q->held());
  CHECK(waited >= 100);
  CHECK(waited < 4'000);
}

TEST_CASE("concurrency permit outlives its limiter", "[unit][ratelimit][concurrency]") {
  auto backend = open("memory://");
  std::optional<Permit> p;
  {
    ConcurrencyLimiter lim(backend);
    auto r = lim.try_acquire("k", 1);
    REQUIRE(r);
    p = std::move(*r);
  }
  CHECK(p->held());
  ConcurrencyLimiter other(backend);
  CHECK_FALSE(other.try_acquire("k", 1));
  CHECK(p->release().is_ok());
  CHECK(other.try_acquire("k", 1));
}

// --- Across processes: a real redis-server -------------------------------------------------------

std::unique_ptr<testing::RedisServer> start_redis(const testing::TempDir& dir) {
  auto r = testing::RedisServer::start(dir.file("redis"));
  if (!r) FAIL("redis-server: " << r.status().to_string());
  return std::move(*r);
}

TEST_CASE("concurrency limiters on two redis connections share max_in_flight exactly",
          "[integration][ratelimit][concurrency]") {
  testing::TempDir dir;
  auto redis = start_redis(dir);
  const std::string uri = "redis://" + redis->address();
  ConcurrencyLimiter a(open(uri)), b(open(uri));  // independent backends, as in two processes
  InFlight f;
  hammer({&a, &b}, 8, 25, 3, f);
  CHECK(f.errors.load() == 0);
  CHECK(f.grants.load() == 2 * 8 * 25);
  CHECK(f.peak.load() <= 3);
  CHECK(f.peak.load() == 3);
  CHECK(a.sessions_created() <= 8);
  CHECK(b.sessions_created() <= 8);

  auto p = a.try_acquire("pair", 2);
  auto q = b.try_acquire("pair", 2);
  REQUIRE(p);
  REQUIRE(q);
  auto r = b.try_acquire("pair", 2);
  REQUIRE_FALSE(r);
  CHECK(r.status().code() == Code::kResourceExhausted);
  auto mismatch = b.try_acquire("pair", 5);
  REQUIRE_FALSE(mismatch);
  CHECK(mismatch.status().code() == Code::kFailedPrecondition);
  CHECK(p->release().is_ok());
  CHECK(b.try_acquire("pair", 2));
}

// The child side of the test below: holds two permits on the Redis named by the environment, says
// so through a file, then waits to be SIGKILLed.
void crash_child(const std::string& addr, const std::string& ready) {
  ConcurrencyOptions o;
  o.session_ttl = 1'000ms;
  ConcurrencyLimiter lim(open("redis://" + addr), o);
  auto p = lim.try_acquire("crash", 2);
  auto q = lim.try_acquire("crash", 2);
  REQUIRE(p);
  REQUIRE(q);
  { std::ofstream(ready) << "held\n"; }
  std::this_thread::sleep_for(60s);
  FAIL("the parent should have killed this process");
}

constexpr const char* kCrashTest =
    "concurrency permits of a killed process free themselves after the session ttl";

// The test binary runs this very test case again as the child process (selected by name, with
// SD_RL_CHILD_* set), so the holder is a real process that really dies.
TEST_CASE("concurrency permits of a killed process free themselves after the session ttl",
          "[integration][ratelimit][concurrency]") {
  const char* child_redis = std::getenv("SD_RL_CHILD_REDIS");
  const char* child_ready = std::getenv("SD_RL_CHILD_READY");
  if (child_redis && child_ready) return crash_child(child_redis, child_ready);

  testing::TempDir dir;
  auto redis = start_redis(dir);
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  REQUIRE_FALSE(ec);
  const std::string ready = dir.file("child-ready");
  testing::ProcessOptions po;
  po.env = {{"SD_RL_CHILD_REDIS", redis->address()}, {"SD_RL_CHILD_READY", ready}};
  po.stdout_path = dir.file("child.out");
  po.die_with_parent = true;
  auto child = testing::Process::spawn({self.string(), kCrashTest}, po);
  REQUIRE(child);
  const bool held = testing::eventually([&] { return std::filesystem::exists(ready); }, 20s);
  INFO("child output: " << testing::read_file(dir.file("child.out")));
  REQUIRE(held);

  ConcurrencyLimiter lim(open("redis://" + redis->address()));
  auto denied = lim.try_acquire("crash", 2);
  REQUIRE_FALSE(denied);
  CHECK(denied.status().code() == Code::kResourceExhausted);

  REQUIRE(child->signal(SIGKILL).is_ok());
  (void)child->wait();
  const auto killed = Steady::now();
  CHECK_FALSE(lim.try_acquire("crash", 2));  // killing does not release: only the TTL does
  // Both of the child's permits (two sessions, so two leases) come back.
  std::vector<Permit> got;
  const bool freed = testing::eventually(
      [&] {
        auto r = lim.try_acquire("crash", 2);
        if (r) got.push_back(std::move(*r));
        return got.size() == 2;
      },
      10s);
  const long long after = ms_since(killed);
  REQUIRE(freed);
  // The child's last keepalives were at most ttl/3 before the kill, so its leases die within the
  // 1 s TTL of it; allow scheduling slack (sanitizer builds) but not a second TTL.
  CHECK(after <= 1'800);
}

TEST_CASE("concurrency limiter reports a dead redis as unavailable quickly",
          "[integration][ratelimit][concurrency]") {
  testing::TempDir dir;
  auto redis = start_redis(dir);
  const std::string uri = "redis://" + redis->address();
  ConcurrencyLimiter pooled(open(uri)), fresh(open(uri));
  auto held = pooled.try_acquire("k", 2);
  REQUIRE(held);
  CHECK(pooled.try_acquire("k", 2));  // a second session, now idle in the pool
  REQUIRE(pooled.idle_sessions() == 1);
  REQUIRE(redis->kill().is_ok());

  for (ConcurrencyLimiter* lim : {&pooled, &fresh}) {
    const auto t0 = Steady::now();
    auto r = lim->try_acquire("k", 2);
    REQUIRE_FALSE(r);
    CHECK(r.status().code() == Code::kUnavailable);
    CHECK(ms_since(t0) < 2'000);
  }
  CHECK(pooled.idle_sessions() == 0);  // the session whose call failed was dropped, not pooled
  CHECK_FALSE(held->release().is_ok());
  CHECK_FALSE(held->held());

  REQUIRE(redis->restart().is_ok());
  CHECK(fresh.try_acquire("k", 2));  // recovers once the backend is back
}

TEST_CASE("concurrency limiter on redlock reports that it has no semaphores",
          "[integration][ratelimit][concurrency]") {
  testing::TempDir dir;
  auto redis = start_redis(dir);
  ConcurrencyLimiter lim(open("redlock://" + redis->address()));
  auto r = lim.try_acquire("k", 2);
  REQUIRE_FALSE(r);
  CHECK(r.status().code() == Code::kUnimplemented);
  CHECK(r.status().message().find("has no semaphores") != std::string::npos);
  CHECK(r.status().message().find("redlock") != std::string::npos);
}

}  // namespace
}  // namespace sd::ratelimit
