// IETF RateLimit / RateLimit-Policy header formatting (draft-ietf-httpapi-ratelimit-headers-08/09),
// Retry-After and the legacy X-RateLimit-* trio.

#include <catch2/catch.hpp>

#include "headers.hpp"

namespace h = sd::ratelimit::headers;
using namespace std::chrono_literals;
using sd::ratelimit::Nanos;

namespace {
std::string get(const sd::net::Headers& hs, const std::string& name) {
  const std::string* v = sd::net::find_header(hs, name);
  return v ? *v : "<absent>";
}
}  // namespace

TEST_CASE("headers: sf-string escapes quotes and backslashes and replaces non-ASCII", "[unit]") {
  REQUIRE(h::sf_string("api.remote_address") == "\"api.remote_address\"");
  REQUIRE(h::sf_string("we\"ird\\name") == "\"we\\\"ird\\\\name\"");
  REQUIRE(h::sf_string("") == "\"\"");
  REQUIRE(h::sf_string("a\tb\nc\x7f"
                       "d\xc3\xa9") == "\"a_b_c_d__\"");
  REQUIRE(h::sf_string(" ~") == "\" ~\"");  // the printable range's ends stay
}

TEST_CASE("headers: seconds and milliseconds round up", "[unit]") {
  REQUIRE(h::ceil_seconds(Nanos{0}) == 0);
  REQUIRE(h::ceil_seconds(Nanos{-5}) == 0);
  REQUIRE(h::ceil_seconds(Nanos{1}) == 1);
  REQUIRE(h::ceil_seconds(1s) == 1);
  REQUIRE(h::ceil_seconds(1001ms) == 2);
  REQUIRE(h::ceil_seconds(86400s) == 86400);
  REQUIRE(h::ceil_millis(Nanos{1}) == 1);
  REQUIRE(h::ceil_millis(1500us) == 2);
  REQUIRE(h::ceil_millis(30s) == 30000);
  REQUIRE(h::retry_after(Nanos{0}) == "1");  // at least 1
  REQUIRE(h::retry_after(100ms) == "1");
  REQUIRE(h::retry_after(1s) == "1");
  REQUIRE(h::retry_after(1s + 1ns) == "2");
  REQUIRE(h::retry_after(3600s) == "3600");
}

TEST_CASE("headers: one list member per quota and policy members deduplicated", "[unit]") {
  h::Quota a{"per-ip", 10, 1s, 7, 700ms};
  h::Quota b{"we\"ird", 1000, 86400s, 0, 3600s + 1ms};
  REQUIRE(h::policy_member(a) == "\"per-ip\";q=10;w=1");
  REQUIRE(h::ratelimit_member(a) == "\"per-ip\";r=7;t=1");
  REQUIRE(h::policy_member(b) == "\"we\\\"ird\";q=1000;w=86400");
  REQUIRE(h::ratelimit_member(b) == "\"we\\\"ird\";r=0;t=3601");

  sd::net::Headers out;
  h::Quota a2{"per-ip", 10, 1s, 3, 200ms};  // the same policy for another descriptor
  h::append({a, b, a2}, false, out);
  REQUIRE(out.size() == 2);
  REQUIRE(get(out, "RateLimit-Policy") == "\"per-ip\";q=10;w=1, \"we\\\"ird\";q=1000;w=86400");
  REQUIRE(get(out, "RateLimit") ==
          "\"per-ip\";r=7;t=1, \"we\\\"ird\";r=0;t=3601, \"per-ip\";r=3;t=1");
  REQUIRE(get(out, "X-RateLimit-Limit") == "<absent>");

  sd::net::Headers none;
  h::append({}, true, none);
  REQUIRE(none.empty());
}

TEST_CASE("headers: legacy trio names the most restrictive quota", "[unit]") {
  h::Quota loose{"loose", 100, 60s, 50, 10s};
  h::Quota tight{"tight", 5, 1s, 1, 500ms};
  h::Quota tight_later{"tight-later", 10, 60s, 1, 30s};
  sd::net::Headers out;
  h::append({loose, tight, tight_later}, true, out);
  // Least remaining wins; on a tie the later reset (the longer wait) wins.
  REQUIRE(get(out, "X-RateLimit-Limit") == "10");
  REQUIRE(get(out, "X-RateLimit-Remaining") == "1");
  REQUIRE(get(out, "X-RateLimit-Reset") == "30");
}
