// etcd:// backend: the pure gateway helpers ([unit]) and etcd-specific failure behaviour against a
// real 3-member cluster ([integration]): member loss and failover, a leader kill under a held lock,
// the Jepsen etcd 3.4.3 waiter-with-an-expired-lease case, fencing tokens across holders.
// Generic lock properties (mutual exclusion, TTL, FIFO, ...) are in dlock_conformance_test.cpp.

#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <thread>

#include "../designs/dlock/src/etcd_codec.hpp"  // private helpers of the client library
#include "sd/dlock/backend.hpp"
#include "sd/dlock/client.hpp"
#include "sd/testing/servers.hpp"
#include "sd/testing/testing.hpp"

using namespace std::chrono_literals;
using sd::Code;
using sd::Duration;
using sd::dlock::Kind;
using sd::dlock::Mode;
namespace etcd = sd::dlock::etcd;

namespace {

std::string text(const sd::Status& s) {
  return s.is_ok() ? std::string("ok") : s.to_string();
}

std::unique_ptr<sd::testing::EtcdCluster> start_cluster(const sd::testing::TempDir& dir) {
  auto c = sd::testing::EtcdCluster::start(dir.file("etcd"), 3);
  INFO("starting a 3-member etcd cluster");
  REQUIRE(text(c.status()) == "ok");
  return std::move(*c);
}

std::string endpoint(const sd::testing::EtcdCluster& c, size_t i) {
  return "127.0.0.1:" + std::to_string(c.client_port(i));
}

std::shared_ptr<sd::dlock::Backend> open(const std::string& uri) {
  sd::dlock::BackendOptions o;
  o.request_timeout = Duration{2'000};
  auto b = sd::dlock::open_backend(uri, o);
  INFO("open_backend(" << uri << ")");
  REQUIRE(text(b.status()) == "ok");
  return *b;
}

std::shared_ptr<sd::dlock::Session> session(std::shared_ptr<sd::dlock::Backend> b,
                                            Duration ttl = Duration{3'000}) {
  sd::dlock::SessionOptions o;
  o.ttl = ttl;
  auto s = sd::dlock::Session::create(std::move(b), o);
  REQUIRE(text(s.status()) == "ok");
  return *s;
}

etcd::QueueEntry entry(Mode mode, uint32_t permits = 1) {
  etcd::QueueEntry e;
  e.mode = mode;
  e.permits = permits;
  return e;
}

}  // namespace

// --- pure helpers --------------------------------------------------------------------------------

TEST_CASE("etcd codec base64 round-trips binary and matches known vectors", "[unit]") {
  CHECK(etcd::base64_encode("") == "");
  CHECK(etcd::base64_encode("f") == "Zg==");
  CHECK(etcd::base64_encode("fo") == "Zm8=");
  CHECK(etcd::base64_encode("foo") == "Zm9v");
  CHECK(etcd::base64_encode("dlock/l/x/abc") == "ZGxvY2svbC94L2FiYw==");
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{255}, size_t{256}}) {
    auto back = etcd::base64_decode(etcd::base64_encode(all.substr(0, n)));
    REQUIRE(back.is_ok());
    CHECK(*back == all.substr(0, n));
  }
  CHECK_FALSE(etcd::base64_decode("Zm9v!").is_ok());
  CHECK_FALSE(etcd::base64_decode("Z").is_ok());
}

TEST_CASE("etcd codec key layout keeps names apart and prefix ranges tight", "[unit]") {
  CHECK(etcd::prefix_range_end("a/") == "a0");
  CHECK(etcd::prefix_range_end(std::string("a\xff", 2)) == "b");
  CHECK(etcd::prefix_range_end("") == std::string(1, '\0'));
  // "a" and "a/b" must not share a key prefix (a range over "a"'s keys would see "a/b"'s).
  const auto pa = etcd::name_prefix(Kind::kLock, "a");
  const auto pab = etcd::name_prefix(Kind::kLock, "a/b");
  CHECK(pab.compare(0, pa.size(), pa) != 0);
  CHECK(etcd::name_prefix(Kind::kLock, "x") != etcd::name_prefix(Kind::kSemaphore, "x"));
  for (std::string n : {"plain", "a/b/c", "100%", "%2F", "ü/€"}) {
    auto e = etcd::escape_name(n);
    CHECK(e.find('/') == std::string::npos);
    CHECK(etcd::unescape_name(e) == n);
  }
  CHECK_FALSE(etcd::unescape_name("bad%2").has_value());
}

