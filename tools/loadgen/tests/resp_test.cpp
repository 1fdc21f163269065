#include <catch2/catch.hpp>

#include "sd/loadgen/resp.hpp"

using namespace sd::loadgen;
using T = RespValue::Type;

namespace {
// Feeds `wire` one byte at a time and collects every reply.
std::vector<RespValue> parse_bytewise(const std::string& wire) {
  RespReader r;
  std::vector<RespValue> out;
  for (char ch : wire) {
    r.feed(std::string_view(&ch, 1));
    for (;;) {
      auto v = r.next();
      REQUIRE(v.is_ok());
      if (!v->has_value()) break;
      out.push_back(std::move(**v));
    }
  }
  REQUIRE(r.buffered() == 0);
  return out;
}
}  // namespace

TEST_CASE("RESP commands are arrays of bulk strings", "[unit]") {
  REQUIRE(resp_encode({"PING"}) == "*1\r\n$4\r\nPING\r\n");
  REQUIRE(resp_encode({"SET", "k", "", "NX"}) ==
          "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n$2\r\nNX\r\n");
  std::string binary("a\r\nb", 4);
  REQUIRE(resp_encode({binary}) == "*1\r\n$4\r\na\r\nb\r\n");
}

TEST_CASE("RESP reader parses every reply type incrementally", "[unit]") {
  std::string wire =
      "+OK\r\n-ERR wrong type\r\n:42\r\n:-7\r\n$5\r\nhe\r\nl\r\n$-1\r\n$0\r\n\r\n*-1\r\n"
      "*3\r\n:1\r\n*2\r\n+a\r\n$1\r\nb\r\n$-1\r\n*0\r\n";
  auto v = parse_bytewise(wire);
  REQUIRE(v.size() == 10);
  REQUIRE(v[0].is_ok_status());
  REQUIRE((v[1].type == T::kError && v[1].str == "ERR wrong type"));
  REQUIRE((v[2].type == T::kInteger && v[2].integer == 42));
  REQUIRE(v[3].integer == -7);
  REQUIRE((v[4].type == T::kBulk && v[4].str == "he\r\nl"));  // bulk is length-framed
  REQUIRE(v[5].type == T::kNull);
  REQUIRE((v[6].type == T::kBulk && v[6].str.empty()));
  REQUIRE(v[7].type == T::kNull);
  REQUIRE(v[8].type == T::kArray);
  REQUIRE(v[8].elements.size() == 3);
  REQUIRE(v[8].elements[1].elements[1].str == "b");
  REQUIRE(v[8].elements[2].type == T::kNull);
  REQUIRE((v[9].type == T::kArray && v[9].elements.empty()));

  // The same bytes in one chunk give the same replies.
  RespReader r;
  r.feed(wire);
  int n = 0;
  for (auto x = r.next(); x.is_ok() && x->has_value(); x = r.next()) ++n;
  REQUIRE(n == 10);
}

TEST_CASE("RESP reader rejects malformed streams", "[unit]") {
  for (std::string bad : {"?x\r\n", ":12a\r\n", "$-5\r\n", "$3\r\nabcXY", "*-2\r\n", ":\r\n"}) {
    RespReader r;
    r.feed(bad);
    auto v = r.next();
    INFO(bad);
    REQUIRE(!v.is_ok());
    REQUIRE(!r.next().is_ok());  // sticky: framing is lost
  }
  RespReader partial;
  partial.feed("$10\r\nabc");
  auto v = partial.next();
  REQUIRE(v.is_ok());
  REQUIRE(!v->has_value());
}
