// RateLimitService request validation (every limit explicit, 4xx with a code) and the nginx
// auth_request endpoint /v1/auth/{domain}, including the leaky-queue hold.

#include "service_test_support.hpp"

using namespace service_test;  // NOLINT(google-build-using-namespace)

namespace {

json entries_of(size_t n) {
  json e = json::array();
  for (size_t i = 0; i < n; ++i) e.push_back({{"key", "k" + std::to_string(i)}, {"value", "v"}});
  return e;
}

}  // namespace

TEST_CASE("service request: malformed and out-of-limit bodies are 400 with a code", "[unit]") {
  Fixture f;
  auto raw = [&](const std::string& body) { return f.call(Method::kPost, "/v1/check", body); };
  require_error(raw("{not json"), 400, "invalid_json");
  require_error(raw(""), 400, "invalid_json");
  require_error(raw("[1,2]"), 400, "invalid_json");

  json ok = {{"domain", "api"}, {"descriptors", {descriptor("remote_address", "1.2.3.4")}}};
  auto with = [&](const std::string& field, json v) {
    json b = ok;
    b[field] = std::move(v);
    return f.post("/v1/check", b);
  };
  REQUIRE(f.post("/v1/check", ok)->status() == 200);
  require_error(with("domain", 5), 400, "invalid_domain");
  require_error(with("domain", ""), 400, "invalid_domain");
  require_error(with("domain", std::string(257, 'd')), 400, "invalid_domain");
  require_error(with("domain", "apj"), 400, "unknown_domain");
  json b = ok;
  b.erase("domain");
  require_error(f.post("/v1/check", b), 400, "invalid_domain");
  b = ok;
  b.erase("descriptors");
  require_error(f.post("/v1/check", b), 400, "invalid_descriptors");

  require_error(with("descriptors", "x"), 400, "invalid_descriptors");
  require_error(with("descriptors", json::array()), 400, "invalid_descriptors");
  require_error(with("descriptors", {5}), 400, "invalid_descriptors");
  require_error(with("descriptors", {{{"entries", json::array()}}}), 400, "invalid_descriptors");
  require_error(with("descriptors", {{{"entries", {{{"key", "a"}}}}}}), 400, "invalid_entry");
  require_error(with("descriptors", {{{"entries", {{{"key", 1}, {"value", "v"}}}}}}), 400,
                "invalid_entry");
  require_error(with("descriptors", {{{"entries", {{{"key", ""}, {"value", "v"}}}}}}), 400,
                "invalid_entry");

  // Explicit counts: 16 descriptors and 8 entries pass, one more does not.
  json sixteen = json::array();
  for (int i = 0; i < 16; ++i) sixteen.push_back(descriptor("remote_address", std::to_string(i)));
  REQUIRE(with("descriptors", sixteen)->status() == 200);
  sixteen.push_back(descriptor("remote_address", "16"));
  require_error(with("descriptors", sixteen), 400, "too_many_descriptors");
  REQUIRE(with("descriptors", {{{"entries", entries_of(8)}}})->status() == 200);
  require_error(with("descriptors", {{{"entries", entries_of(9)}}}), 400, "too_many_entries");

  // Keys and values up to 256 bytes.
  REQUIRE(with("descriptors", {descriptor("remote_address", std::string(256, 'v'))})->status() ==
          200);
  require_error(with("descriptors", {descriptor("remote_address", std::string(257, 'v'))}), 400,
                "entry_too_long");
  require_error(with("descriptors", {descriptor(std::string(257, 'k'), "v")}), 400,
                "entry_too_long");

  // Cost: an integer in 0..1e6.
  REQUIRE(with("cost", 0)->status() == 200);
  require_error(with("cost", -1), 400, "invalid_cost");
  require_error(with("cost", 1'000'001), 400, "invalid_cost");
  require_error(with("cost", 1.5), 400, "invalid_cost");
  require_error(with("cost", "1"), 400, "invalid_cost");
}

TEST_CASE("service request: the body limit is explicit", "[unit]") {
  rl::ServiceOptions o;
  o.max_body_bytes = 200;
  Fixture f(kRules, o);
  json ok = {{"domain", "api"}, {"descriptors", {descriptor("remote_address", "x")}}};
  std::string body = ok.dump();
  body.append(200 - body.size(), ' ');  // exactly at the limit
  REQUIRE(f.call(Method::kPost, "/v1/check", body)->status() == 200);
  require_error(f.call(Method::kPost, "/v1/check", body + " "), 413, "body_too_large");
  require_error(f.call(Method::kPost, "/v1/concurrency/acquire", body + " "), 413,
                "body_too_large");
}

