// Mutex / SharedMutex / Semaphore / LockGuard over the in-process memory:// backend.

#include <atomic>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "sd/dlock/client.hpp"
#include "sd/testing/testing.hpp"

using namespace sd;
using namespace sd::dlock;
using namespace std::chrono_literals;
using sd::testing::eventually;

namespace {

std::shared_ptr<Backend> memory_backend(BackendOptions o = {}) {
  auto b = open_backend("memory://", o);
  REQUIRE(b.is_ok());
  return *b;
}

std::shared_ptr<Session> new_session(const std::shared_ptr<Backend>& b, Duration ttl = 10s) {
  SessionOptions o;
  o.ttl = ttl;
  auto s = Session::create(b, o);
  REQUIRE(s.is_ok());
  return *s;
}

size_t waiters(Backend& b, const std::string& name) {
  auto info = b.describe(Kind::kLock, name);
  return info.is_ok() ? info->waiters.size() : 0;
}

}  // namespace

TEST_CASE("Session grants a lease and close() revokes it with its locks", "[unit]") {
  auto b = memory_backend();
  auto s = new_session(b);
  CHECK(s->alive());
  CHECK(s->lease_id().size() == 32);
  CHECK(s->lost_reason().is_ok());
  CHECK(&s->backend() == b.get());

  Mutex m(s, "jobs/a");
  auto t = m.try_lock();
  REQUIRE(t.is_ok());
  REQUIRE(s->close().is_ok());
  CHECK_FALSE(s->alive());
  CHECK_FALSE(m.held());
  CHECK(s->close().is_ok());  // idempotent
  CHECK(b->keepalive(s->lease_id()).code() == Code::kNotFound);
  auto info = b->describe(Kind::kLock, "jobs/a");
  REQUIRE(info.is_ok());
  CHECK(info->holders.empty());

  CHECK(m.try_lock().status().code() == Code::kFailedPrecondition);
}

TEST_CASE("Mutex try_lock / lock / unlock / token", "[unit]") {
  auto b = memory_backend();
  auto s = new_session(b);
  Mutex m(s, "a");
  CHECK(m.name() == "a");
  CHECK_FALSE(m.held());
  CHECK_FALSE(m.token());
  CHECK(m.unlock().code() == Code::kConflict);

  auto t1 = m.try_lock();
  REQUIRE(t1.is_ok());
  CHECK(*t1 > 0);
  CHECK(m.held());
  CHECK(m.token() == *t1);

  // Re-locking by the same lease is idempotent: same token.
  auto again = m.lock(1s);
  REQUIRE(again.is_ok());
  CHECK(*again == *t1);
  auto again2 = m.try_lock();
  REQUIRE(again2.is_ok());
  CHECK(*again2 == *t1);

  REQUIRE(m.unlock().is_ok());
  CHECK_FALSE(m.held());
  CHECK_FALSE(m.token());

  auto t2 = m.lock(1s);
  REQUIRE(t2.is_ok());
  CHECK(*t2 > *t1);
  REQUIRE(m.unlock().is_ok());
}

TEST_CASE("Two sessions contend: try_lock conflicts, lock() waits and gets it on unlock",
          "[unit]") {
  auto b = memory_backend();
  auto s1 = new_session(b);
  auto s2 = new_session(b);
  Mutex m1(s1, "x");
  Mutex m2(s2, "x");
  auto t1 = m1.try_lock();
  REQUIRE(t1.is_ok());

  auto busy = m2.try_lock();
  REQUIRE_FALSE(busy.is_ok());
  CHECK(busy.status().code() == Code::kConflict);
  CHECK(busy.status().message() == "locked");

  std::optional<Result<Token>> got;
  std::thread waiter([&] { got = m2.lock(5s); });
  REQUIRE(eventually([&] { return waiters(*b, "x") == 1; }));
  REQUIRE(m1.unlock().is_ok());
  waiter.join();
  REQUIRE(got->is_ok());
  CHECK(got->value() > *t1);
  CHECK(m2.held());
  CHECK(m2.unlock().is_ok());
}

