// RateLimitService POST /v1/check: decisions, bodies and exact header text, driven in-process.

#include "service_test_support.hpp"

using namespace service_test;  // NOLINT(google-build-using-namespace)

TEST_CASE("service check: fixed window allows then denies with exact body and headers", "[unit]") {
  Fixture f;
  auto r = f.check("remote_address", "10.0.0.1");
  REQUIRE(r->status() == 200);
  json expected_status = {{"code", "OK"},
                          {"rule", "api/remote_address"},
                          {"policy", "api.remote_address"},
                          {"shadow", false},
                          {"algorithm", "fixed_window"},
                          {"limit", 3},
                          {"unit", "second"},
                          {"remaining", 2},
                          {"reset_after_ms", 1000},
                          {"retry_after_ms", 0}};
  REQUIRE(r->body() == json{{"allowed", true},
                            {"overall_code", "OK"},
                            {"retry_after_ms", 0},
                            {"delay_ms", 0},
                            {"statuses", {expected_status}}});
  REQUIRE(r->header("RateLimit-Policy") == "\"api.remote_address\";q=3;w=1");
  REQUIRE(r->header("RateLimit") == "\"api.remote_address\";r=2;t=1");
  REQUIRE_FALSE(r->has_header("Retry-After"));
  REQUIRE_FALSE(r->has_header("X-RateLimit-Limit"));  // legacy headers are off by default

  f.clock.advance(400ms);
  REQUIRE(f.check("remote_address", "10.0.0.1")->body()["statuses"][0]["remaining"] == 1);
  r = f.check("remote_address", "10.0.0.1");
  REQUIRE(r->status() == 200);
  REQUIRE(r->header("RateLimit") == "\"api.remote_address\";r=0;t=1");
  REQUIRE(r->body()["statuses"][0]["reset_after_ms"] == 600);

  r = f.check("remote_address", "10.0.0.1");
  REQUIRE(r->status() == 429);
  json b = r->body();
  REQUIRE(b["allowed"] == false);
  REQUIRE(b["overall_code"] == "OVER_LIMIT");
  REQUIRE(b["retry_after_ms"] == 600);
  REQUIRE(b["statuses"][0]["code"] == "OVER_LIMIT");
  REQUIRE(b["statuses"][0]["remaining"] == 0);
  REQUIRE(b["statuses"][0]["retry_after_ms"] == 600);
  REQUIRE(r->header("Retry-After") == "1");
  REQUIRE(r->header("RateLimit-Policy") == "\"api.remote_address\";q=3;w=1");
  REQUIRE(r->header("RateLimit") == "\"api.remote_address\";r=0;t=1");

  // Another client has its own quota; the window end restores this one.
  REQUIRE(f.check("remote_address", "10.0.0.2")->status() == 200);
  f.clock.advance(600ms);
  REQUIRE(f.check("remote_address", "10.0.0.1")->status() == 200);
}

TEST_CASE("service check: several descriptors give one header member each and 429 if any denies",
          "[unit]") {
  Fixture f;
  json body = {
      {"domain", "api"},
      {"descriptors", {descriptor("remote_address", "10.0.0.1"), descriptor("user", "alice")}}};
  auto r = f.post("/v1/check", body);
  REQUIRE(r->status() == 200);
  REQUIRE(r->header("RateLimit-Policy") == "\"api.remote_address\";q=3;w=1, \"per-user\";q=2;w=60");
  REQUIRE(r->header("RateLimit") == "\"api.remote_address\";r=2;t=1, \"per-user\";r=1;t=30");
  json s = r->body()["statuses"];
  REQUIRE(s.size() == 2);
  REQUIRE(s[1]["rule"] == "api/user");
  REQUIRE(s[1]["policy"] == "per-user");
  REQUIRE(s[1]["algorithm"] == "token_bucket");
  REQUIRE(s[1]["unit"] == "minute");
  REQUIRE(s[1]["reset_after_ms"] == 30000);

  REQUIRE(f.post("/v1/check", body)->status() == 200);
  r = f.post("/v1/check", body);  // the user's bucket (2/min) is empty, the address has 1 left
  REQUIRE(r->status() == 429);
  s = r->body()["statuses"];
  REQUIRE(s[0]["code"] == "OK");
  REQUIRE(s[0]["remaining"] == 0);  // envoy semantics: an allowing item consumes anyway
  REQUIRE(s[1]["code"] == "OVER_LIMIT");
  REQUIRE(s[1]["retry_after_ms"] == 30000);
  REQUIRE(r->body()["retry_after_ms"] == 30000);
  REQUIRE(r->header("Retry-After") == "30");
  REQUIRE(r->header("RateLimit") == "\"api.remote_address\";r=0;t=1, \"per-user\";r=0;t=60");
}

