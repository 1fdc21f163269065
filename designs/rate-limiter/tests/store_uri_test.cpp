// open_store(): accepted URIs and the errors for bad ones (each names the URI and the problem).

#include <catch2/catch.hpp>

#include <string>

#include "store_test_util.hpp"

using namespace sd;
using namespace sd::ratelimit;

TEST_CASE("store uri: memory and redis URIs open and describe themselves", "[unit]") {
  CHECK(test::open("memory://")->describe() == "memory://");
  CHECK(test::open("memory:///")->describe() == "memory://");
  // redis:// does not connect until the first decide(): no server is needed here.
  CHECK(test::open("redis://127.0.0.1:6379")->describe() == "redis://127.0.0.1:6379");
  CHECK(test::open("redis://localhost:1/")->describe() == "redis://localhost:1");
  CHECK(test::open("redis://[::1]:6380?timeout_ms=20&prefix=x:")->describe() ==
        "redis://[::1]:6380");
  CHECK(test::open("redis://h:6379?prefix=")->describe() == "redis://h:6379");
}

TEST_CASE("store uri: bad URIs are kInvalidArgument naming the URI and the problem", "[unit]") {
  const std::pair<std::string, std::string> cases[] = {
      {"", "missing scheme://"},
      {"memory", "missing scheme://"},
      {"etcd://h:1", "unknown scheme \"etcd\""},
      {"memory://host", "memory:// takes no host"},
      {"redis://", "missing host:port"},
      {"redis://host", "missing port"},
      {"redis://:6379", "empty host"},
      {"redis://host:0", "port \"0\" is not a number in 1..65535"},
      {"redis://host:65536", "port \"65536\""},
      {"redis://host:abc", "port \"abc\""},
      {"redis://host:", "port \"\""},
      {"redis://::1:6379", "IPv6 hosts must be written in brackets"},
      {"redis://[::1:6379", "unterminated '['"},
      {"redis://a,b:1", "invalid character in host"},
      {"redis://h:1?timeout_ms=0", "timeout_ms \"0\" is not a number in 1..60000"},
      {"redis://h:1?timeout_ms=5s", "timeout_ms \"5s\""},
      {"redis://h:1?timeout_ms", "\"timeout_ms\" needs a value"},
      {"redis://h:1?db=2", "unknown query parameter \"db\" (known: timeout_ms, prefix)"},
  };
  for (const auto& [uri, why] : cases) {
    INFO(uri);
    auto s = open_store(uri);
    REQUIRE_FALSE(s.is_ok());
    CHECK(s.status().code() == Code::kInvalidArgument);
    CHECK_THAT(s.status().message(), Catch::Contains("\"" + uri + "\""));
    CHECK_THAT(s.status().message(), Catch::Contains(why));
    CHECK_THAT(s.status().message(), Catch::Contains("memory://") && Catch::Contains("redis://"));
  }
}
