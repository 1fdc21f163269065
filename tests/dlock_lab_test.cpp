// The CI-sized safety experiment (`dlock lab`, real processes): under client pauses longer than the
// TTL, the unfenced resource accepts overlapping critical sections (a mutual-exclusion violation)
// and the fenced resource rejects every stale write -- for dlockd and for etcd. Fixed seeds; about
// 20 s per backend (two 8 s runs).
//
// With fencing on, only the "linearizable" rule may still be violated: a paused holder's lease
// expires and another client acquires while the first has not released -- the lock history is
// genuinely not a mutex history (Jepsen's etcd finding). The resource-side rules must hold.

#if defined(SD_DLOCK_BIN)

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "sd/dlock/lab/nemesis.hpp"
#include "sd/testing/servers.hpp"
#include "sd/testing/testing.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using sd::testing::Process;
using sd::testing::ProcessOptions;
using sd::testing::TempDir;

namespace {

struct LabRun {
  int code = -1;
  json verdicts;
  std::string out, err, dir;
};

// One experiment: 3 clients, pauses only, TTL 1 s, 400 ms of work inside the lock (so a pause
// usually lands inside a critical section; the first pause comes at 1 s and targets the holder).
LabRun run_lab(const TempDir& tmp, const std::string& backend, bool fencing) {
  LabRun r;
  r.dir = tmp.file(backend + (fencing ? "-fenced" : "-unfenced"));
  std::vector<std::string> argv = {SD_DLOCK_BIN, "lab",       "--backend", backend,      "--faults",
                                   "pause",      "--clients", "3",         "--duration", "8s",
                                   "--ttl",      "1s",        "--work",    "400ms",      "--seed",
                                   "1",          "--out",     r.dir};
  if (!fencing) argv.push_back("--no-fencing");
  ProcessOptions po;
  po.stdout_path = r.dir + ".out";
  po.stderr_path = r.dir + ".err";
  po.die_with_parent = true;
  auto p = Process::spawn(argv, po);
  REQUIRE(p.is_ok());
  auto code = p->wait_for(45s);
  r.code = code ? *code : -1;
  r.out = sd::testing::read_file(po.stdout_path);
  r.err = sd::testing::read_file(po.stderr_path);
  r.verdicts = json::parse(sd::testing::read_file(r.dir + "/verdicts.json"), nullptr, false);
  return r;
}

const json& rule(const LabRun& r, const std::string& name) {
  static const json kMissing = json::object();
  if (!r.verdicts.is_object() || !r.verdicts.contains("rules")) return kMissing;
  for (const auto& x : r.verdicts["rules"]) {
    if (x.value("rule", "") == name) return x;
  }
  return kMissing;
}

std::string verdict(const LabRun& r, const std::string& name) {
  return rule(r, name).value("verdict", "missing");
}

// Writes the resource rejected (stale tokens), from the merged history.
size_t rejected_writes(const LabRun& r) {
  std::istringstream in(sd::testing::read_file(r.dir + "/history.jsonl"));
  size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    auto e = json::parse(line, nullptr, false);
    if (e.is_object() && e.value("process", "") == "resource" && e.value("f", "") == "write" &&
        e.value("type", "") == "fail")
      ++n;
  }
  return n;
}

void check_pause_experiment(const std::string& backend) {
  TempDir tmp("dlock-lab");

  LabRun unfenced = run_lab(tmp, backend, false);
  INFO("unfenced run:\n" << unfenced.out << unfenced.err);
  CHECK(unfenced.code == 1);
  CHECK(verdict(unfenced, "mutual-exclusion") == "violated");
  CHECK(rule(unfenced, "mutual-exclusion").value("violations", json::array()).size() >= 1);
  CHECK(sd::testing::read_file(unfenced.dir + "/timeline.html").find("class=\"violation\"") !=
        std::string::npos);

  LabRun fenced = run_lab(tmp, backend, true);
  INFO("fenced run:\n" << fenced.out << fenced.err);
  CHECK((fenced.code == 0 || fenced.code == 1));
  CHECK(verdict(fenced, "fencing") == "ok");  // zero stale writes accepted
  CHECK(verdict(fenced, "lost-update") == "ok");
  CHECK(verdict(fenced, "mutual-exclusion") == "ok");
  if (fenced.code == 1) CHECK(verdict(fenced, "linearizable") == "violated");  // the only one
  CHECK(rejected_writes(fenced) >= 1);  // a paused holder did come back and was turned away
}

}  // namespace

TEST_CASE("dlock lab: pauses break unfenced mutual exclusion on dlockd and fencing saves it",
          "[integration]") {
  check_pause_experiment("dlockd");
}

TEST_CASE("dlock lab: pauses break unfenced mutual exclusion on etcd and fencing saves it",
          "[integration]") {
  check_pause_experiment("etcd");
}

TEST_CASE("dlock lab: bad flags are usage errors naming what applies", "[integration]") {
  TempDir tmp("dlock-lab-usage");
  ProcessOptions po;
  po.stderr_path = tmp.file("err");
  po.stdout_path = tmp.file("out");
  auto p = Process::spawn({SD_DLOCK_BIN, "lab", "--backend", "etcd", "--faults", "clock"}, po);
  REQUIRE(p.is_ok());
  CHECK(p->wait_for(10s) == 2);
  CHECK(sd::testing::read_file(tmp.file("err")).find("pause,crash,leader,partition") !=
        std::string::npos);
  auto q = Process::spawn({SD_DLOCK_BIN, "lab", "--backend", "etcd", "--clients"}, po);
  REQUIRE(q.is_ok());
  CHECK(q->wait_for(10s) == 2);
}

namespace {

// One RESP command (inline form) to 127.0.0.1:port; the first reply line.
std::string redis_line(uint16_t port, const std::string& inline_command) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string cmd = inline_command + "\r\n";
    (void)::send(fd, cmd.data(), cmd.size(), 0);
    char buf[256];
    while (reply.find("\r\n") == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      reply.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return reply.substr(0, reply.find("\r\n"));
}

}  // namespace

// The clock fault's premise: Redis expires keys by its wall clock, so the LD_PRELOAD shim's jump
// makes a key with 10 s left vanish at once, while keys set afterwards keep their full TTL.
TEST_CASE("dlock lab: a clock jump on a redis instance expires its keys early", "[integration]") {
  const auto shim = std::filesystem::path(SD_DLOCK_BIN).parent_path() / "libsd_clockshift.so";
  REQUIRE(std::filesystem::exists(shim));
  TempDir tmp("dlock-lab-clock");
  auto clock = sd::dlock::lab::ClockOffsetFile::create(tmp.file("offset"));
  REQUIRE(clock.is_ok());
  sd::testing::RedisOptions ro;
  ro.env = {{"LD_PRELOAD", shim.string()}, {"SD_CLOCKSHIFT_FILE", (*clock)->path()}};
  auto redis = sd::testing::RedisServer::start(tmp.file("redis"), ro);
  REQUIRE(redis.is_ok());
  const uint16_t port = (*redis)->port();
  REQUIRE(redis_line(port, "SET k v PX 10000") == "+OK");
  CHECK(std::stol(redis_line(port, "PTTL k").substr(1)) > 9000);
  (*clock)->set_offset_ns(20'000'000'000);     // +20 s
  CHECK(redis_line(port, "PTTL k") == ":-2");  // gone
  REQUIRE(redis_line(port, "SET k2 v PX 10000") == "+OK");
  CHECK(std::stol(redis_line(port, "PTTL k2").substr(1)) > 9000);
}

#endif  // SD_DLOCK_BIN
