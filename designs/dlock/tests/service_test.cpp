// LockService unit tests: the Router is driven directly (no sockets) with a capturing Responder
// sink, a FakeClock and a manual timer queue, so long-poll wakeups and timeouts are deterministic.

#include "service_test_support.hpp"

using namespace service_test;  // NOLINT(google-build-using-namespace)

TEST_CASE("service: lease lifecycle", "[unit]") {
  Fixture f;
  auto r = f.post("/v1/leases", {{"ttl_ms", 5000}});
  REQUIRE(r->status() == 201);
  std::string id = r->body()["lease_id"];
  REQUIRE(r->body()["ttl_ms"] == 5000);

  f.clock.advance(1000ms);
  r = f.call(Method::kGet, "/v1/leases/" + id);
  REQUIRE(r->status() == 200);
  REQUIRE(r->body()["ttl_ms_left"] == 4000);
  REQUIRE(r->body()["holds"] == 0);

  r = f.call(Method::kPost, "/v1/leases/" + id + "/keepalive");
  REQUIRE(r->status() == 200);
  REQUIRE(r->body()["lease_id"] == id);
  REQUIRE(r->body()["ttl_ms"] == 5000);
  REQUIRE(f.call(Method::kGet, "/v1/leases/" + id)->body()["ttl_ms_left"] == 5000);

  REQUIRE(f.call(Method::kDelete, "/v1/leases/" + id)->status() == 200);
  require_error(f.call(Method::kGet, "/v1/leases/" + id), 404, "lease_not_found");
  require_error(f.call(Method::kPost, "/v1/leases/" + id + "/keepalive"), 404, "lease_not_found");
  require_error(f.call(Method::kDelete, "/v1/leases/" + id), 404, "lease_not_found");

  // Expiry: keepalive after the TTL is a 404.
  std::string short_id = f.lease(100);
  f.timers.advance(101ms);
  require_error(f.call(Method::kPost, "/v1/leases/" + short_id + "/keepalive"), 404,
                "lease_not_found");
}

TEST_CASE("service: exclusive acquire, contention, release", "[unit]") {
  Fixture f;
  std::string a = f.lease(), b = f.lease();
  json g = f.acquire("res", a);
  REQUIRE(g["name"] == "res");
  REQUIRE(g["lease_id"] == a);
  REQUIRE(g["mode"] == "exclusive");
  uint64_t t1 = g["token"];
  REQUIRE(t1 > 0);

  // Idempotent re-acquire by the holder: same token.
  REQUIRE(f.acquire("res", a)["token"] == t1);

  auto r = f.post("/v1/locks/res/acquire", {{"lease_id", b}});
  require_error(r, 409, "locked");

  json before = f.describe("res");
  REQUIRE(before["kind"] == "lock");
  REQUIRE(before["holders"].size() == 1);
  REQUIRE(before["holders"][0]["lease_id"] == a);
  REQUIRE(before["holders"][0]["token"] == t1);
  REQUIRE(before["holders"][0]["mode"] == "exclusive");
  REQUIRE(before["last_token"] == t1);

  // Non-holder and wrong token: 409 not_holder, nothing changes.
  require_error(f.post("/v1/locks/res/release", {{"lease_id", b}, {"token", t1}}), 409,
                "not_holder");
  require_error(f.post("/v1/locks/res/release", {{"lease_id", a}, {"token", t1 + 1}}), 409,
                "not_holder");
  require_error(f.post("/v1/locks/other/release", {{"lease_id", a}, {"token", t1}}), 409,
                "not_holder");
  require_error(
      f.post("/v1/locks/res/release", {{"lease_id", std::string(32, 'f')}, {"token", t1}}), 404,
      "lease_not_found");
  REQUIRE(f.describe("res") == before);

  r = f.post("/v1/locks/res/release", {{"lease_id", a}, {"token", t1}});
  REQUIRE(r->status() == 200);
  REQUIRE(r->body()["released"] == true);

  uint64_t t2 = f.acquire("res", b)["token"];
  REQUIRE(t2 > t1);
  require_error(f.call(Method::kGet, "/v1/locks/never-used"), 404, "not_found");
}

