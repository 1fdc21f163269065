// What is specific to the redis:// and redlock:// backends, against real redis-server processes:
// pub/sub wake-up and its fallback poll, shared locks/semaphores in Lua, unreachable servers and
// reconnects, and Redlock with instances killed (quorum kept, quorum lost, extension failing).
// The engine-agnostic behaviour (exclusion, tokens, TTLs, ...) is in dlock_conformance_test.cpp.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sd/dlock/backend.hpp"
#include "sd/dlock/client.hpp"
#include "sd/testing/servers.hpp"
#include "sd/testing/testing.hpp"

using namespace std::chrono_literals;
using namespace sd;
using namespace sd::dlock;
using sd::testing::RedisServer;
using sd::testing::TempDir;
using Steady = std::chrono::steady_clock;

namespace {

std::vector<std::unique_ptr<RedisServer>> start_redis(const TempDir& dir, size_t n) {
  std::vector<std::unique_ptr<RedisServer>> out;
  for (size_t i = 0; i < n; ++i) {
    auto r = RedisServer::start(dir.file("redis" + std::to_string(i)));
    REQUIRE(r.is_ok());
    out.push_back(std::move(*r));
  }
  return out;
}

std::shared_ptr<Backend> open(const std::string& uri, BackendOptions options = {}) {
  auto b = open_backend(uri, options);
  REQUIRE(b.is_ok());
  return *b;
}

std::string redlock_uri(const std::vector<std::unique_ptr<RedisServer>>& servers) {
  std::string u = "redlock://";
  for (size_t i = 0; i < servers.size(); ++i) u += (i ? "," : "") + servers[i]->address();
  return u;
}

LeaseId lease(Backend& b, Duration ttl = Duration{10'000}) {
  auto g = b.grant_lease(ttl);
  REQUIRE(g.is_ok());
  return g->id;
}

AcquireRequest req(const std::string& name, const LeaseId& l, Duration wait = Duration{0}) {
  AcquireRequest r;
  r.name = name;
  r.lease_id = l;
  r.wait = wait;
  return r;
}

double ms(Steady::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// A TCP port that accepts connections (kernel backlog) but never answers: a hung server.
struct Blackhole {
  int fd = -1;
  uint16_t port = 0;
  Blackhole() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), len) == 0);
    REQUIRE(::listen(fd, 64) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
  }
  ~Blackhole() { ::close(fd); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

}  // namespace

TEST_CASE("redis backend: a waiter is woken by pub/sub well before the fallback poll",
          "[integration]") {
  TempDir dir("sd-dlock-redis");
  auto servers = start_redis(dir, 1);
  // A 5 s fallback poll: a grant within a second can only have come from the release message,
  // however loaded the machine is.
  BackendOptions o;
  o.fallback_poll = Duration{5'000};
  auto b = open("redis://" + servers[0]->address(), o);
  const LeaseId a = lease(*b);
  const LeaseId w = lease(*b);
  std::vector<double> latencies;
  for (int round = 0; round < 5; ++round) {
    auto held = b->acquire(req("pubsub", a));
    REQUIRE(held.is_ok());
    auto waiter = std::async(std::launch::async, [&] {
      auto g = b->acquire(req("pubsub", w, Duration{3'000}));
      return std::make_pair(std::move(g), Steady::now());
    });
    std::this_thread::sleep_for(150ms);  // subscribed, tried, now sleeping on the channel
    const auto released = Steady::now();
    REQUIRE(b->release(Kind::kLock, "pubsub", a, held->token).is_ok());
    auto [g, granted_at] = waiter.get();
    REQUIRE(g.is_ok());
    CHECK(g->token > held->token);
    latencies.push_back(ms(granted_at - released));
    REQUIRE(b->release(Kind::kLock, "pubsub", w, g->token).is_ok());
  }
  double sum = 0;
  for (double l : latencies) {
    UNSCOPED_INFO("wake-up latency " << l << " ms");
    CHECK(l < 1'000);
    sum += l;
  }
  UNSCOPED_INFO("mean wake-up latency " << sum / latencies.size() << " ms");
}

TEST_CASE("redis backend: the fallback poll grants when the holder's lease just expires",
          "[integration]") {
  TempDir dir("sd-dlock-redis");
  auto servers = start_redis(dir, 1);
  auto b = open("redis://" + servers[0]->address());
  const LeaseId dying = lease(*b, Duration{300});  // never kept alive: expires, publishes nothing
  const LeaseId w = lease(*b);
  const auto start = Steady::now();
  auto held = b->acquire(req("expiry", dying));
  REQUIRE(held.is_ok());
  auto g = b->acquire(req("expiry", w, Duration{3'000}));
  const double waited = ms(Steady::now() - start);
  REQUIRE(g.is_ok());
  CHECK(g->token > held->token);
  CHECK(waited >= 250);
  CHECK(waited < 300 + 100 + 150);  // TTL + one poll interval + slack
  CHECK(b->keepalive(dying).code() == Code::kNotFound);
}

TEST_CASE("redis backend: leases and holds are shared by separate clients", "[integration]") {
  TempDir dir("sd-dlock-redis");
  auto servers = start_redis(dir, 1);
  const std::string uri = "redis://" + servers[0]->address();
  auto b1 = open(uri);
  auto b2 = open(uri);  // its own connections, like another process
  const LeaseId l = lease(*b1);
  auto g = b1->acquire(req("shared-state", l));
  REQUIRE(g.is_ok());
  auto again = b2->acquire(req("shared-state", l));  // idempotent for the same lease
  REQUIRE(again.is_ok());
  CHECK(again->token == g->token);
  auto info = b2->describe(Kind::kLock, "shared-state");
  REQUIRE(info.is_ok());
  REQUIRE(info->holders.size() == 1);
  CHECK(info->holders[0].lease_id == l);
  CHECK(info->holders[0].token == g->token);
  CHECK(info->holders[0].ttl_ms_left > 9'000);
  CHECK(info->last_token == g->token);
  CHECK(b2->release(Kind::kLock, "shared-state", l, g->token + 1).code() == Code::kConflict);
  CHECK(b2->keepalive(l).is_ok());
  CHECK(b2->revoke(l).is_ok());  // releases the hold too
  CHECK(b1->keepalive(l).code() == Code::kNotFound);
  auto after = b1->describe(Kind::kLock, "shared-state");
  REQUIRE(after.is_ok());
  CHECK(after->holders.empty());
  CHECK(after->last_token == g->token);
  auto listed = b1->list(Kind::kLock, "shared-");
  REQUIRE(listed.is_ok());
  REQUIRE(listed->size() == 1);
  CHECK((*listed)[0].name == "shared-state");
}

TEST_CASE("redis backend: shared locks and semaphores in Lua", "[integration]") {
  TempDir dir("sd-dlock-redis");
  auto servers = start_redis(dir, 1);
  auto b = open("redis://" + servers[0]->address());
  const LeaseId r1 = lease(*b), r2 = lease(*b), wr = lease(*b);
  auto shared = [&](const LeaseId& l, Mode m) {
    auto r = req("rw", l);
    r.mode = m;
    return b->acquire(r);
  };
  auto s1 = shared(r1, Mode::kShared);
  auto s2 = shared(r2, Mode::kShared);
  REQUIRE(s1.is_ok());
  REQUIRE(s2.is_ok());
  CHECK(s2->token > s1->token);
  CHECK(shared(wr, Mode::kExclusive).status().message() == "locked");
  CHECK(shared(r1, Mode::kExclusive).status().message() == "mode_mismatch");
  REQUIRE(b->release(Kind::kLock, "rw", r1, s1->token).is_ok());
  REQUIRE(b->revoke(r2).is_ok());
  auto x = shared(wr, Mode::kExclusive);
  REQUIRE(x.is_ok());
  CHECK(shared(r1, Mode::kShared).status().message() == "locked");

  auto sem = [&](const LeaseId& l, uint32_t limit, uint32_t permits) {
    auto r = req("pool", l);
    r.kind = Kind::kSemaphore;
    r.limit = limit;
    r.permits = permits;
    return b->acquire(r);
  };
  auto p1 = sem(r1, 3, 2);
  REQUIRE(p1.is_ok());
  CHECK(sem(wr, 3, 2).status().message() == "locked");
  CHECK(sem(wr, 4, 1).status().message() == "limit_mismatch");
  auto p2 = sem(wr, 3, 1);
  REQUIRE(p2.is_ok());
  auto info = b->describe(Kind::kSemaphore, "pool");
  REQUIRE(info.is_ok());
  CHECK(info->limit == 3);
  CHECK(info->holders.size() == 2);
  REQUIRE(b->release(Kind::kSemaphore, "pool", r1, p1->token).is_ok());
  CHECK(sem(lease(*b), 3, 2).is_ok());  // 1 + 2 of 3 permits
}

TEST_CASE("redis backend: unreachable server is kUnavailable and the next call reconnects",
          "[integration]") {
  TempDir dir("sd-dlock-redis");
  auto servers = start_redis(dir, 1);
  RedisServer& redis = *servers[0];
  BackendOptions o;
  o.request_timeout = Duration{500};
  auto b = open_backend("redis://" + redis.address(), o);
  REQUIRE(b.is_ok());
  const LeaseId l = lease(**b);  // pooled connections exist now
  REQUIRE(redis.kill().is_ok());
  const auto start = Steady::now();
  auto s = (*b)->keepalive(l);
  CHECK(s.code() == Code::kUnavailable);
  CHECK_THAT(s.message(), Catch::Contains(redis.address()));
  auto g = (*b)->grant_lease(Duration{1000});
  REQUIRE_FALSE(g.is_ok());
  CHECK(g.status().code() == Code::kUnavailable);
  CHECK_THAT(g.status().message(), Catch::Contains(redis.address()));
  CHECK(Steady::now() - start < 2s);
  auto w = (*b)->acquire(req("down", l, Duration{200}));
  CHECK(w.status().code() == Code::kUnavailable);

  REQUIRE(redis.restart().is_ok());  // no persistence: the lease is gone, the server is back
  CHECK((*b)->keepalive(l).code() == Code::kNotFound);
  CHECK((*b)->grant_lease(Duration{1000}).is_ok());

  // A server that accepts but never answers: the request timeout bounds the call.
  Blackhole hole;
  o.request_timeout = Duration{100};
  auto h = open_backend("redis://" + hole.address(), o);
  REQUIRE(h.is_ok());
  const auto t0 = Steady::now();
  auto hg = (*h)->grant_lease(Duration{1000});
  CHECK(hg.status().code() == Code::kUnavailable);
  CHECK(Steady::now() - t0 < 1s);
}

TEST_CASE("redlock backend: keeps working with 2 of 5 instances killed", "[integration]") {
  TempDir dir("sd-dlock-redlock");
  auto servers = start_redis(dir, 5);
  auto b = open(redlock_uri(servers));
  const LeaseId a = lease(*b);
  auto g1 = b->acquire(req("job", a));
  REQUIRE(g1.is_ok());
  REQUIRE(servers[0]->kill().is_ok());
  REQUIRE(servers[3]->kill().is_ok());
  CHECK(b->keepalive(a).is_ok());
  const LeaseId c = lease(*b);
  CHECK(b->acquire(req("job", c)).status().message() == "locked");
  REQUIRE(b->release(Kind::kLock, "job", a, g1->token).is_ok());
  auto g2 = b->acquire(req("job", c));
  REQUIRE(g2.is_ok());
  CHECK(g2->token > g1->token);
  auto info = b->describe(Kind::kLock, "job");
  REQUIRE(info.is_ok());
  REQUIRE(info->holders.size() == 1);
  CHECK(info->holders[0].lease_id == c);

  // Waiting works across the retry delays: the holder lets go after a while.
  std::thread releaser([&] {
    std::this_thread::sleep_for(100ms);
    (void)b->release(Kind::kLock, "job", c, g2->token);
  });
  auto g3 = b->acquire(req("job", a, Duration{2'000}));
  releaser.join();
  REQUIRE(g3.is_ok());
  CHECK(g3->token > g2->token);
}

TEST_CASE("redlock backend: fails cleanly with 3 of 5 instances killed", "[integration]") {
  TempDir dir("sd-dlock-redlock");
  auto servers = start_redis(dir, 5);
  auto b = open(redlock_uri(servers));
  const LeaseId a = lease(*b);
  for (size_t i : {1, 2, 4}) REQUIRE(servers[i]->kill().is_ok());
  auto g = b->acquire(req("job", a));
  REQUIRE_FALSE(g.is_ok());
  CHECK(g.status().code() == Code::kUnavailable);
  CHECK_THAT(g.status().message(), Catch::Contains(servers[1]->address()));
  const auto start = Steady::now();
  auto gw = b->acquire(req("job", a, Duration{300}));  // retries until the wait ends, then errs
  CHECK_FALSE(gw.is_ok());
  CHECK(Steady::now() - start < 1s);
  CHECK(b->keepalive(a).code() == Code::kUnavailable);
  auto nl = b->grant_lease(Duration{1000});
  REQUIRE_FALSE(nl.is_ok());
  CHECK(nl.status().code() == Code::kUnavailable);
  // The two survivors hold no trace of the failed attempts: nothing granted there stays held.
  auto single = open("redis://" + servers[0]->address());
  auto info = single->describe(Kind::kLock, "job");
  if (info.is_ok()) CHECK(info->holders.empty());
}

TEST_CASE("redlock backend: extension without a quorum loses the lease", "[integration]") {
  TempDir dir("sd-dlock-redlock");
  auto servers = start_redis(dir, 5);
  auto b = open(redlock_uri(servers));
  auto s = Session::create(b, SessionOptions{Duration{600}, Duration{100}});
  REQUIRE(s.is_ok());
  Mutex m(*s, "job");
  REQUIRE(m.try_lock().is_ok());
  std::atomic<bool> lost{false};
  (*s)->on_lost([&](const Status&) { lost = true; });
  for (size_t i : {0, 1, 2}) REQUIRE(servers[i]->kill().is_ok());
  CHECK(sd::testing::eventually([&] { return lost.load(); }, 2s));
  CHECK_FALSE(m.held());
  // Back without persistence: the instances answer again, and say the lease is gone.
  for (size_t i : {0, 1, 2}) REQUIRE(servers[i]->restart().is_ok());
  std::this_thread::sleep_for(700ms);  // the survivors' copies expire too
  CHECK(b->keepalive((*s)->lease_id()).code() == Code::kNotFound);
  const LeaseId other = lease(*b);
  CHECK(b->acquire(req("job", other)).is_ok());
}

TEST_CASE("redlock backend: instances are asked in parallel", "[integration]") {
  TempDir dir("sd-dlock-redlock");
  auto servers = start_redis(dir, 3);
  Blackhole h1, h2;  // hung instances: each costs the per-instance timeout, not one after another
  // 300 ms per instance: two rounds (grant_lease, acquire) cost 2 x 300 ms in parallel and at
  // least 2 x 600 ms if the two hung instances were asked one after the other.
  BackendOptions o;
  o.instance_timeout = Duration{300};
  auto b = open("redlock://" + servers[0]->address() + "," + h1.address() + "," +
                    servers[1]->address() + "," + h2.address() + "," + servers[2]->address(),
                o);
  const auto start = Steady::now();
  const LeaseId a = lease(*b, Duration{10'000});
  auto g = b->acquire(req("par", a));
  const double took = ms(Steady::now() - start);
  REQUIRE(g.is_ok());
  INFO("grant_lease + acquire with 2 hung instances took " << took << " ms");
  CHECK(took >= 2 * 300 - 20);  // each round did wait for the hung instances
  CHECK(took < 2 * 600);        // ...but not one after the other
}

TEST_CASE("redlock backend: semaphores are unsupported and say so", "[integration]") {
  TempDir dir("sd-dlock-redlock");
  auto servers = start_redis(dir, 3);
  auto b = open(redlock_uri(servers));
  const LeaseId a = lease(*b);
  auto r = req("pool", a);
  r.kind = Kind::kSemaphore;
  r.limit = 2;
  auto g = b->acquire(r);
  REQUIRE_FALSE(g.is_ok());
  CHECK(g.status().code() == Code::kUnimplemented);
  CHECK_THAT(g.status().message(), Catch::Contains("redlock://"));
  // Shared locks are supported: two readers, no writer.
  auto shared = req("rw", a);
  shared.mode = Mode::kShared;
  REQUIRE(b->acquire(shared).is_ok());
  const LeaseId c = lease(*b);
  shared.lease_id = c;
  REQUIRE(b->acquire(shared).is_ok());
  CHECK(b->acquire(req("rw", c)).status().message() == "mode_mismatch");
  const LeaseId d = lease(*b);
  CHECK(b->acquire(req("rw", d)).status().message() == "locked");
}
