// RateLimitService operations: store failure policy, metrics, concurrency permits, rules listing
// and reload through the API.

#include <fstream>

#include "sd/testing/testing.hpp"
#include "service_test_support.hpp"

using namespace service_test;  // NOLINT(google-build-using-namespace)

TEST_CASE("service store errors: fail open allows without rate headers", "[unit]") {
  FailingStore failing;
  Fixture f(kRules, {}, &failing);
  json body = {{"domain", "api"},
               {"descriptors", {descriptor("remote_address", "1.2.3.4"), descriptor("nope", "x")}}};
  auto r = f.post("/v1/check", body);
  REQUIRE(r->status() == 200);
  json b = r->body();
  REQUIRE(b["allowed"] == true);
  REQUIRE(b["store_error"] == true);
  REQUIRE(b["statuses"][0]["code"] == "STORE_ERROR");
  REQUIRE(b["statuses"][0]["rule"] == "api/remote_address");
  REQUIRE(b["statuses"][1] == json{{"code", "OK"}, {"rule", nullptr}});
  REQUIRE_FALSE(r->has_header("RateLimit"));
  REQUIRE_FALSE(r->has_header("RateLimit-Policy"));
  REQUIRE_FALSE(r->has_header("Retry-After"));
  auto a = f.call(Method::kGet, "/v1/auth/api?entries=remote_address:X", "", {{"X", "1"}});
  REQUIRE(a->status() == 204);
  REQUIRE(f.metric("ratelimit_store_errors_total{domain=\"api\"}") == 2);
  REQUIRE(f.metric("ratelimit_decisions_total{domain=\"api\",rule=\"api/remote_address\","
                   "result=\"allowed\"}") == 0);
}

TEST_CASE("service store errors: fail closed answers 429 store_unavailable", "[unit]") {
  FailingStore failing;
  rl::ServiceOptions o;
  o.on_store_error = rl::StoreErrorPolicy::kClosed;
  Fixture f(kRules, o, &failing);
  auto r = f.check("remote_address", "1.2.3.4");
  require_error(r, 429, "store_unavailable");
  REQUIRE(r->header("Retry-After") == "1");
  auto a = f.call(Method::kGet, "/v1/auth/api?entries=remote_address:X", "", {{"X", "1"}});
  require_error(a, 429, "store_unavailable");
  REQUIRE(a->header("Retry-After") == "1");
  // Requests no rate rule matches do not need the store and still pass.
  REQUIRE(f.check("internal", "x")->status() == 200);
  REQUIRE(f.metric("ratelimit_store_errors_total{domain=\"api\"}") == 2);
}

TEST_CASE("service metrics: counters per rule after a sequence", "[unit]") {
  Fixture f;
  for (int i = 0; i < 5; ++i) (void)f.check("remote_address", "10.0.0.1");  // 3 allowed, 2 not
  (void)f.check("user", "bob");                                             // 1 of 2 left: fine
  (void)f.check("user", "bob");                                             // 0 of 2: near
  const std::string ra = "domain=\"api\",rule=\"api/remote_address\"";
  REQUIRE(f.metric("ratelimit_decisions_total{" + ra + ",result=\"allowed\"}") == 3);
  REQUIRE(f.metric("ratelimit_decisions_total{" + ra + ",result=\"limited\"}") == 2);
  REQUIRE(f.metric("ratelimit_decisions_total{" + ra + ",result=\"shadow_limited\"}") == 0);
  // remaining after each allowed decision: 2, 1, 0 of 3 -> below 20% only for the last.
  REQUIRE(f.metric("ratelimit_near_limit_total{" + ra + "}") == 1);
  const std::string user = "domain=\"api\",rule=\"api/user\"";
  REQUIRE(f.metric("ratelimit_decisions_total{" + user + ",result=\"allowed\"}") == 2);
  REQUIRE(f.metric("ratelimit_near_limit_total{" + user + "}") == 1);
  REQUIRE(f.metric("ratelimit_rules_version") == 1);
  REQUIRE(f.metric("ratelimit_decision_duration_seconds_count{endpoint=\"check\"}") == 7);
  REQUIRE(f.metric("ratelimit_store_errors_total{domain=\"api\"}") == 0);
}

