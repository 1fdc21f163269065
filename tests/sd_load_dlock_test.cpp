// sd-load-dlock (tools/loadgen): a short run through the client library gives sane JSON.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "sd/testing/testing.hpp"

#ifndef SD_LOAD_DLOCK_BIN
#error "SD_LOAD_DLOCK_BIN must be defined by CMake"
#endif

using sd::testing::Process;
using sd::testing::ProcessOptions;
using sd::testing::TempDir;

namespace {

// Each call writes fresh files (a section re-runs the test case's top part in the same dir).
nlohmann::json run_tool(const std::vector<std::string>& args, int& exit_code, TempDir& dir) {
  static int run = 0;
  const std::string out = dir.file("out" + std::to_string(++run) + ".json");
  ProcessOptions o;
  o.stdout_path = out;
  o.stderr_path = dir.file("err.txt");
  std::vector<std::string> argv = {SD_LOAD_DLOCK_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = Process::spawn(argv, o);
  REQUIRE(p.is_ok());
  auto code = p->wait_for(std::chrono::seconds(30));
  REQUIRE(code.has_value());
  exit_code = *code;
  auto text = sd::testing::read_file(out);
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

}  // namespace

TEST_CASE("sd-load-dlock cycles locks through the client library", "[integration]") {
  TempDir dir;
  int code = -1;
  auto j =
      run_tool({"-b", "memory://", "-c", "4", "-d", "0.5", "--warmup", "0.1", "-q"}, code, dir);
  REQUIRE(code == 0);
  REQUIRE(j.is_object());
  CHECK(j["workload"] == "dlock-client-cycle");
  CHECK(j["target"] == "memory://");
  CHECK(j["connections"] == 4);
  CHECK(j["errors"] == 0);
  CHECK(j["ok"].get<uint64_t>() > 100);  // in-process cycles are microseconds each
  CHECK(j["throughput_ops_s"].get<double>() > 0);
  CHECK(j["latency_us"]["p99"].get<double>() >= j["latency_us"]["p50"].get<double>());

  SECTION("contended on one name: every cycle still completes") {
    auto h = run_tool(
        {"-b", "memory://", "-c", "4", "-d", "0.5", "--warmup", "0", "--dist", "hot", "-q"}, code,
        dir);
    REQUIRE(code == 0);
    CHECK(h["errors"] == 0);
    CHECK(h["ok"].get<uint64_t>() > 0);
  }
}

TEST_CASE("sd-load-dlock rejects a bad backend URI with a usage error", "[integration]") {
  TempDir dir;
  int code = -1;
  (void)run_tool({"-b", "nosuch://x", "-d", "0.1", "-q"}, code, dir);
  CHECK(code == 2);
  CHECK_THAT(sd::testing::read_file(dir.file("err.txt")), Catch::Contains("unknown scheme"));
}
