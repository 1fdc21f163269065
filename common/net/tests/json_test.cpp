#include <catch2/catch.hpp>

#include "sd/net/json.hpp"

using namespace sd::net;
using nlohmann::json;

TEST_CASE("parse_json_object accepts objects only", "[unit][json]") {
  CHECK(parse_json_object(R"({"a":1})").is_ok());
  auto bad = parse_json_object("{nope");
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().code() == sd::Code::kInvalidArgument);
  CHECK(bad.status().message().find("not valid JSON") != std::string::npos);
  auto arr = parse_json_object("[1,2]");
  REQUIRE_FALSE(arr.is_ok());
  CHECK(arr.status().message().find("array") != std::string::npos);
  CHECK_FALSE(parse_json_object("").is_ok());
  auto empty = parse_json_object("", /*allow_empty=*/true);
  REQUIRE(empty.is_ok());
  CHECK(empty->empty());
}

TEST_CASE("get_int checks type and range", "[unit][json]") {
  json j = json::parse(
      R"({"n": 5, "neg": -3, "f": 1.5, "f1": 1.0, "b": true, "s": "5", "big": 9223372036854775808,
          "huge": 1e30, "max": 9223372036854775807})");
  auto n = get_int(j, "n", 0, 10);
  REQUIRE(n.is_ok());
  CHECK(**n == 5);
  CHECK(**get_int(j, "neg", -5, 5) == -3);
  CHECK_FALSE(get_int(j, "missing", 0, 10).value().has_value());
  for (const char* f : {"f", "f1", "b", "s", "big", "huge"}) {
    auto r = get_int(j, f, INT64_MIN, INT64_MAX);
    INFO(f);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == sd::Code::kInvalidArgument);
    CHECK(r.status().message().find(f) != std::string::npos);
  }
  CHECK(**get_int(j, "max", INT64_MIN, INT64_MAX) == INT64_MAX);
  auto out = get_int(j, "n", 6, 10);
  REQUIRE_FALSE(out.is_ok());
  CHECK(out.status().message().find("between 6 and 10") != std::string::npos);
}

TEST_CASE("get_uint / get_string / get_bool", "[unit][json]") {
  json j = json::parse(
      R"({"u": 18446744073709551615, "neg": -1, "s": "x", "b": false, "n": 1, "nul": null})");
  CHECK(**get_uint(j, "u") == UINT64_MAX);
  CHECK_FALSE(get_uint(j, "neg").is_ok());
  CHECK_FALSE(get_uint(j, "s").is_ok());
  CHECK(**get_uint(j, "n") == 1);
  CHECK(**get_string(j, "s") == "x");
  CHECK_FALSE(get_string(j, "n").is_ok());
  CHECK_FALSE(get_string(j, "missing")->has_value());
  CHECK_FALSE(get_string(j, "nul")->has_value());
  CHECK(**get_bool(j, "b") == false);
  CHECK_FALSE(get_bool(j, "n").is_ok());
}