TEST_CASE("etcd codec lease ids and int64 fields", "[unit]") {
  CHECK(etcd::lease_hex(255) == "ff");
  CHECK(etcd::parse_lease_hex("ff") == 255);
  CHECK(etcd::parse_lease_hex(etcd::lease_hex(4111120331462555653)) == 4111120331462555653);
  CHECK_FALSE(etcd::parse_lease_hex("").has_value());
  CHECK_FALSE(etcd::parse_lease_hex("FF").has_value());  // one lease, one spelling
  CHECK_FALSE(etcd::parse_lease_hex("0ff").has_value());
  CHECK_FALSE(etcd::parse_lease_hex("3f0c0000000000000000000000000000").has_value());
  auto j = nlohmann::json::parse(R"({"a":"123","b":7,"c":"x"})");
  CHECK(etcd::int_field(j, "a") == 123);
  CHECK(etcd::int_field(j, "b") == 7);
  CHECK(etcd::int_field(j, "c") == 0);
  CHECK(etcd::int_field(j, "missing") == 0);  // proto3 default, omitted by the gateway
}

TEST_CASE("etcd codec maps gateway errors to codes", "[unit]") {
  auto lease = etcd::status_from_gateway(
      404, R"({"error":"etcdserver: requested lease not found","code":5})");
  CHECK(lease.code() == Code::kNotFound);
  CHECK(lease.message().find("lease not found") != std::string::npos);
  CHECK(etcd::status_from_gateway(503, R"({"error":"etcdserver: no leader","code":14})").code() ==
        Code::kUnavailable);
  CHECK(etcd::status_from_gateway(502, "<html>").code() == Code::kUnavailable);
  CHECK(etcd::status_from_gateway(400, R"({"error":"bad","code":3})").code() ==
        Code::kInvalidArgument);
  CHECK(etcd::status_from_gateway(400, R"({"error":"x","code":11})").code() == Code::kInternal);
}

TEST_CASE("etcd codec splits the watch stream across chunk boundaries", "[unit]") {
  etcd::JsonStreamSplitter s;
  const std::string a = R"({"result":{"created":true,"s":"}{\"x"}})";
  const std::string b = R"({"result":{"events":[{"type":"DELETE"}]}})";
  const std::string all = a + "\n" + b + "\n";
  std::vector<std::string> got;
  for (char c : all) {  // worst case: one byte per chunk
    for (auto& o : s.feed(std::string_view(&c, 1))) got.push_back(o);
  }
  REQUIRE(got.size() == 2);
  CHECK(got[0] == a);
  CHECK(got[1] == b);
  CHECK(s.feed(all).size() == 2);
}

TEST_CASE("etcd codec decides holders and wait targets in create order", "[unit]") {
  using Q = std::vector<etcd::QueueEntry>;
  const auto X = Mode::kExclusive, S = Mode::kShared;
  CHECK(etcd::holder_count(Kind::kLock, Q{}, 1) == 0);
  CHECK(etcd::holder_count(Kind::kLock, Q{entry(X), entry(X)}, 1) == 1);
  // Readers share up to the first writer; nobody behind a writer barges.
  CHECK(etcd::holder_count(Kind::kLock, Q{entry(S), entry(S), entry(X), entry(S)}, 1) == 2);
  CHECK(etcd::holder_count(Kind::kLock, Q{entry(X), entry(S)}, 1) == 1);
  // Semaphore: cumulative permits within the limit; a big request blocks later small ones.
  CHECK(etcd::holder_count(Kind::kSemaphore, Q{entry(S, 1), entry(S, 1), entry(S, 1)}, 2) == 2);
  CHECK(etcd::holder_count(Kind::kSemaphore, Q{entry(S, 1), entry(S, 3), entry(S, 1)}, 3) == 1);

  const Q q{entry(S), entry(X), entry(S), entry(S), entry(X)};
  CHECK(etcd::wait_target(Kind::kLock, q, 1) == 0u);  // writer: the key just ahead
  CHECK(etcd::wait_target(Kind::kLock, q, 3) == 1u);  // reader: the last writer ahead
  CHECK(etcd::wait_target(Kind::kLock, q, 4) == 3u);
  CHECK_FALSE(etcd::wait_target(Kind::kSemaphore, q, 2).has_value());  // any deletion ahead
}

