// The safety lab's processes end to end: a real dlockd, the fenced resource (dlock-lab-resource)
// and lab clients (dlock-lab-client) on loopback. Checks the histories they write, and that a
// client paused past its lease (SIGSTOP, Kleppmann's GC pause) has its stale write rejected.

#include <signal.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dlockd_test_support.hpp"
#include "sd/dlock/lab/history.hpp"

#ifndef SD_DLOCK_LAB_RESOURCE_BIN
#error "SD_DLOCK_LAB_RESOURCE_BIN must name the dlock-lab-resource binary (tests/CMakeLists.txt)"
#endif
#ifndef SD_DLOCK_LAB_CLIENT_BIN
#error "SD_DLOCK_LAB_CLIENT_BIN must name the dlock-lab-client binary (tests/CMakeLists.txt)"
#endif

using dlockd_test::Dlockd;
using sd::dlock::lab::Event;
using sd::dlock::lab::EventType;
using sd::testing::Process;
using sd::testing::ProcessOptions;
using sd::testing::TempDir;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

struct Resource {
  std::optional<Process> proc;
  uint16_t port = 0;
  std::string history;

  // Starts on port 0 and reads the bound port from its "listening on" line.
  static Resource start(const TempDir& dir, bool fencing) {
    Resource r;
    r.history = dir.file("resource.jsonl");
    ProcessOptions o;
    o.stdout_path = dir.file("resource.out");
    o.stderr_path = dir.file("resource.err");
    auto p = Process::spawn({SD_DLOCK_LAB_RESOURCE_BIN, "--port", "0", "--fencing",
                             fencing ? "on" : "off", "--history", r.history},
                            o);
    REQUIRE(p.is_ok());
    r.proc.emplace(std::move(*p));
    const std::string prefix = "listening on http://127.0.0.1:";
    bool up = sd::testing::eventually(
        [&] {
          std::string out = sd::testing::read_file(o.stdout_path);
          auto at = out.find(prefix);
          if (at == std::string::npos || out.find('\n', at) == std::string::npos) return false;
          r.port = static_cast<uint16_t>(std::stoi(out.substr(at + prefix.size())));
          return true;
        },
        5s);
    INFO(sd::testing::read_file(o.stderr_path));
    REQUIRE(up);
    REQUIRE(r.port != 0);
    return r;
  }

  json state() const {
    sd::net::HttpClient c("127.0.0.1", port);
    auto reply = dlockd_test::get(c, "/v1/state?key=counter");
    REQUIRE(reply.status == 200);
    return reply.body;
  }
};

Process start_client(const TempDir& dir, const Dlockd& d, const Resource& r,
                     const std::string& name, std::vector<std::string> extra) {
  ProcessOptions o;
  o.stdout_path = dir.file(name + ".out");
  o.stderr_path = dir.file(name + ".err");
  std::vector<std::string> argv = {SD_DLOCK_LAB_CLIENT_BIN,
                                   "--backend",
                                   "dlockd://127.0.0.1:" + std::to_string(d.port),
                                   "--resource",
                                   "127.0.0.1:" + std::to_string(r.port),
                                   "--process",
                                   name,
                                   "--history",
                                   dir.file(name + ".jsonl")};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto p = Process::spawn(argv, o);
  REQUIRE(p.is_ok());
  return std::move(*p);
}

std::vector<Event> history_of(const std::string& path) {
  auto h = sd::dlock::lab::read_history(path);
  REQUIRE(h.is_ok());
  return std::move(h->events);
}

// Every invoke is completed by the next event of the same operation (ok / fail / info); "lost"
// notices may come in between.
void require_well_formed(const std::vector<Event>& events) {
  std::optional<std::string> open;
  for (const Event& e : events) {
    if (e.f == "lost") continue;
    INFO(sd::dlock::lab::to_json_line(e));
    if (e.type == EventType::kInvoke) {
      REQUIRE_FALSE(open.has_value());
      open = e.f;
    } else {
      REQUIRE(open == e.f);
      open.reset();
    }
  }
}

