#pragma once
// Shared by the RateLimitService unit tests: the Router is driven directly (no sockets) with a
// capturing Responder sink, a FakeClock, a memory:// store on that clock and a manual timer queue,
// so decisions, delays and permit expiry are deterministic.

#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sd/base/clock.hpp"
#include "sd/base/ids.hpp"
#include "sd/dlock/backend.hpp"
#include "sd/metrics/metrics.hpp"
#include "sd/net/router.hpp"
#include "sd/ratelimit/concurrency.hpp"
#include "sd/ratelimit/rules.hpp"
#include "sd/ratelimit/rules_watch.hpp"
#include "sd/ratelimit/service.hpp"
#include "sd/ratelimit/store.hpp"
#include "sd/testing/captured_reply.hpp"
#include "sd/testing/manual_timers.hpp"

namespace service_test {

using nlohmann::json;
using sd::net::Method;
using namespace std::chrono_literals;
namespace rl = sd::ratelimit;

using Reply = sd::testing::CapturedReply;
using sd::testing::CaptureSink;

using sd::testing::ManualTimers;

// Fault injection: a store whose every call fails like an unreachable Redis.
class FailingStore final : public rl::Store {
 public:
  sd::Result<std::vector<rl::Decision>> decide(std::span<const rl::StoreItem>) override {
    ++calls;
    return sd::unavailable("redis://127.0.0.1:1: connection refused");
  }
  std::string describe() const override { return "failing://"; }
  int calls = 0;
};

inline std::shared_ptr<const rl::RuleSet> parse_rules(const std::string& yaml) {
  auto rules = rl::RuleSet::parse(yaml, "test.yaml");
  INFO((rules ? std::string() : rules.status().to_string()));
  REQUIRE(rules.is_ok());
  return *rules;
}

// The rules most tests use (FakeClock starts at a whole hour, so windows start with the test).
inline const char* kRules = R"(domain: api
descriptors:
  - key: remote_address
    rate_limit: {unit: second, requests_per_unit: 3, algorithm: fixed_window}
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 2, algorithm: token_bucket, name: per-user}
  - key: path
    value: /login
    rate_limit: {unit: hour, requests_per_unit: 1, algorithm: fixed_window}
    shadow_mode: true
  - key: internal
    rate_limit: {unlimited: true}
  - key: queue
    rate_limit: {unit: second, requests_per_unit: 10, algorithm: leaky_queue, burst: 2}
  - key: tenant
    concurrency: {max_in_flight: 2}
  - key: shadow_tenant
    concurrency: {max_in_flight: 1}
    shadow_mode: true
)";

struct Fixture {
  sd::FakeClock clock;
  ManualTimers timers{clock};
  sd::metrics::Registry metrics;
  sd::SeededIdGenerator ids{7};
  std::unique_ptr<rl::Store> memory_store;
  std::shared_ptr<sd::dlock::Backend> backend;
  std::unique_ptr<rl::ConcurrencyLimiter> concurrency;
  rl::RulesSource source;
  std::unique_ptr<rl::RateLimitService> service;
  sd::net::Router router;

  explicit Fixture(const std::string& yaml = kRules, rl::ServiceOptions options = {},
                   rl::Store* store = nullptr)
      : source(parse_rules(yaml)) {
    auto s = rl::open_store("memory://", {.clock = &clock});
    REQUIRE(s.is_ok());
    memory_store = std::move(*s);
    auto b = sd::dlock::open_backend("memory://");
    REQUIRE(b.is_ok());
    backend = *b;
    concurrency = std::make_unique<rl::ConcurrencyLimiter>(backend);
    service = std::make_unique<rl::RateLimitService>(
        source, store ? *store : *memory_store, concurrency.get(), clock, metrics,
        [this](std::chrono::milliseconds d, std::function<void()> fn) {
          return timers.schedule(d, std::move(fn));
        },
        ids, options);
    service->register_routes(router);
  }
  ~Fixture() { service->shutdown(); }

  std::shared_ptr<Reply> call(Method m, const std::string& target, const std::string& body = "",
                              sd::net::Headers headers = {}) {
    auto reply = std::make_shared<Reply>();
    sd::net::Request req;
    req.method = m;
    req.target = target;
    req.body = body;
    req.headers = std::move(headers);
    router.dispatch(req, sd::net::Responder(std::make_shared<CaptureSink>(reply)));
    return reply;
  }
  std::shared_ptr<Reply> post(const std::string& target, const json& body) {
    return call(Method::kPost, target, body.dump());
  }
  // POST /v1/check for one descriptor {key: value} in domain api.
  std::shared_ptr<Reply> check(const std::string& key, const std::string& value, int cost = 1) {
    return post("/v1/check", {{"domain", "api"},
                              {"descriptors", {{{"entries", {{{"key", key}, {"value", value}}}}}}},
                              {"cost", cost}});
  }
  // The value of one series in the Prometheus text, or -1 if absent.
  double metric(const std::string& series) const {
    std::string text = metrics.render();
    size_t pos = 0;
    while ((pos = text.find(series + " ", pos)) != std::string::npos) {
      if (pos == 0 || text[pos - 1] == '\n') {
        size_t end = text.find('\n', pos);
        return std::stod(text.substr(pos + series.size() + 1, end - pos - series.size() - 1));
      }
      pos += series.size();
    }
    return -1;
  }
};

inline json descriptor(const std::string& key, const std::string& value) {
  return {{"entries", {{{"key", key}, {"value", value}}}}};
}

inline void require_error(const std::shared_ptr<Reply>& r, int status, const std::string& code) {
  REQUIRE(r->ready());
  INFO(r->response.body);
  REQUIRE(r->status() == status);
  json b = r->body();
  REQUIRE(b["error"] == code);
  REQUIRE(b["message"].is_string());
}

}  // namespace service_test
