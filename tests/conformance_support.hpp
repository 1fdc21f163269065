#pragma once
// The dlock conformance suite's backends: what each promises (Caps) and a fixture that starts its
// real servers once per process (function-local statics in the test cases; SIGKILLed at exit).

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dlockd_test_support.hpp"
#include "sd/dlock/backend.hpp"
#include "sd/dlock/client.hpp"
#include "sd/testing/servers.hpp"
#include "sd/testing/testing.hpp"

namespace conformance {

using namespace std::chrono_literals;
using sd::Duration;

// "ok" or the error: REQUIRE(status_text(s) == "ok") prints the error when it fails.
inline std::string status_text(const sd::Status& s) {
  return s.is_ok() ? std::string("ok") : s.to_string();
}

// What a backend promises; the suite checks exactly these (and that an unsupported feature is a
// clear kUnimplemented "not supported").
struct Caps {
  std::string label;             // "redis", ... (lock names and messages)
  bool fifo = true;              // waiters are granted in arrival order
  bool safe_fencing = true;      // tokens strictly increase across holders, whatever happens
  bool shared = true;            // SharedMutex shared mode
  bool semaphores = true;        // Semaphore
  bool describe_waiters = true;  // describe() lists queued waiters (used to order FIFO waiters)
  bool cross_process = true;     // another process (the dlock CLI) sees the same locks
  // A short lease TTL for the expiry/keepalive/lost properties (etcd leases are whole seconds
  // with a minimum, so >= 2 s there).
  Duration short_ttl{500};
};

// One backend under test: its servers (if any), its URI and one shared Backend connection (the
// in-process engines only share state through the same Backend object).
struct Fixture {
  sd::testing::TempDir dir{"sd-conf"};  // first member: removed after the servers are killed
  Caps caps;
  std::string uri;
  std::shared_ptr<sd::dlock::Backend> backend;
  std::optional<dlockd_test::Dlockd> dlockd;
  std::vector<std::unique_ptr<sd::testing::RedisServer>> redis;
  std::unique_ptr<sd::testing::EtcdCluster> etcd;

  void open() {
    auto b = sd::dlock::open_backend(uri);
    INFO("open_backend(" << uri << ")");
    REQUIRE(status_text(b.status()) == "ok");
    backend = *b;
  }
};

// Fixtures for each backend. They REQUIRE success, so a missing redis-server/etcd fails the test
// case (with the Debian package to install) instead of skipping it.
inline std::unique_ptr<Fixture> memory_fixture() {
  auto f = std::make_unique<Fixture>();
  f->caps.label = "memory";
  f->caps.cross_process = false;  // each process has its own in-memory engine
  f->uri = "memory://";
  f->open();
  return f;
}

inline std::unique_ptr<Fixture> sqlite_fixture() {
  auto f = std::make_unique<Fixture>();
  f->caps.label = "sqlite";
  f->caps.cross_process = false;  // the engine runs in the process that opened the file
  f->uri = "sqlite://" + f->dir.file("locks.db");
  f->open();
  return f;
}

inline std::unique_ptr<Fixture> dlockd_fixture() {
  auto f = std::make_unique<Fixture>();
  f->caps.label = "dlockd";
  f->dlockd.emplace(dlockd_test::Dlockd::start(f->dir, "memory://"));
  f->uri = "dlockd://127.0.0.1:" + std::to_string(f->dlockd->port);
  f->open();
  return f;
}

inline void start_redis(Fixture& f, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    auto r = sd::testing::RedisServer::start(f.dir.file("redis" + std::to_string(i)));
    INFO("starting redis-server " << i);
    REQUIRE(status_text(r.status()) == "ok");
    f.redis.push_back(std::move(*r));
  }
}

inline std::unique_ptr<Fixture> redis_fixture() {
  auto f = std::make_unique<Fixture>();
  f->caps.label = "redis";
  f->caps.fifo = false;  // waiters race on every release (pub/sub wake-up), no queue
  f->caps.describe_waiters = false;
  start_redis(*f, 1);
  f->uri = "redis://" + f->redis[0]->address();
  f->open();
  return f;
}

inline std::unique_ptr<Fixture> redlock_fixture() {
  auto f = std::make_unique<Fixture>();
  f->caps.label = "redlock";
  f->caps.fifo = false;
  f->caps.describe_waiters = false;
  f->caps.safe_fencing = false;  // tokens are a max over independent counters: best-effort
  f->caps.semaphores = false;    // a quorum cannot bound a count above 1
  start_redis(*f, 5);
  f->uri = "redlock://";
  for (size_t i = 0; i < f->redis.size(); ++i) {
    f->uri += (i ? "," : "") + f->redis[i]->address();
  }
  f->open();
  return f;
}

inline std::unique_ptr<Fixture> etcd_fixture() {
  auto f = std::make_unique<Fixture>();
  f->caps.label = "etcd";
  f->caps.short_ttl = Duration{2000};
  auto c = sd::testing::EtcdCluster::start(f->dir.file("etcd"), 3);
  INFO("starting a 3-node etcd cluster");
  REQUIRE(status_text(c.status()) == "ok");
  f->etcd = std::move(*c);
  f->uri = "etcd://" + f->etcd->endpoints();
  f->open();
  return f;
}

// A lock name unique to this run of a property (sections re-run the test case; names must not
// collide with state earlier sections left behind).
inline std::string unique_name(const Fixture& f, const std::string& what) {
  static std::atomic<int> n{0};
  return "conf/" + f.caps.label + "/" + what + "/" + std::to_string(n.fetch_add(1));
}

inline std::shared_ptr<sd::dlock::Session> new_session(const Fixture& f,
                                                       Duration ttl = Duration{10'000},
                                                       Duration keepalive_interval = Duration{0}) {
  sd::dlock::SessionOptions o;
  o.ttl = ttl;
  o.keepalive_interval = keepalive_interval;
  auto s = sd::dlock::Session::create(f.backend, o);
  INFO("Session::create on " << f.uri);
  REQUIRE(status_text(s.status()) == "ok");
  return *s;
}

inline double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// An unsupported feature must be a clear error, not a silent success or a random code.
inline void require_not_supported(const sd::Status& s) {
  INFO(status_text(s));
  CHECK(s.code() == sd::Code::kUnimplemented);
  CHECK(s.message().find("not supported") != std::string::npos);
}

}  // namespace conformance