TEST_CASE("service auth: maps request headers to a descriptor and answers 204 or 429", "[unit]") {
  Fixture f;
  const std::string target = "/v1/auth/api?entries=remote_address:X-Real-IP";
  sd::net::Headers h = {{"X-Real-IP", "10.1.1.1"}};
  for (int i = 0; i < 3; ++i) {
    auto r = f.call(i % 2 ? Method::kPost : Method::kGet, target, "", h);
    REQUIRE(r->status() == 204);
    REQUIRE(r->response.body.empty());
    REQUIRE(r->header("RateLimit-Policy") == "\"api.remote_address\";q=3;w=1");
    REQUIRE(r->header("RateLimit") == "\"api.remote_address\";r=" + std::to_string(2 - i) + ";t=1");
  }
  auto r = f.call(Method::kGet, target, "", h);
  REQUIRE(r->status() == 429);
  REQUIRE(r->header("Retry-After") == "1");
  REQUIRE(r->header("RateLimit") == "\"api.remote_address\";r=0;t=1");
  REQUIRE(r->body()["overall_code"] == "OVER_LIMIT");
  // For nginx, which logs every status but 2xx/401/403 from auth_request as an error.
  r = f.call(Method::kGet, target + "&deny_status=403", "", h);
  REQUIRE(r->status() == 403);
  REQUIRE(r->header("Retry-After") == "1");
  REQUIRE(r->body()["overall_code"] == "OVER_LIMIT");
  require_error(f.call(Method::kGet, target + "&deny_status=500", "", h), 400,
                "invalid_deny_status");
  // Header names are case-insensitive; another address has its own quota.
  REQUIRE(f.call(Method::kGet, target, "", {{"x-real-ip", "10.1.1.2"}})->status() == 204);

  // cost comes from the query.
  r = f.call(Method::kGet, "/v1/auth/api?entries=remote_address:X-Real-IP&cost=3", "",
             {{"X-Real-IP", "10.1.1.3"}});
  REQUIRE(r->status() == 204);
  REQUIRE(r->header("RateLimit") == "\"api.remote_address\";r=0;t=1");
}

TEST_CASE("service auth: missing headers and bad queries are 400 naming the problem", "[unit]") {
  Fixture f;
  auto r = f.call(Method::kGet, "/v1/auth/api?entries=remote_address:X-Real-IP,user:X-User", "",
                  {{"X-Real-IP", "10.1.1.1"}});
  require_error(r, 400, "missing_header");
  REQUIRE(r->body()["message"].get<std::string>().find("X-User") != std::string::npos);
  require_error(f.call(Method::kGet, "/v1/auth/api"), 400, "invalid_entries");
  require_error(f.call(Method::kGet, "/v1/auth/api?entries=remote_address"), 400,
                "invalid_entries");
  require_error(f.call(Method::kGet, "/v1/auth/api?entries=a:B,", "", {{"B", "x"}}), 400,
                "invalid_entries");
  require_error(f.call(Method::kGet, "/v1/auth/api?entries=:B", "", {{"B", "x"}}), 400,
                "invalid_entries");
  std::string nine = "k0:H";
  for (int i = 1; i < 9; ++i) nine += ",k" + std::to_string(i) + ":H";
  require_error(f.call(Method::kGet, "/v1/auth/api?entries=" + nine, "", {{"H", "x"}}), 400,
                "too_many_entries");
  require_error(f.call(Method::kGet, "/v1/auth/nope?entries=a:H", "", {{"H", "x"}}), 400,
                "unknown_domain");
  require_error(f.call(Method::kGet, "/v1/auth/api?entries=a:H&cost=-1", "", {{"H", "x"}}), 400,
                "invalid_cost");
  require_error(f.call(Method::kGet, "/v1/auth/api?entries=a:H&cost=2x", "", {{"H", "x"}}), 400,
                "invalid_cost");
  require_error(
      f.call(Method::kGet, "/v1/auth/api?entries=a:H", "", {{"H", std::string(257, 'x')}}), 400,
      "entry_too_long");
}

TEST_CASE("service auth: a leaky-queue delay holds the answer through the scheduler", "[unit]") {
  Fixture f;  // queue: 10/s, burst 2 -> waits of 0, 100, 200 ms, then 429
  const std::string target = "/v1/auth/api?entries=queue:X-Q";
  sd::net::Headers h = {{"X-Q", "q"}};
  auto first = f.call(Method::kGet, target, "", h);
  REQUIRE(first->ready());
  REQUIRE(first->status() == 204);
  auto second = f.call(Method::kGet, target, "", h);
  auto third = f.call(Method::kGet, target, "", h);
  auto fourth = f.call(Method::kGet, target, "", h);
  REQUIRE(fourth->ready());  // denied at once, never held
  REQUIRE(fourth->status() == 429);
  REQUIRE_FALSE(second->ready());
  REQUIRE_FALSE(third->ready());
  REQUIRE(f.service->delayed_replies() == 2);
  REQUIRE(f.timers.delays() == std::vector<std::chrono::milliseconds>{100ms, 200ms});

  f.timers.advance(99ms);
  REQUIRE_FALSE(second->ready());
  f.timers.advance(1ms);
  REQUIRE(second->ready());
  REQUIRE(second->status() == 204);
  REQUIRE_FALSE(third->ready());
  f.timers.advance(100ms);
  REQUIRE(third->status() == 204);
  f.service->maintain();
  REQUIRE(f.service->delayed_replies() == 0);
}

TEST_CASE("service auth: shutdown sends held answers at once", "[unit]") {
  Fixture f;
  sd::net::Headers h = {{"X-Q", "q"}};
  REQUIRE(f.call(Method::kGet, "/v1/auth/api?entries=queue:X-Q", "", h)->status() == 204);
  auto held = f.call(Method::kGet, "/v1/auth/api?entries=queue:X-Q", "", h);
  REQUIRE_FALSE(held->ready());
  f.service->shutdown();
  REQUIRE(held->status() == 204);
  REQUIRE(f.timers.live() == 0);
}
