#pragma once
// Helpers shared by the store tests: opening stores, a real redis-server, and a raw connection to
// inspect what the redis:// store wrote.

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "sd/ratelimit/store.hpp"
#include "sd/redis/conn.hpp"
#include "sd/testing/servers.hpp"
#include "sd/testing/testing.hpp"

namespace sd::ratelimit::test {

inline std::unique_ptr<Store> open(const std::string& uri, StoreOptions options = {}) {
  auto s = open_store(uri, options);
  INFO(uri << ": " << (s.is_ok() ? "" : s.status().message()));
  REQUIRE(s.is_ok());
  return std::move(*s);
}

inline std::unique_ptr<testing::RedisServer> start_redis(const testing::TempDir& dir,
                                                         const std::string& name = "redis") {
  auto r = testing::RedisServer::start(dir.file(name));
  REQUIRE(r.is_ok());
  return std::move(*r);
}

inline std::string redis_uri(const testing::RedisServer& r, const std::string& query = "") {
  return "redis://" + r.address() + query;
}

// One command on a fresh connection (2 s deadline); REQUIREs success.
inline redis::RedisValue redis_cmd(uint16_t port, const redis::RedisArgv& argv) {
  auto conn = redis::RedisConn::open({"127.0.0.1", port});
  auto v = conn->command(argv, std::chrono::steady_clock::now() + std::chrono::seconds(2));
  INFO(argv.front() << ": " << (v.is_ok() ? "" : v.status().message()));
  REQUIRE(v.is_ok());
  return std::move(*v);
}

inline StoreItem item(Algorithm a, Limit l, std::string_view key, uint64_t cost = 1) {
  StoreItem it;
  it.algorithm = a;
  it.limit = l;
  it.key = key;
  it.cost = cost;
  return it;
}

inline Decision decide_one(Store& s, const StoreItem& it) {
  auto r = s.decide({&it, 1});
  INFO(s.describe() << ": " << (r.is_ok() ? "" : r.status().message()));
  REQUIRE(r.is_ok());
  REQUIRE(r->size() == 1);
  return r->front();
}

}  // namespace sd::ratelimit::test
