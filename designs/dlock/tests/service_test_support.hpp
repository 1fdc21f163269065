#pragma once
// Shared by the LockService unit tests: the Router is driven directly (no sockets) with a
// capturing Responder sink, a FakeClock and a manual timer queue, so long-poll wakeups and
// timeouts are deterministic.

#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sd/base/clock.hpp"
#include "sd/base/ids.hpp"
#include "sd/dlock/core.hpp"
#include "sd/dlock/service.hpp"
#include "sd/dlock/store.hpp"
#include "sd/metrics/metrics.hpp"
#include "sd/net/router.hpp"
#include "sd/testing/captured_reply.hpp"
#include "sd/testing/manual_timers.hpp"

namespace service_test {

using nlohmann::json;
using sd::net::Method;
using namespace std::chrono_literals;

using Reply = sd::testing::CapturedReply;
using sd::testing::CaptureSink;

using sd::testing::ManualTimers;

struct Fixture {
  sd::FakeClock clock;
  sd::SeededIdGenerator ids{42};
  std::unique_ptr<sd::dlock::Store> store = sd::dlock::make_memory_store();
  sd::dlock::LockCore core{*store, clock, ids, {}};
  sd::metrics::Registry registry;
  ManualTimers timers{clock};
  std::unique_ptr<sd::dlock::LockService> service;
  sd::net::Router router;

  Fixture() {
    REQUIRE(core.recover().is_ok());
    service = std::make_unique<sd::dlock::LockService>(
        core, clock, registry, [this](std::chrono::milliseconds d, std::function<void()> fn) {
          return timers.schedule(d, std::move(fn));
        });
    service->register_routes(router);
  }

  std::shared_ptr<Reply> send(Method m, const std::string& target, const std::string& body = "") {
    auto reply = std::make_shared<Reply>();
    sd::net::Request req;
    req.method = m;
    req.target = target;
    req.body = body;
    router.dispatch(req, sd::net::Responder(std::make_shared<CaptureSink>(reply)));
    return reply;
  }
  // A request that must be answered synchronously.
  std::shared_ptr<Reply> call(Method m, const std::string& target, const std::string& body = "") {
    auto r = send(m, target, body);
    REQUIRE(r->ready());
    return r;
  }
  std::shared_ptr<Reply> post(const std::string& target, const json& body) {
    return call(Method::kPost, target, body.dump());
  }

  std::string lease(long long ttl_ms = 10'000) {
    auto r = post("/v1/leases", {{"ttl_ms", ttl_ms}});
    REQUIRE(r->status() == 201);
    return r->body()["lease_id"].get<std::string>();
  }
  json acquire(const std::string& name, const std::string& lease_id, int expect = 200,
               const std::string& mode = "exclusive") {
    auto r = post("/v1/locks/" + name + "/acquire", {{"lease_id", lease_id}, {"mode", mode}});
    REQUIRE(r->status() == expect);
    return r->body();
  }
  json describe(const std::string& name) {
    auto r = call(Method::kGet, "/v1/locks/" + name);
    REQUIRE(r->status() == 200);
    return r->body();
  }
};

inline void require_error(const std::shared_ptr<Reply>& r, int status,
                          const std::string& code = "") {
  INFO("body: " << r->response.body);
  REQUIRE(r->status() == status);
  json b = r->body();
  REQUIRE(b.is_object());
  REQUIRE(b.contains("error"));
  REQUIRE(b["error"].is_string());
  REQUIRE(b.contains("message"));
  REQUIRE(b["message"].is_string());
  if (!code.empty()) REQUIRE(b["error"] == code);
}

}  // namespace service_test
