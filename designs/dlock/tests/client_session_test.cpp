// Session keepalive and the lock-lost signal (on_lost + held()).

#include <atomic>
#include <thread>

#include <catch2/catch.hpp>

#include "sd/dlock/client.hpp"
#include "sd/testing/testing.hpp"

using namespace sd;
using namespace sd::dlock;
using namespace std::chrono_literals;
using sd::testing::eventually;

namespace {

// Wraps a backend; keepalive can be made to fail with kUnavailable (a partitioned server).
class FlakyBackend final : public Backend {
 public:
  explicit FlakyBackend(std::shared_ptr<Backend> inner) : inner_(std::move(inner)) {}
  std::atomic<bool> fail_keepalive{false};
  std::atomic<int> keepalives{0};

  Result<LeaseGrant> grant_lease(Duration ttl) override { return inner_->grant_lease(ttl); }
  Status keepalive(const LeaseId& id) override {
    ++keepalives;
    if (fail_keepalive) return unavailable("partitioned");
    return inner_->keepalive(id);
  }
  Status revoke(const LeaseId& id) override { return inner_->revoke(id); }
  Result<Grant> acquire(const AcquireRequest& r) override { return inner_->acquire(r); }
  Status release(Kind k, const std::string& n, const LeaseId& l, Token t) override {
    return inner_->release(k, n, l, t);
  }
  Result<LockInfo> describe(Kind k, const std::string& n) override {
    return inner_->describe(k, n);
  }
  Result<std::vector<LockInfo>> list(Kind k, const std::string& p) override {
    return inner_->list(k, p);
  }
  std::string uri() const override { return inner_->uri(); }

 private:
  std::shared_ptr<Backend> inner_;
};

}  // namespace

TEST_CASE("keepalive keeps a short lease (and its lock) alive", "[unit]") {
  auto b = *open_backend("memory://");
  SessionOptions o;
  o.ttl = 300ms;  // renewed every 100 ms
  auto s = *Session::create(b, o);
  Mutex m(s, "k");
  REQUIRE(m.try_lock().is_ok());
  std::this_thread::sleep_for(1200ms);
  CHECK(s->alive());
  CHECK(m.held());
  auto info = b->describe(Kind::kLock, "k");
  REQUIRE(info.is_ok());
  REQUIRE(info->holders.size() == 1);
  CHECK(info->holders[0].lease_id == s->lease_id());
  REQUIRE(s->close().is_ok());
}

TEST_CASE("on_lost fires once when the lease is revoked behind the session's back", "[unit]") {
  auto b = *open_backend("memory://");
  SessionOptions o;
  o.ttl = 10s;
  o.keepalive_interval = 20ms;
  auto s = *Session::create(b, o);
  Mutex m(s, "r");
  REQUIRE(m.try_lock().is_ok());
  std::atomic<int> fired{0};
  Status why;
  std::mutex why_mu;
  s->on_lost([&](const Status& st) {
    std::lock_guard lk(why_mu);
    why = st;
    ++fired;
  });
  REQUIRE(b->revoke(s->lease_id()).is_ok());
  REQUIRE(eventually([&] { return fired.load() == 1; }));
  CHECK_FALSE(s->alive());
  CHECK_FALSE(m.held());
  CHECK_FALSE(m.token());
  {
    std::lock_guard lk(why_mu);
    CHECK(why.code() == Code::kNotFound);
  }
  CHECK(s->lost_reason().code() == Code::kNotFound);
  std::this_thread::sleep_for(60ms);
  CHECK(fired == 1);
  // Registered after the loss: called at once.
  int late = 0;
  s->on_lost([&](const Status&) { ++late; });
  CHECK(late == 1);
  CHECK(s->close().is_ok());
  CHECK(fired == 1);
}

