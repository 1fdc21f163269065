// LockService unit tests: a parked long-poll whose client disconnects (Responder::on_abandoned)
// leaves the queue at once instead of being granted a lock nobody will learn about.

#include "service_test_support.hpp"

using namespace service_test;  // NOLINT(google-build-using-namespace)

namespace {

std::shared_ptr<Reply> wait_acquire(Fixture& f, const std::string& target, json body) {
  body["wait_ms"] = 5000;
  auto r = f.send(Method::kPost, target, body.dump());
  REQUIRE_FALSE(r->ready());
  REQUIRE(r->has_abandon_handler());
  return r;
}

bool has_metric(Fixture& f, const std::string& line) {
  return f.registry.render().find(line) != std::string::npos;
}

}  // namespace

TEST_CASE("service: an abandoned waiter leaves the queue and is never granted", "[unit]") {
  Fixture f;
  std::string a = f.lease(), b = f.lease(), c = f.lease();
  uint64_t t1 = f.acquire("res", a)["token"];
  auto gone = wait_acquire(f, "/v1/locks/res/acquire", {{"lease_id", b}});
  auto next = wait_acquire(f, "/v1/locks/res/acquire", {{"lease_id", c}});
  REQUIRE(f.describe("res")["waiters"].size() == 2);

  REQUIRE(gone->abandon());
  REQUIRE(f.service->parked_waiters() == 1);
  json d = f.describe("res");
  REQUIRE(d["waiters"].size() == 1);
  REQUIRE(d["waiters"][0]["lease_id"] == c);
  REQUIRE(has_metric(f, "dlock_waiters_abandoned_total 1"));
  REQUIRE(has_metric(f, "dlock_waiters 1"));

  REQUIRE(f.post("/v1/locks/res/release", {{"lease_id", a}, {"token", t1}})->status() == 200);
  REQUIRE(next->status() == 200);
  REQUIRE(next->body()["lease_id"] == c);
  REQUIRE_FALSE(gone->ready());
  REQUIRE(f.describe("res")["holders"][0]["lease_id"] == c);
  // The lease that waited is untouched (it belongs to a client session, not to the request).
  REQUIRE(f.call(Method::kGet, "/v1/leases/" + b)->status() == 200);

  // Abandoning an answered request does nothing.
  REQUIRE_FALSE(next->abandon());
  REQUIRE(has_metric(f, "dlock_waiters_abandoned_total 1"));
  REQUIRE(f.describe("res")["holders"][0]["lease_id"] == c);
}

TEST_CASE("service: abandoning the only waiter frees the lock for later acquires", "[unit]") {
  Fixture f;
  std::string a = f.lease(), b = f.lease(), c = f.lease();
  uint64_t t1 = f.acquire("res", a)["token"];
  auto gone = wait_acquire(f, "/v1/locks/res/acquire", {{"lease_id", b}});
  REQUIRE(gone->abandon());
  REQUIRE(f.post("/v1/locks/res/release", {{"lease_id", a}, {"token", t1}})->status() == 200);
  REQUIRE(f.describe("res")["holders"].empty());
  f.acquire("res", c);
  // Nothing is left for the timer: the wait deadline went with the waiter.
  f.timers.advance(6000ms);
  REQUIRE_FALSE(gone->ready());
  REQUIRE(f.describe("res")["holders"][0]["lease_id"] == c);
}

TEST_CASE("service: an abandoned ttl_ms-shortcut waiter has its lease revoked", "[unit]") {
  Fixture f;
  std::string a = f.lease();
  f.acquire("res", a);
  auto gone = wait_acquire(f, "/v1/locks/res/acquire", {{"ttl_ms", 60'000}});
  REQUIRE(f.core.stats().leases == 2);
  REQUIRE(gone->abandon());
  REQUIRE(f.core.stats().leases == 1);
  REQUIRE(f.core.stats().waiters == 0);
  REQUIRE(f.describe("res")["waiters"].empty());
}

TEST_CASE("service: abandoning a big semaphore request at the head grants those behind it",
          "[unit]") {
  Fixture f;
  std::string a = f.lease(), b = f.lease(), c = f.lease();
  const std::string sem = "/v1/semaphores/pool/acquire";
  REQUIRE(f.post(sem, {{"lease_id", a}, {"limit", 3}})->status() == 200);
  // b wants all 3 permits: it queues at the head, and c (1 permit, which is free) queues behind.
  auto big = wait_acquire(f, sem, {{"lease_id", b}, {"limit", 3}, {"permits", 3}});
  auto small = wait_acquire(f, sem, {{"lease_id", c}, {"limit", 3}});
  REQUIRE(f.call(Method::kGet, "/v1/semaphores/pool")->body()["waiters"].size() == 2);

  REQUIRE(big->abandon());
  REQUIRE(small->ready());  // delivered by the abandon callback itself
  REQUIRE(small->status() == 200);
  REQUIRE(small->body()["lease_id"] == c);
  REQUIRE(f.service->parked_waiters() == 0);
  auto d = f.call(Method::kGet, "/v1/semaphores/pool")->body();
  REQUIRE(d["waiters"].empty());
  REQUIRE(d["holders"].size() == 2);
  REQUIRE(has_metric(f, "dlock_grants_to_waiters_total 1"));
}

TEST_CASE("service: abandon callbacks after superseding, shutdown or destruction are no-ops",
          "[unit]") {
  Fixture f;
  std::string a = f.lease(), b = f.lease();
  f.acquire("res", a);
  auto first = wait_acquire(f, "/v1/locks/res/acquire", {{"lease_id", b}});
  auto retry = wait_acquire(f, "/v1/locks/res/acquire", {{"lease_id", b}});
  require_error(first, 409, "superseded");
  REQUIRE_FALSE(first->abandon());  // answered: its handler was dropped
  REQUIRE(f.describe("res")["waiters"].size() == 1);

  // A callback the server already took, running after the service is gone.
  std::function<void()> late;
  {
    std::lock_guard lock(retry->mu);
    late = retry->on_abandon;
  }
  REQUIRE(late);
  f.service->shutdown();
  require_error(retry, 503, "unavailable");
  late();  // after shutdown: nothing parked
  f.service.reset();
  late();  // after destruction: the gate is closed
  REQUIRE(f.core.stats().waiters == 0);
}
