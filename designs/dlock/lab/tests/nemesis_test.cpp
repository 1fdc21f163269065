// The nemesis schedule: deterministic per seed, faults only of the enabled kinds, durations and
// spacing in their ranges, no target faulted twice at once; fault names per backend.

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>

#include "sd/dlock/lab/nemesis.hpp"
#include "sd/testing/testing.hpp"

using namespace sd::dlock::lab;

namespace {

NemesisOptions options(std::vector<FaultKind> faults, uint64_t seed = 7) {
  NemesisOptions o;
  o.faults = std::move(faults);
  o.duration_ms = 60'000;
  o.ttl_ms = 1'000;
  o.clients = 3;
  o.servers = 5;
  o.seed = seed;
  return o;
}

bool same(const std::vector<PlannedFault>& a, const std::vector<PlannedFault>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].at_ms != b[i].at_ms || a[i].kind != b[i].kind || a[i].target != b[i].target ||
        a[i].duration_ms != b[i].duration_ms)
      return false;
  }
  return true;
}

}  // namespace

TEST_CASE("nemesis schedule is the same for the same seed and differs for another", "[unit]") {
  auto all = {FaultKind::kPause, FaultKind::kCrash, FaultKind::kClock, FaultKind::kPartition};
  auto a = plan_faults(options(all, 42));
  auto b = plan_faults(options(all, 42));
  auto c = plan_faults(options(all, 43));
  REQUIRE_FALSE(a.empty());
  CHECK(same(a, b));
  CHECK_FALSE(same(a, c));
}

TEST_CASE("nemesis pauses start early and last 1.5 to 3 TTLs spaced 2 to 4 s", "[unit]") {
  auto o = options({FaultKind::kPause});
  auto plan = plan_faults(o);
  REQUIRE(plan.size() >= 10);
  CHECK(plan.front().at_ms == o.first_fault_ms);
  std::vector<int64_t> busy(o.clients, 0);
  for (size_t i = 0; i < plan.size(); ++i) {
    const auto& f = plan[i];
    CHECK(f.kind == FaultKind::kPause);
    CHECK(f.target < o.clients);
    CHECK(f.duration_ms >= 1'500);
    CHECK(f.duration_ms <= 3'000);
    CHECK(f.at_ms < o.duration_ms);
    CHECK(busy[f.target] <= f.at_ms);  // never paused twice at once
    busy[f.target] = f.at_ms + f.duration_ms;
    if (i > 0) {
      int64_t gap = f.at_ms - plan[i - 1].at_ms;
      CHECK(gap >= o.min_gap_ms);
      CHECK(gap <= o.max_gap_ms);
    }
  }
}

TEST_CASE("nemesis keeps at most one server down and jumps clocks past the TTL", "[unit]") {
  auto o = options({FaultKind::kCrash, FaultKind::kClock});
  auto plan = plan_faults(o);
  int64_t down_until = 0;
  bool saw_crash = false, saw_clock = false;
  for (const auto& f : plan) {
    CHECK(f.target < o.servers);
    if (f.kind == FaultKind::kCrash) {
      saw_crash = true;
      CHECK(f.at_ms >= down_until);
      CHECK(f.duration_ms >= 250);
      CHECK(f.duration_ms <= 750);
      down_until = f.at_ms + f.duration_ms;
    } else {
      saw_clock = true;
      CHECK(f.kind == FaultKind::kClock);
      CHECK(f.duration_ms > o.ttl_ms);
    }
  }
  CHECK(saw_crash);
  CHECK(saw_clock);
}

TEST_CASE("nemesis schedule is empty without faults", "[unit]") {
  CHECK(plan_faults(options({})).empty());
}

TEST_CASE("nemesis fault lists are checked against the backend", "[unit]") {
  auto ok = parse_faults("pause,restart,pause", BackendKind::kDlockd);
  REQUIRE(ok.is_ok());
  CHECK(*ok == std::vector<FaultKind>{FaultKind::kPause, FaultKind::kCrash});
  auto bad = parse_faults("pause,clock", BackendKind::kEtcd);
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message().find("clock") != std::string::npos);
  CHECK(bad.status().message().find("pause,crash,leader,partition") != std::string::npos);
  CHECK_FALSE(parse_faults("leader", BackendKind::kRedlock).is_ok());
  CHECK(parse_faults("clock", BackendKind::kRedlock).is_ok());
  CHECK(parse_faults("", BackendKind::kRedis)->empty());
  CHECK(parse_backend_kind("etcd") == BackendKind::kEtcd);
  CHECK_FALSE(parse_backend_kind("zookeeper"));
  CHECK(backend_server_count(BackendKind::kRedlock) == 5);
}

TEST_CASE("nemesis events pair starts with ends", "[unit]") {
  auto e = nemesis_event("pause", "c1", 2500, "SIGSTOP", 10);
  CHECK(e.type == EventType::kInfo);
  CHECK(e.process == "nemesis");
  CHECK(e.client == "c1");
  CHECK(e.value == 2500);
  CHECK(fault_end_name("pause") == std::string_view("resume"));
  CHECK(fault_end_name("kill") == std::string_view("restart"));
  CHECK(fault_end_name("partition") == std::string_view("heal"));
  CHECK_FALSE(fault_end_name("clock-jump"));
  CHECK_FALSE(fault_end_name("resume"));
}

TEST_CASE("clock offset file is shared with another mapping", "[unit]") {
  sd::testing::TempDir dir;
  auto f = ClockOffsetFile::create(dir.file("clock"));
  REQUIRE(f.is_ok());
  CHECK((*f)->offset_ns() == 0);
  (*f)->set_offset_ns(3'000'000'000);
  CHECK((*f)->offset_ns() == 3'000'000'000);
  CHECK(std::filesystem::file_size(dir.file("clock")) == sizeof(int64_t));
  std::string bytes = sd::testing::read_file(dir.file("clock"));
  int64_t v = 0;
  std::memcpy(&v, bytes.data(), sizeof v);
  CHECK(v == 3'000'000'000);
}

TEST_CASE("nemesis crashes several servers together when asked", "[unit]") {
  auto o = options({FaultKind::kCrash});
  o.crash_servers = 3;
  auto plan = plan_faults(o);
  REQUIRE_FALSE(plan.empty());
  for (const auto& f : plan) CHECK(f.count == 3);
  o.crash_servers = 9;  // clamped to the servers there are
  CHECK(plan_faults(o).front().count == o.servers);
  CHECK(plan_faults(options({FaultKind::kPause})).front().count == 1);
}