// --- a real 3-member cluster ---------------------------------------------------------------------

TEST_CASE("etcd backend keeps granting locks with one of three members down", "[integration]") {
  sd::testing::TempDir dir("sd-etcd");
  auto cluster = start_cluster(dir);
  // The URI's first endpoint is the member that dies: calls must fail over past it.
  const std::string uri =
      "etcd://" + endpoint(*cluster, 0) + "," + endpoint(*cluster, 1) + "," + endpoint(*cluster, 2);
  auto backend = open(uri);
  CHECK(backend->uri() == uri);
  auto s1 = session(backend);
  sd::dlock::Token last = 0;
  auto cycle = [&](const std::string& name) {
    auto s2 = session(backend);
    sd::dlock::Mutex m1(s1, name), m2(s2, name);
    auto t = m1.lock(Duration{5'000});
    REQUIRE(text(t.status()) == "ok");
    CHECK(*t > last);  // fencing tokens (create revisions) increase across holders
    last = *t;
    CHECK(m2.try_lock().status().code() == Code::kConflict);
    REQUIRE(text(m1.unlock()) == "ok");
    auto t2 = m2.try_lock();
    REQUIRE(text(t2.status()) == "ok");
    CHECK(*t2 > last);
    last = *t2;
    REQUIRE(text(m2.unlock()) == "ok");
  };
  cycle("failover/before");
  REQUIRE(text(cluster->kill(0)) == "ok");
  for (int i = 0; i < 5; ++i) cycle("failover/first-dead/" + std::to_string(i));
  // A fresh backend starts at the dead endpoint too.
  auto fresh = open(uri);
  auto s3 = session(fresh);
  sd::dlock::Mutex m3(s3, "failover/fresh");
  CHECK(text(m3.try_lock().status()) == "ok");
  // Another member dies instead (the first is back): still a quorum, still granting.
  REQUIRE(text(cluster->restart(0)) == "ok");
  REQUIRE(text(cluster->kill(2)) == "ok");
  for (int i = 0; i < 3; ++i) cycle("failover/third-dead/" + std::to_string(i));
  CHECK(s1->alive());
  // Close the sessions while a quorum exists (revoking without one would wait for timeouts).
  CHECK(text(s1->close()) == "ok");
  CHECK(text(s3->close()) == "ok");
  // Two of three down: no quorum. Calls end in kUnavailable naming the endpoints, not hang.
  REQUIRE(text(cluster->kill(1)) == "ok");
  sd::dlock::BackendOptions quick;
  quick.request_timeout = Duration{500};
  quick.max_attempts = 2;
  auto b = sd::dlock::open_backend(uri, quick);
  REQUIRE(b.is_ok());
  auto g = (*b)->grant_lease(Duration{2'000});
  REQUIRE_FALSE(g.is_ok());
  CHECK(g.status().code() == Code::kUnavailable);
  CHECK(g.status().message().find(endpoint(*cluster, 2)) != std::string::npos);
}

TEST_CASE("etcd backend unreachable cluster is kUnavailable naming the endpoints",
          "[integration]") {
  const std::string eps = "127.0.0.1:" + std::to_string(sd::testing::free_port()) +
                          ",127.0.0.1:" + std::to_string(sd::testing::free_port());
  auto b = sd::dlock::open_backend("etcd://" + eps);
  REQUIRE(b.is_ok());
  auto g = (*b)->grant_lease(Duration{1'000});
  REQUIRE_FALSE(g.is_ok());
  CHECK(g.status().code() == Code::kUnavailable);
  CHECK(g.status().message().find(eps) != std::string::npos);
}

TEST_CASE("etcd lock held across a leader kill is never silently double-granted", "[integration]") {
  sd::testing::TempDir dir("sd-etcd");
  auto cluster = start_cluster(dir);
  auto backend = open("etcd://" + cluster->endpoints());
  std::atomic<bool> lost{false};  // outlives the session whose callback sets it
  auto holder = session(backend, Duration{3'000});
  holder->on_lost([&](const sd::Status&) { lost = true; });
  sd::dlock::Mutex hm(holder, "leader-kill");
  auto t0 = hm.try_lock();
  REQUIRE(text(t0.status()) == "ok");

  auto leader = cluster->leader();
  REQUIRE(leader.is_ok());
  REQUIRE(text(cluster->kill(*leader)) == "ok");

  auto other = open("etcd://" + cluster->endpoints());
  auto contender = session(other);  // needs the new leader: grant is a raft write
  sd::dlock::Mutex cm(contender, "leader-kill");
  int conflicts = 0;
  // Until well past the holder's 3 s TTL since the kill (the contender's grant took ~2 s).
  const auto end = std::chrono::steady_clock::now() + 2500ms;
  while (std::chrono::steady_clock::now() < end) {
    auto t = cm.try_lock();
    if (t.is_ok()) {
      // Granted to the contender: the holder must know its lock is gone (exactly one holder).
      INFO("contender got token " << *t << " over holder token " << *t0);
      CHECK_FALSE(hm.held());
      // on_lost fired, and the engine says the lease is gone.
      CHECK(sd::testing::eventually([&] { return lost.load(); }, 1s));
      CHECK(backend->keepalive(holder->lease_id()).code() == Code::kNotFound);
      CHECK(*t > *t0);
      break;
    }
    CHECK((t.status().code() == Code::kConflict || t.status().code() == Code::kUnavailable));
    if (t.status().code() == Code::kConflict) {
      ++conflicts;
      CHECK(hm.held());  // refused while the holder still believes it holds: consistent
    }
    std::this_thread::sleep_for(100ms);
  }
  // With a 3 s lease and fast elections the holder normally rides through the leader change.
  if (hm.held()) {
    CHECK(conflicts > 0);
    CHECK(cm.try_lock().status().code() == Code::kConflict);
    CHECK(text(hm.unlock()) == "ok");
    auto t = cm.try_lock();
    REQUIRE(text(t.status()) == "ok");
    CHECK(*t > *t0);
  }
}

TEST_CASE("etcd waiter whose lease expired while waiting does not get the lock", "[integration]") {
  sd::testing::TempDir dir("sd-etcd");
  auto cluster = start_cluster(dir);
  auto backend = open("etcd://" + cluster->endpoints());
  auto holder = session(backend);
  sd::dlock::Mutex hm(holder, "jepsen");
  auto t0 = hm.try_lock();
  REQUIRE(text(t0.status()) == "ok");

  // The waiter's lease is never renewed: it expires (etcd minimum TTL) while the waiter waits.
  auto lease = backend->grant_lease(Duration{1'000});
  REQUIRE(lease.is_ok());
  sd::dlock::AcquireRequest req;
  req.name = "jepsen";
  req.lease_id = lease->id;
  req.wait = Duration{10'000};
  auto waiting = std::async(std::launch::async, [&] { return backend->acquire(req); });
  REQUIRE(sd::testing::eventually(
      [&] {
        auto d = backend->describe(Kind::kLock, "jepsen");
        return d.is_ok() && d->waiters.size() == 1;
      },
      3s));
  // Its key goes with the lease ...
  REQUIRE(sd::testing::eventually(
      [&] {
        auto d = backend->describe(Kind::kLock, "jepsen");
        return d.is_ok() && d->waiters.empty();
      },
      5s));
  // ... and then the holder releases: the waiter wakes up but must see that its key is gone.
  REQUIRE(text(hm.unlock()) == "ok");
  REQUIRE(waiting.wait_for(5s) == std::future_status::ready);
  auto r = waiting.get();
  INFO("waiter result: " << text(r.status()));
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kNotFound);
  // Nobody holds it now; the next holder gets a larger token.
  CHECK(backend->describe(Kind::kLock, "jepsen").status().code() == Code::kNotFound);
  auto next = session(backend);
  sd::dlock::Mutex nm(next, "jepsen");
  auto t1 = nm.try_lock();
  REQUIRE(text(t1.status()) == "ok");
  CHECK(*t1 > *t0);
}

TEST_CASE("etcd release describe and try-lock follow the other engines", "[integration]") {
  sd::testing::TempDir dir("sd-etcd");
  auto c = sd::testing::EtcdCluster::start(dir.file("etcd"), 1);
  REQUIRE(text(c.status()) == "ok");
  auto backend = open("etcd://" + (*c)->endpoints());
  auto a = session(backend), b = session(backend);
  sd::dlock::Mutex ma(a, "ops/x"), mb(b, "ops/x");
  auto ta = ma.try_lock();
  REQUIRE(text(ta.status()) == "ok");
  // try-lock leaves no waiter key behind.
  CHECK(mb.try_lock().status().to_string() == "conflict: locked");
  auto d = backend->describe(Kind::kLock, "ops/x");
  REQUIRE(d.is_ok());
  REQUIRE(d->holders.size() == 1);
  CHECK(d->holders[0].lease_id == a->lease_id());
  CHECK(d->holders[0].token == *ta);
  CHECK(d->holders[0].ttl_ms_left > 0);
  CHECK(d->waiters.empty());
  CHECK(d->last_token == *ta);
  // Re-acquiring with the same lease returns the same grant.
  auto again =
      backend->acquire({Kind::kLock, "ops/x", a->lease_id(), Mode::kExclusive, 1, 1, Duration{0}});
  REQUIRE(again.is_ok());
  CHECK(again->token == *ta);
  // Release with the wrong token or the wrong lease: not_holder; with a bad lease: not found.
  CHECK(backend->release(Kind::kLock, "ops/x", a->lease_id(), *ta + 1).to_string() ==
        "conflict: not_holder");
  CHECK(backend->release(Kind::kLock, "ops/x", b->lease_id(), *ta).to_string() ==
        "conflict: not_holder");
  CHECK(backend->release(Kind::kLock, "ops/x", "nothex", *ta).code() == Code::kNotFound);
  // A name and its "sub-name" are distinct locks.
  sd::dlock::Mutex sub(b, "ops/x/y");
  CHECK(text(sub.try_lock().status()) == "ok");
  auto l = backend->list(Kind::kLock, "ops/");
  REQUIRE(l.is_ok());
  REQUIRE(l->size() == 2);
  CHECK((*l)[0].name == "ops/x");
  CHECK((*l)[1].name == "ops/x/y");
  REQUIRE(text(ma.unlock()) == "ok");
  CHECK(backend->release(Kind::kLock, "ops/x", a->lease_id(), *ta).to_string() ==
        "conflict: not_holder");
  // A revoked lease's acquire is kNotFound (the session layer marks itself lost on that).
  auto gone = backend->grant_lease(Duration{2'000});
  REQUIRE(gone.is_ok());
  REQUIRE(text(backend->revoke(gone->id)) == "ok");
  CHECK(backend->keepalive(gone->id).code() == Code::kNotFound);
  CHECK(backend->acquire({Kind::kLock, "ops/z", gone->id, Mode::kExclusive, 1, 1, Duration{0}})
            .status()
            .code() == Code::kNotFound);
  // TTLs are whole seconds, rounded up.
  auto g = backend->grant_lease(Duration{2'500});
  REQUIRE(g.is_ok());
  CHECK(g->ttl == Duration{3'000});
}