size_t count(const std::vector<Event>& events, const std::string& f, EventType type) {
  size_t n = 0;
  for (const Event& e : events) n += (e.f == f && e.type == type) ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("lab clients and the fenced resource record a consistent history", "[integration]") {
  TempDir dir("sd-lab-client");
  Dlockd d = Dlockd::start(dir, "memory://");
  Resource res = Resource::start(dir, true);
  const std::vector<std::string> names = {"c0", "c1", "c2"};
  std::vector<Process> clients;
  for (size_t i = 0; i < names.size(); ++i) {
    clients.push_back(start_client(dir, d, res, names[i],
                                   {"--duration-s", "2", "--work-ms", "20", "--ttl-ms", "2000",
                                    "--seed", std::to_string(7 + i)}));
  }
  size_t client_writes = 0;
  for (size_t i = 0; i < clients.size(); ++i) {
    auto code = clients[i].wait_for(20s);
    INFO(names[i] << " stderr: " << sd::testing::read_file(dir.file(names[i] + ".err")));
    REQUIRE(code == 0);
    json summary = json::parse(sd::testing::read_file(dir.file(names[i] + ".out")), nullptr, false);
    REQUIRE(summary.is_object());
    REQUIRE(summary["process"] == names[i]);

    std::vector<Event> h = history_of(dir.file(names[i] + ".jsonl"));
    require_well_formed(h);
    for (const char* f : {"acquire", "read", "write", "release"}) {
      INFO(f);
      REQUIRE(count(h, f, EventType::kInvoke) > 0);
      REQUIRE(count(h, f, EventType::kOk) > 0);
    }
    REQUIRE(count(h, "write", EventType::kFail) == 0);
    REQUIRE(count(h, "lost", EventType::kInfo) == 0);
    for (const Event& e : h) REQUIRE(e.process == names[i]);
    client_writes += count(h, "write", EventType::kOk);
    REQUIRE(summary["writes_ok"] == count(h, "write", EventType::kOk));
  }

  // Fenced and fault-free: every write was accepted, in token order, each one increment.
  json st = res.state();
  REQUIRE(st["writes_rejected"] == 0);
  REQUIRE(st["writes_accepted"] == client_writes);
  REQUIRE(st["value"] == client_writes);
  REQUIRE(st["fencing"] == true);
  REQUIRE(res.proc->stop(5s) == 0);
  std::vector<Event> rh = history_of(res.history);
  uint64_t last_token = 0;
  int64_t expect = 0;
  for (const Event& e : rh) {
    INFO(sd::dlock::lab::to_json_line(e));
    REQUIRE(e.process == "resource");
    REQUIRE(e.type == EventType::kOk);
    REQUIRE(e.key == "counter");
    if (e.f != "write") continue;
    REQUIRE(*e.token > last_token);
    last_token = *e.token;
    REQUIRE(e.value == ++expect);
  }
  REQUIRE(static_cast<size_t>(expect) == client_writes);
}

TEST_CASE("a lab client paused past its TTL has its stale write rejected", "[integration]") {
  TempDir dir("sd-lab-pause");
  Dlockd d = Dlockd::start(dir, "memory://");
  Resource res = Resource::start(dir, true);
  // c0 holds the lock for a long "work" with a short lease; c1 is an ordinary client.
  Process slow = start_client(dir, d, res, "c0",
                              {"--ttl-ms", "600", "--work-ms", "1500", "--wait-ms", "3000"});
  Process other = start_client(dir, d, res, "c1", {"--ttl-ms", "2000", "--work-ms", "20"});
  const std::string slow_history = dir.file("c0.jsonl");

  // Pause c0 inside its critical section: right after a successful read.
  std::optional<uint64_t> paused_token;
  for (int attempt = 0; attempt < 5 && !paused_token; ++attempt) {
    auto in_section = [&]() -> std::optional<uint64_t> {
      auto h = sd::dlock::lab::read_history(slow_history);
      if (!h.is_ok() || h->events.empty()) return std::nullopt;
      const Event& last = h->events.back();
      if (last.f == "read" && last.type == EventType::kOk) return last.token;
      return std::nullopt;
    };
    REQUIRE(sd::testing::eventually([&] { return in_section().has_value(); }, 15s));
    REQUIRE(slow.signal(SIGSTOP).is_ok());
    std::this_thread::sleep_for(50ms);  // let a write that raced the signal reach the file
    paused_token = in_section();
    if (!paused_token) REQUIRE(slow.signal(SIGCONT).is_ok());
  }
  REQUIRE(paused_token.has_value());

  // While c0 sleeps its lease expires and c1 gets the lock with a newer token and reads.
  bool overtaken = sd::testing::eventually(
      [&] { return res.state()["max_token_seen"].get<uint64_t>() > *paused_token; }, 10s);
  REQUIRE(slow.signal(SIGCONT).is_ok());
  REQUIRE(overtaken);

  // c0 wakes up, writes with its old token: rejected. Its release finds the lock gone.
  std::optional<Event> write_done, release_done;
  bool lost = false;
  REQUIRE(sd::testing::eventually(
      [&] {
        auto h = sd::dlock::lab::read_history(slow_history);
        if (!h.is_ok()) return false;
        for (const Event& e : h->events) {
          if (e.token != paused_token || e.type == EventType::kInvoke) continue;
          if (e.f == "write" && !write_done) write_done = e;
          if (e.f == "release" && !release_done) release_done = e;
        }
        lost = count(h->events, "lost", EventType::kInfo) > 0;
        return write_done.has_value() && release_done.has_value() && lost;
      },
      10s));
  INFO(sd::dlock::lab::to_json_line(*write_done));
  REQUIRE(write_done->type == EventType::kFail);
  REQUIRE(write_done->error == "stale_token");
  REQUIRE(release_done->type == EventType::kFail);

  INFO("c0: " << sd::testing::read_file(dir.file("c0.err")));
  INFO("c1: " << sd::testing::read_file(dir.file("c1.err")));
  REQUIRE(slow.stop(10s) == 0);
  REQUIRE(other.stop(10s) == 0);
  json st = res.state();
  REQUIRE(st["writes_rejected"].get<uint64_t>() >= 1);
  REQUIRE(res.proc->stop(5s) == 0);

  bool resource_rejected = false;
  for (const Event& e : history_of(res.history)) {
    if (e.f == "write" && e.type == EventType::kFail && e.client == "c0" &&
        e.token == paused_token) {
      resource_rejected = true;
    }
  }
  REQUIRE(resource_rejected);
  // The lost session did not break c0's history (it goes on with a new session).
  std::vector<Event> h = history_of(slow_history);
  require_well_formed(h);
}
