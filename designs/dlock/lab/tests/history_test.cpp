#include "sd/dlock/lab/history.hpp"

#include <catch2/catch.hpp>
#include <fstream>

#include "sd/testing/testing.hpp"

using namespace sd::dlock::lab;

TEST_CASE("history events round-trip through one JSON line", "[unit][lab]") {
  Event e{EventType::kOk, "c3", "acquire", 123456789, 42u, std::nullopt, "", "", ""};
  std::string line = to_json_line(e);
  CHECK(line.find('\n') == std::string::npos);
  auto back = parse_event(line);
  REQUIRE(back.is_ok());
  CHECK(back->type == EventType::kOk);
  CHECK(back->process == "c3");
  CHECK(back->f == "acquire");
  CHECK(back->time_ns == 123456789);
  CHECK(back->token == 42u);
  CHECK_FALSE(back->value.has_value());

  Event r{EventType::kFail, "resource", "write", 5, 7u, -3, "counter", "c1", "stale token"};
  auto rb = parse_event(to_json_line(r));
  REQUIRE(rb.is_ok());
  CHECK(rb->value == -3);
  CHECK(rb->key == "counter");
  CHECK(rb->client == "c1");
  CHECK(rb->error == "stale token");
}

TEST_CASE("history: bad lines name the problem", "[unit][lab]") {
  struct Case {
    const char* line;
    const char* needle;
  };
  for (auto c : {Case{"not json", "not valid JSON"}, Case{"[1]", "not a JSON object"},
                 Case{R"({"process":"c1","f":"acquire","time_ns":1})", "missing \"type\""},
                 Case{R"({"type":"maybe","process":"c1","f":"x","time_ns":1})", "unknown"},
                 Case{R"({"type":"ok","process":"","f":"x","time_ns":1})", "empty \"process\""},
                 Case{R"({"type":"ok","process":"c1","f":"x","time_ns":"1"})", "time_ns"},
                 Case{R"({"type":"ok","process":"c1","f":"x","time_ns":1,"token":-1})", "token"},
                 Case{R"({"type":"ok","process":"c1","f":"x","time_ns":1,"value":1.5})", "value"},
                 Case{R"({"type":"ok","process":"c1","f":"x","time_ns":1,"key":3})", "key"}}) {
    INFO(c.line);
    auto r = parse_event(c.line);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == sd::Code::kInvalidArgument);
    CHECK_THAT(r.status().message(), Catch::Contains(c.needle));
  }
}

TEST_CASE("history files: writer, truncated last line, sort by time", "[unit][lab]") {
  sd::testing::TempDir dir("lab-history");
  const std::string path = dir.file("c0.jsonl");
  {
    auto w = HistoryWriter::open(path);
    REQUIRE(w.is_ok());
    REQUIRE((*w)->append({EventType::kInvoke, "c0", "acquire", 30, {}, {}, "", "", ""}).is_ok());
    REQUIRE((*w)->append({EventType::kOk, "c0", "acquire", 10, 1u, {}, "", "", ""}).is_ok());
  }
  { std::ofstream(path, std::ios::app) << R"({"type":"ok","process":"c0","f":"rel)"; }
  auto h = read_history(path);
  REQUIRE(h.is_ok());
  CHECK(h->events.size() == 2);
  CHECK(h->truncated_lines == 1);
  sort_by_time(h->events);
  CHECK(h->events[0].time_ns == 10);

  // A bad line that is not the last one is an error with file and line.
  const std::string bad = dir.file("bad.jsonl");
  { std::ofstream(bad) << "garbage\n" << to_json_line(h->events[0]) << "\n"; }
  auto b = read_history(bad);
  REQUIRE_FALSE(b.is_ok());
  CHECK_THAT(b.status().message(), Catch::Contains("bad.jsonl:1:"));

  const std::string merged = dir.file("merged.jsonl");
  REQUIRE(write_history(merged, h->events).is_ok());
  auto m = read_history(merged);
  REQUIRE(m.is_ok());
  CHECK(m->events.size() == 2);
  CHECK(m->truncated_lines == 0);
  CHECK(read_history(dir.file("missing.jsonl")).status().code() == sd::Code::kNotFound);
}

TEST_CASE("monotonic_ns never goes backwards", "[unit][lab]") {
  int64_t a = monotonic_ns();
  int64_t b = monotonic_ns();
  CHECK(a > 0);
  CHECK(b >= a);
}