TEST_CASE("service: shared locks and mode conflicts", "[unit]") {
  Fixture f;
  std::string a = f.lease(), b = f.lease(), c = f.lease();
  f.acquire("s", a, 200, "shared");
  f.acquire("s", b, 200, "shared");
  require_error(f.post("/v1/locks/s/acquire", {{"lease_id", c}, {"mode", "exclusive"}}), 409,
                "locked");
  require_error(f.post("/v1/locks/s/acquire", {{"lease_id", a}, {"mode", "exclusive"}}), 409,
                "mode_mismatch");
  REQUIRE(f.describe("s")["holders"].size() == 2);
}

TEST_CASE("service: long-poll waiter is answered in the releasing call", "[unit]") {
  Fixture f;
  std::string a = f.lease(), b = f.lease();
  uint64_t t1 = f.acquire("res", a)["token"];

  auto waiting = f.send(Method::kPost, "/v1/locks/res/acquire",
                        json{{"lease_id", b}, {"wait_ms", 5000}}.dump());
  REQUIRE_FALSE(waiting->ready());
  REQUIRE(f.service->parked_waiters() == 1);
  json d = f.describe("res");
  REQUIRE(d["waiters"].size() == 1);
  REQUIRE(d["waiters"][0]["lease_id"] == b);
  REQUIRE(d["waiters"][0]["wait_ms_left"] == 5000);

  // A try-lock by a lease that is already waiting on the name is refused.
  require_error(f.post("/v1/locks/res/acquire", {{"lease_id", b}}), 409, "already_waiting");
  REQUIRE_FALSE(waiting->ready());
  // A second waiting acquire (a client retrying after its connection died while parked) replaces
  // the first, which gets 409 "superseded"; the lease still waits once.
  auto retry = f.send(Method::kPost, "/v1/locks/res/acquire",
                      json{{"lease_id", b}, {"wait_ms", 5000}}.dump());
  REQUIRE_FALSE(retry->ready());
  require_error(waiting, 409, "superseded");
  REQUIRE(f.service->parked_waiters() == 1);
  REQUIRE(f.describe("res")["waiters"].size() == 1);
  waiting = retry;

  f.clock.advance(10ms);  // no timer fires: nothing is due
  REQUIRE_FALSE(waiting->ready());

  REQUIRE(f.post("/v1/locks/res/release", {{"lease_id", a}, {"token", t1}})->status() == 200);
  REQUIRE(waiting->ready());  // same call, no timer involved
  REQUIRE(waiting->status() == 200);
  json g = waiting->body();
  REQUIRE(g["lease_id"] == b);
  REQUIRE(g["mode"] == "exclusive");
  REQUIRE(g["token"].get<uint64_t>() > t1);
  REQUIRE(f.service->parked_waiters() == 0);
  REQUIRE(f.describe("res")["holders"][0]["lease_id"] == b);

  std::string text = f.registry.render();
  REQUIRE(text.find("dlock_grants_to_waiters_total 1") != std::string::npos);
  REQUIRE(text.find("dlock_acquire_total{result=\"queued\"} 2") != std::string::npos);
  REQUIRE(text.find("dlock_handoff_seconds_count 1") != std::string::npos);
}

TEST_CASE("service: waiter timeout is answered by the scheduled timer", "[unit]") {
  Fixture f;
  std::string a = f.lease(60'000), b = f.lease(60'000);
  f.acquire("res", a);
  auto waiting = f.send(Method::kPost, "/v1/locks/res/acquire",
                        json{{"lease_id", b}, {"wait_ms", 1000}}.dump());
  REQUIRE_FALSE(waiting->ready());
  REQUIRE(f.timers.live() == 1);

  f.timers.advance(999ms);
  REQUIRE_FALSE(waiting->ready());
  f.timers.advance(1ms);
  REQUIRE(waiting->ready());
  require_error(waiting, 409, "locked");
  REQUIRE(f.describe("res")["waiters"].empty());
  REQUIRE(f.service->parked_waiters() == 0);
  // The lease deadlines are still pending: exactly one timer stays armed.
  REQUIRE(f.timers.live() == 1);
}

