#include <catch2/catch.hpp>

#include <set>

#include "sd/base/clock.hpp"
#include "sd/base/ids.hpp"
#include "sd/base/status.hpp"
#include "sd/base/utf8.hpp"

using namespace std::chrono_literals;

TEST_CASE("Status and Result carry values or errors", "[unit][base]") {
  sd::Status ok;
  CHECK(ok.is_ok());
  sd::Status bad = sd::conflict("held");
  CHECK_FALSE(bad.is_ok());
  CHECK(bad.to_string() == "conflict: held");

  sd::Result<int> r = 7;
  REQUIRE(r.is_ok());
  CHECK(*r == 7);
  sd::Result<int> e = sd::not_found("x");
  CHECK_FALSE(e.is_ok());
  CHECK(e.status().code() == sd::Code::kNotFound);
}

TEST_CASE("FakeClock moves only when told", "[unit][base]") {
  sd::FakeClock clock;
  auto t0 = clock.now();
  CHECK(clock.now() == t0);
  clock.advance(150ms);
  CHECK(clock.now() - t0 == 150ms);
  CHECK(sd::ms_until(clock.now(), t0) == 0);
  CHECK(sd::ms_until(t0, clock.now()) == 150);
}

TEST_CASE("ids are 128-bit hex / unique / and reproducible when seeded", "[unit][base]") {
  sd::RandomIdGenerator gen;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = gen.next();
    CHECK(sd::is_valid_id(id));
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);

  sd::SeededIdGenerator a(42), b(42), c(43);
  auto a1 = a.next();
  CHECK(a1 == b.next());
  CHECK(a1 != c.next());
  CHECK_FALSE(sd::is_valid_id("XYZ"));
  CHECK_FALSE(sd::is_valid_id(std::string(32, 'G')));
}

TEST_CASE("UTF-8 validation", "[unit][base]") {
  CHECK(sd::is_valid_utf8("plain"));
  CHECK(sd::is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92"));
  CHECK_FALSE(sd::is_valid_utf8("\xff"));
  CHECK_FALSE(sd::is_valid_utf8("\xc3"));              // truncated
  CHECK_FALSE(sd::is_valid_utf8("\xc0\xaf"));          // overlong '/'
  CHECK_FALSE(sd::is_valid_utf8("\xed\xa0\x80"));      // surrogate
  CHECK_FALSE(sd::is_valid_utf8("\xf4\x90\x80\x80"));  // > U+10FFFF
}