TEST_CASE("on_lost fires when the lease expires on a FakeClock while keepalive cannot run",
          "[unit]") {
  FakeClock clock;
  BackendOptions bo;
  bo.clock = &clock;
  auto b = *open_backend("memory://", bo);
  SessionOptions o;
  o.ttl = 10s;
  o.keepalive_interval = std::chrono::hours(1);  // the thread never renews during the test
  auto s = *Session::create(b, o);
  auto other = *Session::create(b, o);
  Mutex m(s, "e");
  Mutex m2(other, "e");
  REQUIRE(m.try_lock().is_ok());
  int fired = 0;
  s->on_lost([&](const Status&) { ++fired; });

  clock.advance(9s);
  REQUIRE(s->renew().is_ok());  // a manual renewal moves the engine's deadline
  REQUIRE(other->renew().is_ok());
  clock.advance(9s);
  REQUIRE(other->renew().is_ok());                          // only `other` is renewed now
  CHECK(m2.try_lock().status().code() == Code::kConflict);  // still held
  clock.advance(2s);                                        // 11 s after s's renewal: expired

  auto r = s->renew();
  CHECK(r.code() == Code::kNotFound);
  CHECK(fired == 1);
  CHECK_FALSE(s->alive());
  CHECK_FALSE(m.held());
  CHECK(m2.try_lock().is_ok());
  CHECK(s->renew().code() == Code::kNotFound);
  CHECK(fired == 1);
}

TEST_CASE("A lock call that finds the lease gone marks the session lost", "[unit]") {
  auto b = *open_backend("memory://");
  SessionOptions o;
  o.keepalive_interval = std::chrono::hours(1);
  auto s = *Session::create(b, o);
  int fired = 0;
  s->on_lost([&](const Status&) { ++fired; });
  REQUIRE(b->revoke(s->lease_id()).is_ok());
  Mutex m(s, "gone");
  auto r = m.try_lock();
  CHECK(r.status().code() == Code::kNotFound);
  CHECK(fired == 1);
  CHECK_FALSE(s->alive());
  CHECK(m.try_lock().status().code() == Code::kFailedPrecondition);
}

TEST_CASE("keepalive failures: retried until the local deadline, then lost", "[unit]") {
  auto flaky = std::make_shared<FlakyBackend>(*open_backend("memory://"));
  SessionOptions o;
  o.ttl = 400ms;
  auto s = *Session::create(flaky, o);
  Mutex m(s, "p");
  REQUIRE(m.try_lock().is_ok());
  std::atomic<bool> fired{false};
  std::atomic<int> code{0};
  s->on_lost([&](const Status& st) {
    code = static_cast<int>(st.code());
    fired = true;
  });
  std::this_thread::sleep_for(300ms);
  CHECK(s->alive());
  auto cut = std::chrono::steady_clock::now();
  flaky->fail_keepalive = true;
  int before = flaky->keepalives;
  REQUIRE(eventually([&] { return fired.load(); }, 2s));
  auto took = std::chrono::steady_clock::now() - cut;
  CHECK(took <= 400ms + 100ms);            // at most one ttl after the last successful send
  CHECK(flaky->keepalives - before >= 2);  // it retried
  CHECK(code == static_cast<int>(Code::kUnavailable));
  CHECK_FALSE(m.held());
}

TEST_CASE("close() does not fire on_lost, and the session can be destroyed from a callback",
          "[unit]") {
  auto b = *open_backend("memory://");
  {
    auto s = *Session::create(b);
    int fired = 0;
    s->on_lost([&](const Status&) { ++fired; });
    REQUIRE(s->close().is_ok());
    CHECK(fired == 0);
  }
  {
    SessionOptions o;
    o.keepalive_interval = 10ms;
    auto s = *Session::create(b, o);
    std::atomic<bool> done{false};
    auto holder = std::make_shared<std::shared_ptr<Session>>(s);
    std::weak_ptr<Session> weak = s;
    s.reset();
    (*holder)->on_lost([holder, &done](const Status&) {
      holder->reset();  // the last reference: ~Session runs on the keepalive thread
      done = true;
    });
    REQUIRE(b->revoke(weak.lock()->lease_id()).is_ok());
    REQUIRE(eventually([&] { return done.load(); }));
    REQUIRE(eventually([&] { return weak.expired(); }));
  }
}
