// sd::testing's real peer servers (redis-server, etcd clusters): start, kill, restart, failover.
// The dlock conformance suite and the backend tests build on these, so they must be reliable.

#include <catch2/catch.hpp>

#include "sd/testing/servers.hpp"
#include "sd/testing/testing.hpp"

using namespace std::chrono_literals;
using sd::testing::EtcdCluster;
using sd::testing::RedisServer;
using sd::testing::TempDir;

TEST_CASE("servers: find_executable names the Debian package when missing", "[integration]") {
  auto sh = sd::testing::find_executable("sh", "dash");
  REQUIRE(sh.is_ok());
  CHECK(sh->front() == '/');
  auto missing = sd::testing::find_executable("sd-no-such-binary-xyz", "sd-pkg");
  REQUIRE_FALSE(missing.is_ok());
  CHECK(missing.status().code() == sd::Code::kNotFound);
  CHECK(missing.status().message().find("sd-pkg") != std::string::npos);
}

TEST_CASE("servers: redis starts and kill and restart keep its port", "[integration]") {
  TempDir dir("sd-servers");
  auto r = RedisServer::start(dir.file("redis"));
  REQUIRE(r.is_ok());
  RedisServer& redis = **r;
  CHECK(redis.running());
  CHECK(redis.address() == "127.0.0.1:" + std::to_string(redis.port()));
  CHECK(sd::testing::redis_ping(redis.port()));

  REQUIRE(redis.kill().is_ok());
  CHECK_FALSE(redis.running());
  CHECK_FALSE(sd::testing::redis_ping(redis.port()));
  CHECK(redis.kill().is_ok());  // idempotent

  auto port = redis.port();
  REQUIRE(redis.restart().is_ok());
  CHECK(redis.port() == port);
  CHECK(redis.running());
  CHECK(sd::testing::redis_ping(redis.port()));
}

TEST_CASE("servers: redis with appendonly starts", "[integration]") {
  TempDir dir("sd-servers");
  auto r = RedisServer::start(dir.file("redis"), {.appendonly = true});
  REQUIRE(r.is_ok());
  REQUIRE((*r)->kill().is_ok());
  REQUIRE((*r)->restart().is_ok());  // replays the (empty) AOF
  CHECK(sd::testing::redis_ping((*r)->port()));
}

TEST_CASE("servers: 3-node etcd elects a leader and survives losing one", "[integration]") {
  TempDir dir("sd-servers");
  auto c = EtcdCluster::start(dir.file("etcd"), 3);
  REQUIRE(c.is_ok());
  EtcdCluster& etcd = **c;
  REQUIRE(etcd.size() == 3);
  CHECK(etcd.endpoints() == "127.0.0.1:" + std::to_string(etcd.client_port(0)) +
                                ",127.0.0.1:" + std::to_string(etcd.client_port(1)) +
                                ",127.0.0.1:" + std::to_string(etcd.client_port(2)));
  auto leader = etcd.leader();
  REQUIRE(leader.is_ok());
  REQUIRE(*leader < 3);

  // Kill the leader: the other two elect a new one quickly (election timeout 500 ms).
  size_t old = *leader;
  REQUIRE(etcd.kill(old).is_ok());
  CHECK_FALSE(etcd.running(old));
  auto next = etcd.leader();
  REQUIRE(next.is_ok());
  CHECK(*next != old);
  CHECK(etcd.wait_healthy(10s).is_ok());

  // The killed member rejoins with its data dir.
  REQUIRE(etcd.restart(old).is_ok());
  CHECK(etcd.running(old));
  CHECK(etcd.wait_healthy(10s).is_ok());
  CHECK(etcd.leader().is_ok());
}