TEST_CASE("service check: shadow rules decide and count but never deny", "[unit]") {
  Fixture f;
  auto r = f.check("path", "/login");
  REQUIRE(r->status() == 200);
  REQUIRE(r->body()["statuses"][0]["shadow"] == true);
  REQUIRE(r->body()["statuses"][0]["remaining"] == 0);
  for (int i = 0; i < 3; ++i) {
    r = f.check("path", "/login");
    REQUIRE(r->status() == 200);
    json b = r->body();
    REQUIRE(b["allowed"] == true);
    REQUIRE(b["statuses"][0]["code"] == "OK");
    REQUIRE(b["statuses"][0]["shadow_limited"] == true);
  }
  // A shadow rule's quota is not advertised: nobody is limited by it.
  REQUIRE_FALSE(r->has_header("RateLimit"));
  REQUIRE_FALSE(r->has_header("RateLimit-Policy"));
  const std::string labels = "domain=\"api\",rule=\"api/path=/login\",result=";
  REQUIRE(f.metric("ratelimit_decisions_total{" + labels + "\"allowed\"}") == 1);
  REQUIRE(f.metric("ratelimit_decisions_total{" + labels + "\"shadow_limited\"}") == 3);
  REQUIRE(f.metric("ratelimit_decisions_total{" + labels + "\"limited\"}") == 0);
  // Another path value matches no rule at all.
  r = f.check("path", "/home");
  REQUIRE(r->body()["statuses"][0] == json{{"code", "OK"}, {"rule", nullptr}});
}

TEST_CASE("service check: unlimited and unmatched descriptors pass without limits", "[unit]") {
  Fixture f;
  json body = {
      {"domain", "api"},
      {"descriptors",
       {descriptor("internal", "batch"), descriptor("nope", "x"), descriptor("tenant", "acme")}}};
  for (int i = 0; i < 10; ++i) {
    auto r = f.post("/v1/check", body);
    REQUIRE(r->status() == 200);
    json s = r->body()["statuses"];
    REQUIRE(s[0] == json{{"code", "OK"},
                         {"rule", "api/internal"},
                         {"policy", "api.internal"},
                         {"shadow", false},
                         {"unlimited", true}});
    REQUIRE(s[1] == json{{"code", "OK"}, {"rule", nullptr}});
    // A concurrency-only rule is not a rate: /v1/check reports it matched and passes.
    REQUIRE(s[2] == json{{"code", "OK"}, {"rule", "api/tenant"}, {"shadow", false}});
    REQUIRE_FALSE(r->has_header("RateLimit"));
  }
}

TEST_CASE("service check: unlimited and unmatched descriptors never reach the store", "[unit]") {
  FailingStore failing;
  Fixture f(kRules, {}, &failing);
  json body = {{"domain", "api"},
               {"descriptors", {descriptor("internal", "batch"), descriptor("nope", "x")}}};
  REQUIRE(f.post("/v1/check", body)->status() == 200);
  REQUIRE(failing.calls == 0);
  REQUIRE(f.check("remote_address", "1.2.3.4")->status() == 200);  // fail open
  REQUIRE(failing.calls == 1);
}

TEST_CASE("service check: cost consumes units and a cost above the limit can never pass",
          "[unit]") {
  Fixture f;
  auto r = f.check("remote_address", "a", 0);  // report only
  REQUIRE(r->status() == 200);
  REQUIRE(r->body()["statuses"][0]["remaining"] == 3);
  r = f.check("remote_address", "a", 3);
  REQUIRE(r->status() == 200);
  REQUIRE(r->body()["statuses"][0]["remaining"] == 0);
  REQUIRE(f.check("remote_address", "a", 1)->status() == 429);

  r = f.check("remote_address", "b", 4);  // 4 > 3 per second: no wait helps
  REQUIRE(r->status() == 429);
  REQUIRE(r->body()["retry_after_ms"].is_null());
  REQUIRE(r->body()["statuses"][0]["retry_after_ms"].is_null());
  REQUIRE_FALSE(r->has_header("Retry-After"));
  REQUIRE(r->header("RateLimit") == "\"api.remote_address\";r=3;t=1");
}

TEST_CASE("service check: leaky queue delays are returned as delay_ms", "[unit]") {
  Fixture f;  // 10/s, burst 2: one request per 100 ms, two may wait
  std::vector<int> delays;
  for (int i = 0; i < 3; ++i) {
    auto r = f.check("queue", "q");
    REQUIRE(r->status() == 200);
    delays.push_back(r->body()["delay_ms"].get<int>());
  }
  REQUIRE(delays == std::vector<int>{0, 100, 200});
  auto r = f.check("queue", "q");
  REQUIRE(r->status() == 429);
  REQUIRE(r->body()["delay_ms"] == 0);
  REQUIRE(r->body()["retry_after_ms"] == 100);
  REQUIRE(r->header("Retry-After") == "1");
  REQUIRE(f.timers.live() == 0);  // /v1/check never holds a reply
}

TEST_CASE("service check: legacy X-RateLimit headers show the most restrictive rule", "[unit]") {
  rl::ServiceOptions o;
  o.legacy_headers = true;
  Fixture f(kRules, o);
  json body = {
      {"domain", "api"},
      {"descriptors", {descriptor("remote_address", "10.0.0.1"), descriptor("user", "alice")}}};
  auto r = f.post("/v1/check", body);
  // remote_address: 2 left (reset 1 s); user: 1 left (reset 30 s) -> the user rule.
  REQUIRE(r->header("X-RateLimit-Limit") == "2");
  REQUIRE(r->header("X-RateLimit-Remaining") == "1");
  REQUIRE(r->header("X-RateLimit-Reset") == "30");
  REQUIRE(r->header("RateLimit") == "\"api.remote_address\";r=2;t=1, \"per-user\";r=1;t=30");
}
