// One conformance suite for every lock backend: the same properties, checked through the client
// API (open_backend, Session, Mutex, ...) against memory://, sqlite://, a real dlockd, one real
// redis-server, five (redlock) and a real 3-member etcd cluster. Each backend is one TEST_CASE
// whose SECTIONs are the properties; its servers start once per process (function-local static).
// What a backend promises (FIFO, safe fencing, shared mode, semaphores) is in its Caps
// (conformance_support.hpp); an unsupported feature must be a clear kUnimplemented.

#if defined(SD_DLOCKD_BIN) && defined(SD_DLOCK_BIN)

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "conformance_features.hpp"
#include "conformance_support.hpp"

using namespace std::chrono_literals;
using conformance::Fixture;
using conformance::ms_since;
using conformance::new_session;
using conformance::status_text;
using conformance::unique_name;
using sd::Code;
using sd::Duration;
using sd::dlock::Kind;
using sd::dlock::Mutex;
using sd::dlock::Token;
using sd::testing::eventually;
using Steady = std::chrono::steady_clock;

namespace {

// Every lock call in these properties waits at most this long: generous, so a slow CI machine
// never turns into a false failure; a hang still fails the suite.
constexpr Duration kLongWait{30'000};

// --- exclusion and tokens ------------------------------------------------------------------------

// 8 threads x 25 lock / increment a non-atomic counter / unlock, each thread on its own Session.
// Any overlap shows up twice: the in-section flag and a lost counter update.
void mutual_exclusion(Fixture& f) {
  const std::string name = unique_name(f, "mutex");
  constexpr int kThreads = 8, kIters = 25;
  std::vector<std::shared_ptr<sd::dlock::Session>> sessions;
  for (int i = 0; i < kThreads; ++i) sessions.push_back(new_session(f));

  long long counter = 0;  // deliberately not atomic: only the lock protects it
  std::atomic<bool> inside{false};
  std::atomic<int> overlaps{0};
  std::mutex mu;  // guards errors and tokens (Catch assertions are main-thread only)
  std::vector<std::string> errors;
  std::vector<Token> tokens;  // in grant order
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      Mutex m(sessions[i], name);
      for (int k = 0; k < kIters; ++k) {
        auto t = m.lock(kLongWait);
        if (!t) {
          std::lock_guard lk(mu);
          errors.push_back("lock: " + t.status().to_string());
          continue;
        }
        if (inside.exchange(true)) overlaps.fetch_add(1);
        {
          std::lock_guard lk(mu);
          tokens.push_back(*t);
        }
        long long c = counter;
        std::this_thread::yield();  // widen the window a broken lock would let others into
        counter = c + 1;
        inside.store(false);
        if (auto s = m.unlock(); !s.is_ok()) {
          std::lock_guard lk(mu);
          errors.push_back("unlock: " + s.to_string());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  INFO(errors.size() << " errors; first: " << (errors.empty() ? "" : errors.front()));
  REQUIRE(errors.empty());
  CHECK(overlaps.load() == 0);
  CHECK(counter == kThreads * kIters);
  // Redlock's token is a max over five counters that diverge under contention (partial grants
  // bump some of them): no order promise there. Everyone else: strictly increasing.
  if (f.caps.safe_fencing) {
    for (size_t i = 1; i < tokens.size(); ++i) {
      INFO("grant " << i << ": " << tokens[i - 1] << " then " << tokens[i]);
      REQUIRE(tokens[i - 1] < tokens[i]);
    }
  }
}

// Successive holders (other sessions, the same session again, after a revoke) see strictly
// increasing tokens. For redlock this is the no-fault, no-contention case only (best-effort).
void token_monotonicity(Fixture& f) {
  const std::string name = unique_name(f, "tokens");
  auto a = new_session(f), b = new_session(f), c = new_session(f);
  Mutex ma(a, name), mb(b, name), mc(c, name);
  std::vector<Token> seen;
  auto take = [&](Mutex& m) {
    auto t = m.lock(kLongWait);
    REQUIRE(status_text(t.status()) == "ok");
    seen.push_back(*t);
  };
  take(ma);
  REQUIRE(ma.unlock().is_ok());
  take(mb);
  REQUIRE(mb.unlock().is_ok());
  take(ma);
  REQUIRE(ma.unlock().is_ok());
  take(mc);
  REQUIRE(c->close().is_ok());  // released by revoking the lease, not by unlock
  take(mb);
  REQUIRE(mb.unlock().is_ok());
  for (size_t i = 1; i < seen.size(); ++i) {
    INFO("holder " << i << ": " << seen[i - 1] << " then " << seen[i]);
    CHECK(seen[i - 1] < seen[i]);
  }
}

// --- leases --------------------------------------------------------------------------------------

// A lease that is not kept alive loses its lock after its TTL, and another session gets it.
void ttl_expiry(Fixture& f) {
  const std::string name = unique_name(f, "expiry");
  const Duration ttl = f.caps.short_ttl;
  const auto granted_at = Steady::now();
  auto holder = new_session(f, ttl, /*keepalive_interval=*/Duration{3'600'000});  // never renews
  std::atomic<bool> lost{false};
  holder->on_lost([&](const sd::Status&) { lost = true; });
  Mutex hm(holder, name);
  auto t1 = hm.try_lock();
  REQUIRE(status_text(t1.status()) == "ok");

  auto other = new_session(f);
  Mutex om(other, name);
  CHECK(om.try_lock().status().code() == Code::kConflict);
  auto t2 = om.lock(ttl + kLongWait);
  REQUIRE(status_text(t2.status()) == "ok");
  // Not before the lease could have expired (the engine starts its TTL after our send time).
  CHECK(ms_since(granted_at) >= 0.9 * ttl.count());
  if (f.caps.safe_fencing) CHECK(*t1 < *t2);
  CHECK(eventually([&] { return lost.load(); }, 5s));
  CHECK_FALSE(hm.held());
  CHECK_FALSE(holder->alive());
  CHECK(om.held());
}

// A Session kept alive holds its lock well past its TTL; others are kept out meanwhile.
void keepalive(Fixture& f) {
  const std::string name = unique_name(f, "keepalive");
  const Duration ttl = f.caps.short_ttl;
  auto holder = new_session(f, ttl);  // renews every ttl/3
  Mutex hm(holder, name);
  REQUIRE(status_text(hm.try_lock().status()) == "ok");
  std::this_thread::sleep_for(ttl * 7 / 2);
  CHECK(holder->alive());
  CHECK(hm.held());
  auto other = new_session(f);
  Mutex om(other, name);
  CHECK(om.try_lock().status().code() == Code::kConflict);
  CHECK(hm.unlock().is_ok());
  CHECK(status_text(om.try_lock().status()) == "ok");
}

// Revoking the lease (as if an operator or the engine dropped it) is noticed by the Session:
// on_lost fires, Mutex::held() turns false, and the lock is free for others.
void lock_lost_signal(Fixture& f) {
  const std::string name = unique_name(f, "lost");
  auto s = new_session(f, f.caps.short_ttl);
  std::atomic<int> fired{0};
  s->on_lost([&](const sd::Status&) { fired.fetch_add(1); });
  Mutex m(s, name);
  REQUIRE(status_text(m.try_lock().status()) == "ok");
  REQUIRE(m.held());
  REQUIRE(status_text(f.backend->revoke(s->lease_id())) == "ok");
  CHECK(eventually([&] { return fired.load() > 0; }, f.caps.short_ttl * 3 + 5s));
  CHECK(fired.load() == 1);
  CHECK_FALSE(m.held());
  CHECK_FALSE(s->alive());
  CHECK(s->lost_reason().code() == Code::kNotFound);  // the engine said the lease is gone

  auto other = new_session(f);
  Mutex om(other, name);
  CHECK(status_text(om.lock(kLongWait).status()) == "ok");
}

// Closing a Session revokes its lease: its locks are free at once, without waiting for a TTL.
void close_releases(Fixture& f) {
  const std::string name = unique_name(f, "close");
  auto s = new_session(f, Duration{60'000});
  Mutex m(s, name);
  REQUIRE(status_text(m.try_lock().status()) == "ok");
  REQUIRE(s->close().is_ok());
  CHECK_FALSE(m.held());
  auto other = new_session(f);
  Mutex om(other, name);
  CHECK(status_text(om.try_lock().status()) == "ok");
}

// --- ownership and waiting -----------------------------------------------------------------------

// release() by another lease, or with a wrong token, fails and leaves the lock held.
void non_owner_release(Fixture& f) {
  const std::string name = unique_name(f, "owner");
  auto a = new_session(f), b = new_session(f), c = new_session(f);
  Mutex ma(a, name);
  auto t = ma.try_lock();
  REQUIRE(status_text(t.status()) == "ok");
  auto& be = *f.backend;

  sd::Status by_other = be.release(Kind::kLock, name, b->lease_id(), *t);
  INFO("release by another lease: " << status_text(by_other));
  CHECK_FALSE(by_other.is_ok());
  sd::Status zero = be.release(Kind::kLock, name, a->lease_id(), 0);
  INFO("release with token 0: " << status_text(zero));
  CHECK_FALSE(zero.is_ok());
  // Redlock accepts any token >= its own (instances count separately); the others want the exact
  // token.
  if (f.caps.safe_fencing) {
    sd::Status wrong = be.release(Kind::kLock, name, a->lease_id(), *t + 1);
    INFO("release with token+1: " << status_text(wrong));
    CHECK_FALSE(wrong.is_ok());
  }
  Mutex mb(b, name);
  CHECK(mb.unlock().code() == Code::kConflict);  // never held through this Mutex

  Mutex mc(c, name);
  CHECK(mc.try_lock().status().code() == Code::kConflict);  // still held by a
  CHECK(ma.held());
  CHECK(status_text(ma.unlock()) == "ok");
  CHECK(status_text(mc.try_lock().status()) == "ok");
}

// wait 0 on a held lock: kConflict, promptly.
void try_lock(Fixture& f) {
  const std::string name = unique_name(f, "try");
  auto a = new_session(f), b = new_session(f);
  Mutex ma(a, name), mb(b, name);
  REQUIRE(status_text(ma.try_lock().status()) == "ok");
  const auto start = Steady::now();
  auto r = mb.try_lock();
  const double took = ms_since(start);
  CHECK(r.status().code() == Code::kConflict);
  CHECK(took < 2000);
  CHECK_FALSE(mb.held());
}

// lock(300ms) on a held lock: kConflict after about 300 ms (not much earlier), and the abandoned
// wait does not grab the lock later.
void wait_timeout(Fixture& f) {
  const std::string name = unique_name(f, "timeout");
  auto a = new_session(f), b = new_session(f), c = new_session(f);
  Mutex ma(a, name), mb(b, name), mc(c, name);
  REQUIRE(status_text(ma.try_lock().status()) == "ok");
  const auto start = Steady::now();
  auto r = mb.lock(Duration{300});
  const double took = ms_since(start);
  CHECK(r.status().code() == Code::kConflict);
  CHECK(took >= 290);
  CHECK(took < 5000);
  REQUIRE(ma.unlock().is_ok());
  CHECK(status_text(mc.try_lock().status()) == "ok");
  CHECK_FALSE(mb.held());
}

// Waiters queued in a known order are granted in that order (FIFO backends); the others only
// promise that every waiter gets the lock eventually.
void waiter_order(Fixture& f) {
  const std::string name = unique_name(f, "fifo");
  constexpr int kWaiters = 3;
  auto holder = new_session(f);
  Mutex hm(holder, name);
  REQUIRE(status_text(hm.try_lock().status()) == "ok");

  std::mutex mu;
  std::vector<int> order;
  std::vector<std::string> errors;
  std::vector<std::shared_ptr<sd::dlock::Session>> sessions;
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiters; ++i) {
    sessions.push_back(new_session(f));
    threads.emplace_back([&, i] {
      Mutex m(sessions[i], name);
      auto t = m.lock(kLongWait);
      std::lock_guard lk(mu);
      if (!t) {
        errors.push_back(t.status().to_string());
        return;
      }
      order.push_back(i);
      std::this_thread::sleep_for(20ms);
      if (auto s = m.unlock(); !s.is_ok()) errors.push_back("unlock: " + s.to_string());
    });
    // Make sure waiter i is queued before waiter i+1 starts.
    if (f.caps.describe_waiters) {
      bool queued = eventually(
          [&] {
            auto d = f.backend->describe(Kind::kLock, name);
            return d.is_ok() && d->waiters.size() == static_cast<size_t>(i + 1);
          },
          10s);
      INFO("waiter " << i << " did not show up in describe()");
      REQUIRE(queued);
    } else {
      std::this_thread::sleep_for(300ms);
    }
  }
  REQUIRE(hm.unlock().is_ok());
  for (auto& t : threads) t.join();
  INFO("first error: " << (errors.empty() ? "" : errors.front()));
  REQUIRE(errors.empty());
  REQUIRE(order.size() == static_cast<size_t>(kWaiters));
  if (f.caps.fifo) {
    CHECK(order == std::vector<int>{0, 1, 2});
  } else {
    CHECK(std::set<int>(order.begin(), order.end()).size() == static_cast<size_t>(kWaiters));
  }
}

// Every property, as one SECTION each (Catch re-enters the test case once per SECTION; the
// fixture is static, so servers start once).
void run_conformance(Fixture& f) {
  INFO("backend " << f.uri);
  SECTION("mutual exclusion under 8 threads") {
    mutual_exclusion(f);
  }
  SECTION(f.caps.safe_fencing ? "tokens strictly increase across holders"
                              : "tokens increase across holders without faults (best-effort)") {
    token_monotonicity(f);
  }
  SECTION("a lease that is not kept alive expires and frees its lock") {
    ttl_expiry(f);
  }
  SECTION("keepalive holds the lock past 3x its TTL") {
    keepalive(f);
  }
  SECTION("revoking the lease fires on_lost and clears held()") {
    lock_lost_signal(f);
  }
  SECTION("closing the session frees its locks at once") {
    close_releases(f);
  }
  SECTION("release by a non-owner or with a wrong token is rejected") {
    non_owner_release(f);
  }
  SECTION("try-lock on a held lock is a prompt conflict") {
    try_lock(f);
  }
  SECTION("lock with a 300 ms wait times out after about 300 ms") {
    wait_timeout(f);
  }
  SECTION(f.caps.fifo ? "waiters are granted in FIFO order"
                      : "every waiter is granted eventually") {
    waiter_order(f);
  }
  SECTION(f.caps.shared ? "shared mode admits readers and excludes writers"
                        : "shared mode is a clear not-supported error") {
    conformance::shared_mode(f);
  }
  SECTION(f.caps.semaphores ? "semaphores admit at most limit permits"
                            : "semaphores are a clear not-supported error") {
    conformance::semaphores(f);
  }
  SECTION(f.caps.cross_process ? "dlock run: concurrent runs do not overlap"
                               : "dlock run: runs a command under the lock") {
    conformance::cli_run(f);
  }
}

}  // namespace

TEST_CASE("conformance: memory", "[integration]") {
  static auto f = conformance::memory_fixture();
  run_conformance(*f);
}

TEST_CASE("conformance: sqlite", "[integration]") {
  static auto f = conformance::sqlite_fixture();
  run_conformance(*f);
}

TEST_CASE("conformance: dlockd", "[integration]") {
  static auto f = conformance::dlockd_fixture();
  run_conformance(*f);
}

TEST_CASE("conformance: redis single instance", "[integration]") {
  static auto f = conformance::redis_fixture();
  run_conformance(*f);
}

TEST_CASE("conformance: redlock 5 instances", "[integration]") {
  static auto f = conformance::redlock_fixture();
  run_conformance(*f);
}

TEST_CASE("conformance: etcd 3 members", "[integration]") {
  static auto f = conformance::etcd_fixture();
  run_conformance(*f);
}

#endif  // SD_DLOCKD_BIN && SD_DLOCK_BIN