TEST_CASE("Waiters are granted FIFO", "[unit]") {
  auto b = memory_backend();
  auto holder = new_session(b);
  Mutex mh(holder, "fifo");
  REQUIRE(mh.try_lock().is_ok());

  std::mutex order_mu;
  std::vector<int> order;
  std::atomic<int> failures{0};  // Catch assertions are not thread-safe: count, check later
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto s = Session::create(b);
      if (!s.is_ok()) return void(++failures);
      Mutex m(*s, "fifo");
      if (!m.lock(10s).is_ok()) return void(++failures);
      {
        std::lock_guard lk(order_mu);
        order.push_back(i);
      }
      std::this_thread::sleep_for(5ms);
      if (!m.unlock().is_ok()) ++failures;
    });
    // Queue them one after another so the FIFO order is known.
    REQUIRE(eventually([&] { return waiters(*b, "fifo") == static_cast<size_t>(i + 1); }));
  }
  REQUIRE(mh.unlock().is_ok());
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  CHECK(order == std::vector<int>{0, 1, 2, 3});
}

TEST_CASE("lock(timeout) times out with kConflict locked", "[unit]") {
  auto b = memory_backend();
  auto s1 = new_session(b);
  auto s2 = new_session(b);
  Mutex m1(s1, "t");
  Mutex m2(s2, "t");
  REQUIRE(m1.try_lock().is_ok());
  auto start = std::chrono::steady_clock::now();
  auto r = m2.lock(150ms);
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kConflict);
  CHECK(r.status().message() == "locked");
  CHECK(took >= 140ms);
  CHECK(took < 2s);
  CHECK_FALSE(m2.held());
  CHECK(waiters(*b, "t") == 0);
}

TEST_CASE("Waiting acquire with a FakeClock times out when the clock passes the deadline",
          "[unit]") {
  FakeClock clock;
  BackendOptions o;
  o.clock = &clock;
  auto b = memory_backend(o);
  auto s1 = new_session(b);
  auto s2 = new_session(b);
  Mutex m1(s1, "fc");
  Mutex m2(s2, "fc");
  REQUIRE(m1.try_lock().is_ok());
  std::optional<Result<Token>> got;
  std::thread waiter([&] { got = m2.lock(1s); });
  REQUIRE(eventually([&] { return waiters(*b, "fc") == 1; }));
  clock.advance(999ms);
  std::this_thread::sleep_for(20ms);
  CHECK(waiters(*b, "fc") == 1);  // still waiting
  clock.advance(2ms);
  waiter.join();
  REQUIRE_FALSE(got->is_ok());
  CHECK(got->status().message() == "locked");
}

TEST_CASE("SharedMutex: readers share, a writer waits for them", "[unit]") {
  auto b = memory_backend();
  auto r1s = new_session(b);
  auto r2s = new_session(b);
  auto ws = new_session(b);
  SharedMutex r1(r1s, "rw");
  SharedMutex r2(r2s, "rw");
  SharedMutex w(ws, "rw");

  auto t1 = r1.try_lock_shared();
  auto t2 = r2.lock_shared(1s);
  REQUIRE(t1.is_ok());
  REQUIRE(t2.is_ok());
  CHECK(*t1 != *t2);
  CHECK(r1.mode() == Mode::kShared);
  CHECK(w.try_lock().status().code() == Code::kConflict);

  std::optional<Result<Token>> got;
  std::thread writer([&] { got = w.lock(5s); });
  REQUIRE(eventually([&] { return waiters(*b, "rw") == 1; }));
  // A new reader does not barge past the queued writer.
  auto late = SharedMutex(new_session(b), "rw").try_lock_shared();
  CHECK(late.status().code() == Code::kConflict);
  REQUIRE(r1.unlock().is_ok());
  std::this_thread::sleep_for(20ms);
  CHECK_FALSE(got.has_value());
  REQUIRE(r2.unlock().is_ok());
  writer.join();
  REQUIRE(got->is_ok());
  CHECK(w.mode() == Mode::kExclusive);
  CHECK(w.token() == got->value());
  CHECK(got->value() > std::max(*t1, *t2));
  CHECK(r1.try_lock_shared().status().code() == Code::kConflict);
  REQUIRE(w.unlock().is_ok());
  CHECK_FALSE(w.mode());
}

