// dlock-check (designs/dlock/lab): the checker CLI on history files -- report, JSON, exit codes.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sd/testing/testing.hpp"

#ifndef SD_DLOCK_CHECK_BIN
#error "SD_DLOCK_CHECK_BIN must be defined by CMake"
#endif

using sd::testing::Process;
using sd::testing::ProcessOptions;
using sd::testing::TempDir;

namespace {

struct Run {
  int code = -1;
  std::string out, err;
};

Run run_check(const std::vector<std::string>& args, TempDir& dir) {
  static int n = 0;
  ++n;
  ProcessOptions o;
  o.stdout_path = dir.file("out" + std::to_string(n) + ".txt");
  o.stderr_path = dir.file("err" + std::to_string(n) + ".txt");
  std::vector<std::string> argv = {SD_DLOCK_CHECK_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = Process::spawn(argv, o);
  REQUIRE(p.is_ok());
  auto code = p->wait_for(std::chrono::seconds(30));
  REQUIRE(code.has_value());
  return {*code, sd::testing::read_file(o.stdout_path), sd::testing::read_file(o.stderr_path)};
}

std::string write_file(TempDir& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir.file(name)) << text;
  return dir.file(name);
}

// Two clean lock cycles (c0 then c1) with their resource read/write.
const char* kClean =
    R"({"type":"invoke","process":"c0","f":"acquire","time_ns":1000000000}
{"type":"invoke","process":"c1","f":"acquire","time_ns":1000500000}
{"type":"ok","process":"c0","f":"acquire","time_ns":1001000000,"token":1}
{"type":"ok","process":"resource","f":"read","time_ns":1002000000,"token":1,"value":0,"key":"counter","client":"c0"}
{"type":"ok","process":"resource","f":"write","time_ns":1003000000,"token":1,"value":1,"key":"counter","client":"c0"}
{"type":"invoke","process":"c0","f":"release","time_ns":1004000000,"token":1}
{"type":"ok","process":"c1","f":"acquire","time_ns":1004500000,"token":2}
{"type":"ok","process":"c0","f":"release","time_ns":1005000000,"token":1}
{"type":"ok","process":"resource","f":"read","time_ns":1006000000,"token":2,"value":1,"key":"counter","client":"c1"}
{"type":"ok","process":"resource","f":"write","time_ns":1007000000,"token":2,"value":2,"key":"counter","client":"c1"}
{"type":"invoke","process":"c1","f":"release","time_ns":1008000000,"token":2}
{"type":"ok","process":"c1","f":"release","time_ns":1009000000,"token":2}
)";

// c0's lease runs out while it is paused; c1 takes the lock; the unfenced resource accepts c0's
// late write. Lines out of time order: the CLI sorts.
const char* kBad =
    R"({"type":"invoke","process":"c0","f":"acquire","time_ns":1000000000}
{"type":"ok","process":"c0","f":"acquire","time_ns":1001000000,"token":1}
{"type":"ok","process":"resource","f":"read","time_ns":1002000000,"token":1,"value":0,"key":"counter","client":"c0"}
{"type":"ok","process":"resource","f":"write","time_ns":3500000000,"token":1,"value":1,"key":"counter","client":"c0"}
{"type":"invoke","process":"c1","f":"acquire","time_ns":1500000000}
{"type":"ok","process":"c1","f":"acquire","time_ns":3001000000,"token":2}
{"type":"ok","process":"resource","f":"read","time_ns":3002000000,"token":2,"value":0,"key":"counter","client":"c1"}
{"type":"ok","process":"resource","f":"write","time_ns":3003000000,"token":2,"value":1,"key":"counter","client":"c1"}
)";

}  // namespace

TEST_CASE("dlock-check: a clean history exits 0 with every rule ok", "[integration]") {
  TempDir dir;
  auto path = write_file(dir, "clean.jsonl", kClean);
  Run r = run_check({path}, dir);
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find("12 events") != std::string::npos);
  CHECK(r.out.find("mutual-exclusion  OK") != std::string::npos);
  CHECK(r.out.find("linearizable      OK") != std::string::npos);
  CHECK(r.out.find("result: no violation found") != std::string::npos);

  SECTION("--json") {
    Run j = run_check({path, "--json"}, dir);
    CHECK(j.code == 0);
    auto doc = nlohmann::json::parse(j.out, nullptr, false);
    REQUIRE(doc.is_object());
    CHECK(doc["violated"] == false);
    CHECK(doc["rules"].size() == 4);
  }
  SECTION("a search budget too small for it: unknown and exit 0") {
    Run u = run_check({path, "--max-states", "1"}, dir);
    CHECK(u.code == 0);
    CHECK(u.out.find("linearizable      UNKNOWN") != std::string::npos);
    CHECK(u.out.find("unknown: linearizable") != std::string::npos);
  }
}

TEST_CASE("dlock-check: a violating history exits 1 and names the operations", "[integration]") {
  TempDir dir;
  auto path = write_file(dir, "bad.jsonl", kBad);
  Run r = run_check({path}, dir);
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(r.out.find("mutual-exclusion  VIOLATED") != std::string::npos);
  CHECK(r.out.find("fencing           VIOLATED") != std::string::npos);
  CHECK(r.out.find("lost-update       VIOLATED") != std::string::npos);
  CHECK(r.out.find("linearizable      VIOLATED") != std::string::npos);
  CHECK(r.out.find("resource write ok client=c0 key=counter token=1 value=1 @2500.000ms") !=
        std::string::npos);

  Run j = run_check({"--json", path}, dir);
  CHECK(j.code == 1);
  auto doc = nlohmann::json::parse(j.out, nullptr, false);
  REQUIRE(doc.is_object());
  CHECK(doc["violated"] == true);
  CHECK(doc["rules"][3]["verdict"] == "violated");
  CHECK_FALSE(doc["rules"][3]["violations"][0]["events"].empty());
}

TEST_CASE("dlock-check: bad input and usage exit 2", "[integration]") {
  TempDir dir;
  Run missing = run_check({dir.file("nope.jsonl")}, dir);
  CHECK(missing.code == 2);
  CHECK(missing.err.find("cannot open history") != std::string::npos);

  auto bad = write_file(dir, "bad.jsonl", "{\"type\":\"ok\"}\nnot json\n");
  Run b = run_check({bad}, dir);
  CHECK(b.code == 2);
  CHECK(b.err.find("bad.jsonl:1") != std::string::npos);

  CHECK(run_check({}, dir).code == 2);
  CHECK(run_check({bad, "--max-states", "0"}, dir).code == 2);
  CHECK(run_check({"--help"}, dir).code == 0);
}