TEST_CASE("service: lease expiry hands the lock to a waiter via the timer", "[unit]") {
  Fixture f;
  std::string a = f.lease(500), b = f.lease(60'000);
  uint64_t t1 = f.acquire("res", a)["token"];
  auto waiting = f.send(Method::kPost, "/v1/locks/res/acquire",
                        json{{"lease_id", b}, {"wait_ms", 5000}}.dump());
  f.timers.advance(499ms);
  REQUIRE_FALSE(waiting->ready());
  f.timers.advance(1ms);
  REQUIRE(waiting->ready());
  REQUIRE(waiting->status() == 200);
  REQUIRE(waiting->body()["token"].get<uint64_t>() > t1);
  require_error(f.call(Method::kGet, "/v1/leases/" + a), 404, "lease_not_found");
}

TEST_CASE("service: keepalives do not re-arm the timer each time", "[unit]") {
  Fixture f;
  std::string a = f.lease(1000);
  size_t armed = f.timers.scheduled();
  for (int i = 0; i < 50; ++i) {
    f.timers.advance(10ms);
    REQUIRE(f.call(Method::kPost, "/v1/leases/" + a + "/keepalive")->status() == 200);
  }
  REQUIRE(f.timers.scheduled() == armed);  // the deadline only moved later
  f.timers.advance(2000ms);
  require_error(f.call(Method::kGet, "/v1/leases/" + a), 404, "lease_not_found");
}

TEST_CASE("service: revoking a lease answers its parked waiter with 404", "[unit]") {
  Fixture f;
  std::string a = f.lease(), b = f.lease();
  f.acquire("res", a);
  auto waiting = f.send(Method::kPost, "/v1/locks/res/acquire",
                        json{{"lease_id", b}, {"wait_ms", 5000}}.dump());
  REQUIRE(f.call(Method::kDelete, "/v1/leases/" + b)->status() == 200);
  REQUIRE(waiting->ready());
  require_error(waiting, 404, "lease_not_found");
  REQUIRE(f.describe("res")["waiters"].empty());

  // Revoking the holder frees the lock (no lock-delay on revoke).
  std::string c = f.lease();
  REQUIRE(f.call(Method::kDelete, "/v1/leases/" + a)->status() == 200);
  f.acquire("res", c);
}

TEST_CASE("service: ttl_ms shortcut creates a lease and revokes it when not granted", "[unit]") {
  Fixture f;
  auto r = f.post("/v1/locks/res/acquire", {{"ttl_ms", 2000}});
  REQUIRE(r->status() == 200);
  json g = r->body();
  REQUIRE(g["ttl_ms"] == 2000);
  std::string holder = g["lease_id"];
  auto lr = f.call(Method::kGet, "/v1/leases/" + holder);
  REQUIRE(lr->status() == 200);
  REQUIRE(lr->body()["holds"] == 1);
  REQUIRE(f.core.stats().leases == 1);

  // Try-lock that fails: the created lease is gone again.
  require_error(f.post("/v1/locks/res/acquire", {{"ttl_ms", 2000}}), 409, "locked");
  REQUIRE(f.core.stats().leases == 1);

  // Waiting acquire that times out: revoked when the timer answers it.
  auto waiting = f.send(Method::kPost, "/v1/locks/res/acquire",
                        json{{"ttl_ms", 60'000}, {"wait_ms", 300}}.dump());
  REQUIRE_FALSE(waiting->ready());
  REQUIRE(f.core.stats().leases == 2);
  f.timers.advance(300ms);
  require_error(waiting, 409, "locked");
  REQUIRE(f.core.stats().leases == 1);

  // Waiting acquire that is granted keeps its lease and reports its ttl.
  waiting = f.send(Method::kPost, "/v1/locks/res/acquire",
                   json{{"ttl_ms", 60'000}, {"wait_ms", 5000}}.dump());
  REQUIRE(
      f.post("/v1/locks/res/release", {{"lease_id", holder}, {"token", g["token"]}})->status() ==
      200);
  REQUIRE(waiting->status() == 200);
  REQUIRE(waiting->body()["ttl_ms"] == 60'000);
  REQUIRE(f.core.stats().leases == 2);
}

TEST_CASE("service: semaphores", "[unit]") {
  Fixture f;
  std::string a = f.lease(), b = f.lease(), c = f.lease();
  auto r = f.post("/v1/semaphores/pool/acquire", {{"lease_id", a}, {"limit", 3}, {"permits", 2}});
  REQUIRE(r->status() == 200);
  json g = r->body();
  REQUIRE(g["permits"] == 2);
  REQUIRE(g["limit"] == 3);
  REQUIRE_FALSE(g.contains("mode"));
  REQUIRE(f.post("/v1/semaphores/pool/acquire", {{"lease_id", b}, {"limit", 3}})->status() == 200);
  require_error(f.post("/v1/semaphores/pool/acquire", {{"lease_id", c}, {"limit", 3}}), 409,
                "locked");
  require_error(f.post("/v1/semaphores/pool/acquire", {{"lease_id", c}, {"limit", 4}}), 409,
                "limit_mismatch");

  // Locks and semaphores are separate namespaces.
  f.acquire("pool", c);

  auto waiting =
      f.send(Method::kPost, "/v1/semaphores/pool/acquire",
             json{{"lease_id", c}, {"limit", 3}, {"permits", 2}, {"wait_ms", 1000}}.dump());
  REQUIRE_FALSE(waiting->ready());
  REQUIRE(
      f.post("/v1/semaphores/pool/release", {{"lease_id", a}, {"token", g["token"]}})->status() ==
      200);
  REQUIRE(waiting->status() == 200);
  REQUIRE(waiting->body()["limit"] == 3);

  auto d = f.call(Method::kGet, "/v1/semaphores/pool");
  REQUIRE(d->status() == 200);
  REQUIRE(d->body()["kind"] == "semaphore");
  REQUIRE(d->body()["limit"] == 3);
  REQUIRE(d->body()["holders"].size() == 2);

  auto l = f.call(Method::kGet, "/v1/semaphores?prefix=po");
  REQUIRE(l->status() == 200);
  REQUIRE(l->body()["semaphores"].size() == 1);
}

TEST_CASE("service: list locks by prefix with a limit", "[unit]") {
  Fixture f;
  std::string a = f.lease();
  for (const char* n : {"app-1", "app-2", "app-3", "db-1"}) f.acquire(n, a);
  auto r = f.call(Method::kGet, "/v1/locks?prefix=app-");
  REQUIRE(r->status() == 200);
  REQUIRE(r->body()["locks"].size() == 3);
  REQUIRE(r->body()["locks"][0]["name"] == "app-1");
  r = f.call(Method::kGet, "/v1/locks?prefix=app-&limit=2");
  REQUIRE(r->body()["locks"].size() == 2);
  r = f.call(Method::kGet, "/v1/locks");
  REQUIRE(r->body()["locks"].size() == 4);
}

TEST_CASE("service: names are percent-decoded path segments", "[unit]") {
  Fixture f;
  std::string a = f.lease();
  f.acquire("a%2Fb", a);
  REQUIRE(f.describe("a%2Fb")["name"] == "a/b");
  f.acquire("%E2%9C%93", a);  // U+2713 CHECK MARK
  REQUIRE(f.describe("%E2%9C%93")["name"] == "\u2713");
}

TEST_CASE("service: bad input is a JSON 4xx and changes nothing", "[unit]") {
  Fixture f;
  std::string a = f.lease(), b = f.lease();
  json g = f.acquire("res", a);
  uint64_t tok = g["token"];
  json state_before = f.describe("res");
  auto stats_before = f.core.stats();
  std::string upper_id = a;
  for (char& ch : upper_id) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));

  struct Case {
    Method method;
    std::string target;
    std::string body;
    int status;
    std::string code;  // "" = any
  };
  const std::string acq = "/v1/locks/res/acquire";
  const std::string rel = "/v1/locks/res/release";
  const std::string sem = "/v1/semaphores/pool/acquire";
  auto lb = [&](json extra) {
    extra["lease_id"] = b;
    return extra.dump();
  };
  std::vector<Case> cases = {
      // Leases.
      {Method::kPost, "/v1/leases", "", 400, "invalid_json"},
      {Method::kPost, "/v1/leases", "{not json", 400, "invalid_json"},
      {Method::kPost, "/v1/leases", "[1,2]", 400, "invalid_json"},
      {Method::kPost, "/v1/leases", "\"str\"", 400, "invalid_json"},
      {Method::kPost, "/v1/leases", "{}", 400, "invalid_ttl"},
      {Method::kPost, "/v1/leases", R"({"ttl_ms":"1000"})", 400, "invalid_ttl"},
      {Method::kPost, "/v1/leases", R"({"ttl_ms":1000.5})", 400, "invalid_ttl"},
      {Method::kPost, "/v1/leases", R"({"ttl_ms":1e3})", 400, "invalid_ttl"},
      {Method::kPost, "/v1/leases", R"({"ttl_ms":true})", 400, "invalid_ttl"},
      {Method::kPost, "/v1/leases", R"({"ttl_ms":-1})", 400, "invalid_ttl"},
      {Method::kPost, "/v1/leases", R"({"ttl_ms":0})", 400, "invalid_ttl"},
      {Method::kPost, "/v1/leases", R"({"ttl_ms":9})", 400, "invalid_ttl"},
      {Method::kPost, "/v1/leases", R"({"ttl_ms":3600001})", 400, "invalid_ttl"},
      {Method::kPost, "/v1/leases", R"({"ttl_ms":18446744073709551615})", 400, "invalid_ttl"},
      {Method::kPost, "/v1/leases", R"({"ttl_ms":99999999999999999999999})", 400, "invalid_ttl"},
      {Method::kPost, "/v1/leases", R"({"ttl_ms":[1000]})", 400, "invalid_ttl"},
      {Method::kPost, "/v1/leases", "{\"ttl_ms\":1000,\"x\":\"\xff\"}", 400, "invalid_json"},
      {Method::kGet, "/v1/leases/nothex", "", 400, "invalid_lease_id"},
      {Method::kGet, "/v1/leases/" + upper_id, "", 400, "invalid_lease_id"},
      {Method::kPost, "/v1/leases/" + a + "/keepalive", "{bad", 400, "invalid_json"},
      {Method::kDelete, "/v1/leases/" + a.substr(1), "", 400, "invalid_lease_id"},
      // Acquire.
      {Method::kPost, acq, "", 400, "invalid_json"},
      {Method::kPost, acq, "nope", 400, "invalid_json"},
      {Method::kPost, acq, "{}", 400, "invalid_argument"},
      {Method::kPost, acq, json{{"lease_id", b}, {"ttl_ms", 1000}}.dump(), 400, "invalid_argument"},
      {Method::kPost, acq, R"({"lease_id":"abc"})", 400, "invalid_lease_id"},
      {Method::kPost, acq, json{{"lease_id", upper_id}}.dump(), 400, "invalid_lease_id"},
      {Method::kPost, acq, R"({"lease_id":12345})", 400, "invalid_lease_id"},
      {Method::kPost, acq, R"({"ttl_ms":"5000"})", 400, "invalid_ttl"},
      {Method::kPost, acq, R"({"ttl_ms":5})", 400, "invalid_ttl"},
      {Method::kPost, acq, lb({{"mode", "weird"}}), 400, "invalid_mode"},
      {Method::kPost, acq, lb({{"mode", 1}}), 400, "invalid_mode"},
      {Method::kPost, acq, lb({{"mode", "EXCLUSIVE"}}), 400, "invalid_mode"},
      {Method::kPost, acq, lb({{"wait_ms", -1}}), 400, "invalid_wait"},
      {Method::kPost, acq, lb({{"wait_ms", 300001}}), 400, "invalid_wait"},
      {Method::kPost, acq, lb({{"wait_ms", "5"}}), 400, "invalid_wait"},
      {Method::kPost, acq, lb({{"wait_ms", 1.5}}), 400, "invalid_wait"},
      {Method::kPost, "/v1/locks/" + std::string(257, 'n') + "/acquire", lb({}), 400,
       "invalid_name"},
      {Method::kPost, "/v1/locks/%FF/acquire", lb({}), 400, "invalid_name"},
      {Method::kPost, "/v1/locks/a%FFb/acquire", lb({}), 400, "invalid_name"},
      {Method::kPost, "/v1/locks/%C0%80/acquire", lb({}), 400, "invalid_name"},  // overlong NUL
      {Method::kPost, "/v1/locks/%01x/acquire", lb({}), 400, "invalid_name"},
      {Method::kPost, "/v1/locks/%ZZ/acquire", lb({}), 400, ""},
      {Method::kPost, "/v1/locks//acquire", lb({}), 404, ""},
      // Release.
      {Method::kPost, rel, "{", 400, "invalid_json"},
      {Method::kPost, rel, json{{"lease_id", a}}.dump(), 400, "invalid_token"},
      {Method::kPost, rel, json{{"lease_id", a}, {"token", -1}}.dump(), 400, "invalid_token"},
      {Method::kPost, rel, json{{"lease_id", a}, {"token", "1"}}.dump(), 400, "invalid_token"},
      {Method::kPost, rel, json{{"lease_id", a}, {"token", 1.5}}.dump(), 400, "invalid_token"},
      {Method::kPost, rel, json{{"lease_id", a}, {"token", true}}.dump(), 400, "invalid_token"},
      {Method::kPost, rel, json{{"token", tok}}.dump(), 400, "invalid_lease_id"},
      {Method::kPost, rel, json{{"lease_id", "x"}, {"token", tok}}.dump(), 400, "invalid_lease_id"},
      {Method::kPost, "/v1/locks/%FF/release", json{{"lease_id", a}, {"token", tok}}.dump(), 400,
       "invalid_name"},
      // Semaphores.
      {Method::kPost, sem, lb({}), 400, "invalid_limit"},
      {Method::kPost, sem, lb({{"limit", 0}}), 400, "invalid_limit"},
      {Method::kPost, sem, lb({{"limit", 1000001}}), 400, "invalid_limit"},
      {Method::kPost, sem, lb({{"limit", "3"}}), 400, "invalid_limit"},
      {Method::kPost, sem, lb({{"limit", 3}, {"permits", 0}}), 400, "invalid_permits"},
      {Method::kPost, sem, lb({{"limit", 3}, {"permits", 4}}), 400, "invalid_permits"},
      // Describe / list.
      {Method::kGet, "/v1/locks/%FF", "", 400, "invalid_name"},
      {Method::kGet, "/v1/locks?limit=0", "", 400, "invalid_limit"},
      {Method::kGet, "/v1/locks?limit=abc", "", 400, "invalid_limit"},
      {Method::kGet, "/v1/locks?limit=10001", "", 400, "invalid_limit"},
      {Method::kGet, "/v1/locks?limit=-5", "", 400, "invalid_limit"},
      {Method::kGet, "/v1/locks?prefix=%FF", "", 400, "invalid_name"},
      // Routing.
      {Method::kGet, "/v1/nothing", "", 404, ""},
      {Method::kPut, "/v1/locks/res/acquire", lb({}), 405, ""},
      {Method::kGet, "/v1/locks/res/acquire", "", 405, ""},
  };
  for (const auto& c : cases) {
    INFO(sd::net::method_name(c.method) << " " << c.target.substr(0, 80) << " body=" << c.body);
    auto r = f.send(c.method, c.target, c.body);
    REQUIRE(r->ready());
    require_error(r, c.status, c.code);
  }
  REQUIRE(f.describe("res") == state_before);
  auto stats_after = f.core.stats();
  REQUIRE(stats_after.leases == stats_before.leases);
  REQUIRE(stats_after.holds == stats_before.holds);
  REQUIRE(stats_after.waiters == stats_before.waiters);
  REQUIRE(stats_after.names == stats_before.names);
  REQUIRE(f.call(Method::kGet, "/v1/leases/" + a)->body()["holds"] == 1);
  REQUIRE(f.call(Method::kGet, "/v1/leases/" + b)->body()["holds"] == 0);
  require_error(f.call(Method::kGet, "/v1/semaphores/pool"), 404, "not_found");

  std::string text = f.registry.render();
  REQUIRE(text.find("dlock_acquire_total{result=\"error\"}") != std::string::npos);
}

TEST_CASE("service: shutdown answers parked waiters with 503", "[unit]") {
  Fixture f;
  std::string a = f.lease(), b = f.lease();
  f.acquire("res", a);
  auto waiting = f.send(Method::kPost, "/v1/locks/res/acquire",
                        json{{"lease_id", b}, {"wait_ms", 5000}}.dump());
  f.service->shutdown();
  require_error(waiting, 503, "unavailable");
  REQUIRE(f.describe("res")["waiters"].empty());
  // Later waits are refused instead of parking forever without a timer.
  require_error(f.post("/v1/locks/res/acquire", {{"lease_id", b}, {"wait_ms", 5000}}), 503,
                "unavailable");
  REQUIRE(f.describe("res")["waiters"].empty());
}

TEST_CASE("service: gauges follow the core", "[unit]") {
  Fixture f;
  std::string a = f.lease(), b = f.lease();
  f.acquire("res", a);
  auto waiting = f.send(Method::kPost, "/v1/locks/res/acquire",
                        json{{"lease_id", b}, {"wait_ms", 5000}}.dump());
  std::string text = f.registry.render();
  REQUIRE(text.find("dlock_leases 2") != std::string::npos);
  REQUIRE(text.find("dlock_holds 1") != std::string::npos);
  REQUIRE(text.find("dlock_waiters 1") != std::string::npos);
}
