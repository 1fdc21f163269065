// Backend URI parsing and open_backend() errors.

#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "sd/dlock/backend.hpp"

using namespace sd;
using namespace sd::dlock;

TEST_CASE("parse_backend_uri accepts the documented forms", "[unit]") {
  auto m = parse_backend_uri("memory://");
  REQUIRE(m.is_ok());
  CHECK(m->scheme == "memory");

  auto abs = parse_backend_uri("sqlite:///var/dlock/x.db");
  REQUIRE(abs.is_ok());
  CHECK(abs->scheme == "sqlite");
  CHECK(abs->path == "/var/dlock/x.db");

  auto rel = parse_backend_uri("sqlite://var/x.db");
  REQUIRE(rel.is_ok());
  CHECK(rel->path == "var/x.db");

  auto d = parse_backend_uri("dlockd://127.0.0.1:7401");
  REQUIRE(d.is_ok());
  CHECK(d->scheme == "dlockd");
  REQUIRE(d->hosts.size() == 1);
  CHECK(d->hosts[0].first == "127.0.0.1");
  CHECK(d->hosts[0].second == 7401);

  auto slash = parse_backend_uri("dlockd://localhost:1/");
  REQUIRE(slash.is_ok());
  CHECK(slash->hosts[0] == std::make_pair(std::string("localhost"), uint16_t{1}));

  auto v6 = parse_backend_uri("dlockd://[::1]:65535");
  REQUIRE(v6.is_ok());
  CHECK(v6->hosts[0].first == "::1");
  CHECK(v6->hosts[0].second == 65535);

  auto rl = parse_backend_uri("redlock://a:1,b:2,c:3");
  REQUIRE(rl.is_ok());
  CHECK(rl->hosts.size() == 3);
}

TEST_CASE("parse_backend_uri rejects bad URIs with clear messages", "[unit]") {
  struct Case {
    const char* uri;
    const char* needle;
  };
  const Case cases[] = {
      {"", "missing scheme"},
      {"127.0.0.1:7401", "missing scheme"},
      {"://x", "missing scheme"},
      {"ftp://x:1", "unknown scheme"},
      {"memory://foo", "takes no host"},
      {"sqlite://", "empty sqlite file path"},
      {"sqlite:///", "empty sqlite file path"},
      {"sqlite:///tmp/dir/", "must name a file"},
      {"dlockd://", "missing host:port"},
      {"dlockd://localhost", "missing port"},
      {"dlockd://localhost:", "missing port"},
      {"dlockd://:7401", "empty host"},
      {"dlockd://h:0", "out of range"},
      {"dlockd://h:65536", "out of range"},
      {"dlockd://h:99999999999", "not a number"},
      {"dlockd://h:12ab", "not a number"},
      {"dlockd://h:-1", "not a number"},
      {"dlockd://a:1,b:2", "exactly one"},
      {"dlockd://::1:7401", "brackets"},
      {"etcd://a:1,,b:2", "empty host"},
  };
  for (const auto& c : cases) {
    INFO(c.uri);
    auto r = parse_backend_uri(c.uri);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK_THAT(r.status().message(), Catch::Contains(c.needle));
    CHECK_THAT(r.status().message(), Catch::Contains("dlockd://host:port"));
  }
}

TEST_CASE("open_backend: every engine opens and bad URIs are kInvalidArgument", "[unit]") {
  // Nothing listens on port 1: the Redis engines connect lazily and report the address.
  BackendOptions o;
  o.request_timeout = Duration{500};
  for (const char* uri : {"redis://127.0.0.1:1", "redlock://127.0.0.1:1,127.0.0.1:1,127.0.0.1:1"}) {
    INFO(uri);
    auto b = open_backend(uri, o);
    REQUIRE(b.is_ok());
    CHECK((*b)->uri() == uri);
    auto g = (*b)->grant_lease(Duration{1000});
    REQUIRE_FALSE(g.is_ok());
    CHECK(g.status().code() == Code::kUnavailable);
    CHECK_THAT(g.status().message(), Catch::Contains("127.0.0.1:1"));
  }
  // etcd is another engine's business here: only that nothing is pretended.
  auto e = open_backend("etcd://127.0.0.1:1", o);
  if (e.is_ok()) CHECK_FALSE((*e)->grant_lease(Duration{1000}).is_ok());

  auto bad = open_backend("dlockd://nohost");
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().code() == Code::kInvalidArgument);

  auto m = open_backend("memory://");
  REQUIRE(m.is_ok());
  CHECK((*m)->uri() == "memory://");
  auto d = open_backend("dlockd://127.0.0.1:7401");  // no connection until the first call
  REQUIRE(d.is_ok());
  CHECK((*d)->uri() == "dlockd://127.0.0.1:7401");
}

TEST_CASE("dlockd backend: unreachable server is kUnavailable after retries", "[unit]") {
  BackendOptions o;
  o.max_attempts = 3;
  o.initial_backoff = Duration{5};
  o.request_timeout = Duration{500};
  auto b = open_backend("dlockd://127.0.0.1:1", o);  // nothing listens on port 1
  REQUIRE(b.is_ok());
  auto start = std::chrono::steady_clock::now();
  auto g = (*b)->grant_lease(Duration{1000});
  REQUIRE_FALSE(g.is_ok());
  CHECK(g.status().code() == Code::kUnavailable);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

TEST_CASE("acquire_chunked splits long waits", "[unit]") {
  AcquireRequest req;
  req.wait = Duration{35};
  std::vector<Duration> waits;
  auto r = acquire_chunked(req, Duration{10}, [&](const AcquireRequest& c) -> Result<Grant> {
    waits.push_back(c.wait);
    std::this_thread::sleep_for(c.wait);
    return conflict("locked");
  });
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message() == "locked");
  // 35 ms in chunks of at most 10 ms: 10, 10, 10, then what is left (sleep overshoot may eat it).
  REQUIRE(waits.size() >= 3);
  CHECK(waits.size() <= 5);
  CHECK(waits[0] == Duration{10});
  CHECK(waits[1] == Duration{10});
  for (auto w : waits) CHECK(w <= Duration{10});

  int calls2 = 0;
  auto ok = acquire_chunked(req, Duration{10}, [&](const AcquireRequest&) -> Result<Grant> {
    if (++calls2 < 2) return conflict("locked");
    Grant g;
    g.token = 7;
    return g;
  });
  REQUIRE(ok.is_ok());
  CHECK(ok->token == 7);

  auto err = acquire_chunked(req, Duration{10}, [&](const AcquireRequest&) -> Result<Grant> {
    return not_found("lease");
  });
  CHECK(err.status().code() == Code::kNotFound);
}