TEST_CASE("service concurrency: acquire and release permits up to max_in_flight", "[unit]") {
  Fixture f;
  json body = {{"domain", "api"}, {"descriptors", {descriptor("tenant", "acme")}}};
  auto a1 = f.post("/v1/concurrency/acquire", body);
  REQUIRE(a1->status() == 200);
  std::string p1 = a1->body()["permit"];
  REQUIRE(a1->body()["expires_in_ms"] == 60000);
  REQUIRE(a1->body()["statuses"][0]["max_in_flight"] == 2);
  REQUIRE(f.post("/v1/concurrency/acquire", body)->status() == 200);
  REQUIRE(f.metric("ratelimit_concurrency_in_flight") == 2);
  auto full = f.post("/v1/concurrency/acquire", body);
  require_error(full, 429, "too_many_in_flight");
  REQUIRE(full->header("Retry-After") == "1");
  // Another tenant has its own semaphore.
  REQUIRE(f.post("/v1/concurrency/acquire",
                 {{"domain", "api"}, {"descriptors", {descriptor("tenant", "other")}}})
              ->status() == 200);

  auto rel = f.post("/v1/concurrency/release", {{"permit", p1}});
  REQUIRE(rel->status() == 200);
  REQUIRE(rel->body()["permits"] == 1);
  require_error(f.post("/v1/concurrency/release", {{"permit", p1}}), 404, "unknown_permit");
  require_error(f.post("/v1/concurrency/release", {{"permit", 5}}), 400, "invalid_permit");
  require_error(f.post("/v1/concurrency/release", json::object()), 400, "invalid_permit");
  REQUIRE(f.post("/v1/concurrency/acquire", body)->status() == 200);
  REQUIRE(f.service->permits_held() == 3);
  REQUIRE(f.metric("ratelimit_decisions_total{domain=\"api\",rule=\"api/tenant\","
                   "result=\"limited\"}") == 1);

  // Nothing to hold: no permit id.
  auto none = f.post("/v1/concurrency/acquire",
                     {{"domain", "api"}, {"descriptors", {descriptor("remote_address", "x")}}});
  REQUIRE(none->status() == 200);
  REQUIRE(none->body()["permit"].is_null());
  require_error(f.post("/v1/concurrency/acquire",
                       {{"domain", "zzz"}, {"descriptors", {descriptor("a", "b")}}}),
                400, "unknown_domain");
}

TEST_CASE("service concurrency: all or nothing across descriptors", "[unit]") {
  Fixture f;
  json b_only = {{"domain", "api"}, {"descriptors", {descriptor("tenant", "b")}}};
  REQUIRE(f.post("/v1/concurrency/acquire", b_only)->status() == 200);
  REQUIRE(f.post("/v1/concurrency/acquire", b_only)->status() == 200);
  json both = {{"domain", "api"},
               {"descriptors", {descriptor("tenant", "a"), descriptor("tenant", "b")}}};
  require_error(f.post("/v1/concurrency/acquire", both), 429, "too_many_in_flight");
  // tenant=a's permit taken by the failed request was given back: both slots are free.
  json a_only = {{"domain", "api"}, {"descriptors", {descriptor("tenant", "a")}}};
  REQUIRE(f.post("/v1/concurrency/acquire", a_only)->status() == 200);
  REQUIRE(f.post("/v1/concurrency/acquire", a_only)->status() == 200);
  require_error(f.post("/v1/concurrency/acquire", a_only), 429, "too_many_in_flight");
}

TEST_CASE("service concurrency: shadow rules admit when full", "[unit]") {
  Fixture f;
  json body = {{"domain", "api"}, {"descriptors", {descriptor("shadow_tenant", "s")}}};
  REQUIRE(f.post("/v1/concurrency/acquire", body)->body()["permit"].is_string());
  auto r = f.post("/v1/concurrency/acquire", body);
  REQUIRE(r->status() == 200);
  REQUIRE(r->body()["permit"].is_null());
  REQUIRE(r->body()["statuses"][0]["shadow_limited"] == true);
}