TEST_CASE("Semaphore: at most `limit` permits", "[unit]") {
  auto b = memory_backend();
  auto s1 = new_session(b);
  auto s2 = new_session(b);
  auto s3 = new_session(b);
  Semaphore a(s1, "pool", 2);
  Semaphore c(s2, "pool", 2);
  Semaphore d(s3, "pool", 2);
  REQUIRE(a.try_acquire().is_ok());
  REQUIRE(c.acquire(1s).is_ok());
  CHECK(a.held());
  auto third = d.try_acquire();
  REQUIRE_FALSE(third.is_ok());
  CHECK(third.status().code() == Code::kConflict);

  std::optional<Result<Token>> got;
  std::thread t([&] { got = d.acquire(5s); });
  REQUIRE(eventually([&] {
    auto info = b->describe(Kind::kSemaphore, "pool");
    return info.is_ok() && info->waiters.size() == 1;
  }));
  REQUIRE(a.release().is_ok());
  t.join();
  REQUIRE(got->is_ok());
  CHECK(d.token() == got->value());
  CHECK(d.release().is_ok());
  CHECK(c.release().is_ok());
  CHECK(c.release().code() == Code::kConflict);

  Semaphore two(s1, "pool2", 3, 2);
  Semaphore another(s2, "pool2", 3, 2);
  REQUIRE(two.try_acquire().is_ok());
  CHECK(another.try_acquire().status().code() == Code::kConflict);
}

TEST_CASE("LockGuard releases on scope exit", "[unit]") {
  auto b = memory_backend();
  auto s = new_session(b);
  auto other = new_session(b);
  Mutex m(s, "g");
  Mutex o(other, "g");
  {
    auto g = LockGuard::acquire(m, 1s);
    REQUIRE(g.is_ok());
    CHECK(g->token() > 0);
    CHECK(m.held());
    CHECK(o.try_lock().status().code() == Code::kConflict);
    auto moved = std::move(*g);
    CHECK(moved.token() == m.token());
  }
  CHECK_FALSE(m.held());
  REQUIRE(o.try_lock().is_ok());
  auto fail = LockGuard::acquire(m, 10ms);
  CHECK(fail.status().code() == Code::kConflict);
}

TEST_CASE("16 threads x 200 increments under a Mutex: no lost updates, tokens increase", "[unit]") {
  auto b = memory_backend();
  constexpr int kThreads = 16;
  constexpr int kIters = 200;
  long counter = 0;           // protected only by the distributed lock
  std::vector<Token> tokens;  // ditto, in acquisition order
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      auto s = Session::create(b);
      if (!s.is_ok()) {
        ++failures;
        return;
      }
      Mutex m(*s, "counter");
      for (int k = 0; k < kIters; ++k) {
        auto t = m.lock(30s);
        if (!t.is_ok()) {
          ++failures;
          continue;
        }
        long v = counter;
        std::this_thread::yield();
        counter = v + 1;
        tokens.push_back(*t);
        if (!m.unlock().is_ok()) ++failures;
      }
      (void)(*s)->close();
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  CHECK(counter == kThreads * kIters);
  REQUIRE(tokens.size() == static_cast<size_t>(kThreads * kIters));
  for (size_t i = 1; i < tokens.size(); ++i) REQUIRE(tokens[i] > tokens[i - 1]);
}