TEST_CASE("service concurrency: unreleased permits expire after permit_ttl", "[unit]") {
  rl::ServiceOptions o;
  o.permit_ttl = 5000ms;
  Fixture f(kRules, o);
  f.service->start();  // maintenance every second through the scheduler
  json body = {{"domain", "api"}, {"descriptors", {descriptor("tenant", "acme")}}};
  std::string p = f.post("/v1/concurrency/acquire", body)->body()["permit"];
  REQUIRE(f.post("/v1/concurrency/acquire", body)->status() == 200);
  require_error(f.post("/v1/concurrency/acquire", body), 429, "too_many_in_flight");
  f.timers.advance(4999ms);
  REQUIRE(f.service->permits_held() == 2);
  f.timers.advance(1001ms);  // maintenance at 5 s reaps both
  REQUIRE(f.service->permits_held() == 0);
  REQUIRE(f.metric("ratelimit_concurrency_in_flight") == 0);
  require_error(f.post("/v1/concurrency/release", {{"permit", p}}), 404, "unknown_permit");
  REQUIRE(f.post("/v1/concurrency/acquire", body)->status() == 200);
}

TEST_CASE("service rules: listing and reload through the API keep old rules on error", "[unit]") {
  sd::testing::TempDir dir("rl-service");
  const std::string path = dir.file("rules.yaml");
  auto write = [&](const std::string& text) { std::ofstream(path) << text; };
  write(kRules);
  auto initial = rl::RuleSet::load(path);
  REQUIRE(initial.is_ok());
  Fixture f(kRules);
  f.source.set(*initial);  // version 2: loaded from the file
  rl::RulesWatcher watcher(path, f.source, 1000ms,
                           [&](const sd::Status& st) { f.service->record_reload(st); });
  f.service->set_reloader([&] { return watcher.reload(); });

  auto rules = f.call(Method::kGet, "/v1/rules")->body();
  REQUIRE(rules["version"] == 2);
  REQUIRE(rules["domains"] == json{"api"});
  REQUIRE(rules["files"].size() == 1);
  json first = rules["rules"][0];
  REQUIRE(first["id"] == "api/remote_address");
  REQUIRE(first["domain"] == "api");
  REQUIRE(first["file"].get<std::string>().ends_with("rules.yaml"));
  REQUIRE(first["line"] == 3);
  REQUIRE(first["shadow"] == false);
  REQUIRE(first["rate_limit"]["requests_per_unit"] == 3);
  REQUIRE(first["rate_limit"]["algorithm"] == "fixed_window");
  REQUIRE(first["rate_limit"]["policy"] == "api.remote_address");

  write("domain: api\ndescriptors:\n  - key: remote_address\n    rate_limit: {unit: sec}\n");
  auto bad = f.call(Method::kPost, "/v1/rules/reload");
  require_error(bad, 400, "invalid_rules");
  REQUIRE(bad->body()["message"].get<std::string>().find("rules.yaml:4") != std::string::npos);
  REQUIRE(f.call(Method::kGet, "/v1/rules")->body()["version"] == 2);
  for (int i = 0; i < 3; ++i) REQUIRE(f.check("remote_address", "x")->status() == 200);
  REQUIRE(f.check("remote_address", "x")->status() == 429);  // still 3 per second

  write(
      "domain: api\ndescriptors:\n  - key: remote_address\n"
      "    rate_limit: {unit: second, requests_per_unit: 5, algorithm: fixed_window}\n");
  auto ok = f.call(Method::kPost, "/v1/rules/reload");
  REQUIRE(ok->status() == 200);
  REQUIRE(ok->body()["version"] == 3);
  // A changed limit starts fresh state: 5 more this second.
  for (int i = 0; i < 5; ++i) REQUIRE(f.check("remote_address", "x")->status() == 200);
  REQUIRE(f.check("remote_address", "x")->status() == 429);
  REQUIRE(f.metric("ratelimit_rules_reloads_total{result=\"ok\"}") == 1);
  REQUIRE(f.metric("ratelimit_rules_reloads_total{result=\"error\"}") == 1);
  REQUIRE(f.metric("ratelimit_rules_version") == 3);
  REQUIRE(f.call(Method::kGet, "/v1/rules")->body()["rules"].size() == 1);
}

TEST_CASE("service rules: reload without a reloader is 501", "[unit]") {
  Fixture f;
  require_error(f.call(Method::kPost, "/v1/rules/reload"), 501, "reload_unsupported");
  require_error(f.call(Method::kGet, "/v1/check"), 405, "method_not_allowed");
}
