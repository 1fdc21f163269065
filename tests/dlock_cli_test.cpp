// The `dlock` command-line tool against a real dlockd process.

#if defined(SD_DLOCKD_BIN) && defined(SD_DLOCK_BIN)

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "sd/net/client.hpp"
#include "sd/testing/testing.hpp"

using namespace std::chrono_literals;
using nlohmann::json;
using sd::testing::Process;
using sd::testing::ProcessOptions;
using sd::testing::TempDir;

namespace {

struct Dlockd {
  uint16_t port = 0;
  std::optional<Process> proc;
  std::string uri() const { return "dlockd://127.0.0.1:" + std::to_string(port); }
};

Dlockd start_dlockd(const TempDir& dir) {
  for (int i = 0; i < 5; ++i) {
    Dlockd d;
    d.port = sd::testing::free_port();
    ProcessOptions po;
    po.stderr_path = dir.file("dlockd.log");
    auto p = Process::spawn(
        {SD_DLOCKD_BIN, "--port", std::to_string(d.port), "--store", "memory://"}, po);
    REQUIRE(p.is_ok());
    d.proc.emplace(std::move(*p));
    if (sd::testing::wait_for_port(d.port, 10s)) return d;
  }
  FAIL("dlockd did not start: " << sd::testing::read_file(dir.file("dlockd.log")));
  return {};
}

struct Ran {
  int code = -1;
  std::string out, err;
};

// Runs dlock with args; waits up to `timeout`.
Ran dlock(const TempDir& dir, const std::vector<std::string>& args,
          std::chrono::milliseconds timeout = 20s, std::map<std::string, std::string> env = {}) {
  static int n = 0;
  ++n;
  std::vector<std::string> argv{SD_DLOCK_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessOptions po;
  po.stdout_path = dir.file("out" + std::to_string(n));
  po.stderr_path = dir.file("err" + std::to_string(n));
  po.env = std::move(env);
  auto p = Process::spawn(argv, po);
  REQUIRE(p.is_ok());
  auto code = p->wait_for(timeout);
  Ran r;
  r.code = code ? *code : -1;
  r.out = sd::testing::read_file(po.stdout_path);
  r.err = sd::testing::read_file(po.stderr_path);
  return r;
}

json parse(const std::string& s) {
  auto j = json::parse(s, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

}  // namespace

TEST_CASE("dlock run: concurrent runs on one name never overlap and tokens increase",
          "[integration]") {
  TempDir dir("dlock-cli");
  auto d = start_dlockd(dir);
  const std::string log = dir.file("intervals");
  const std::string script = "echo \"start $(date +%s%N) $DLOCK_TOKEN\" >> " + log +
                             "; sleep 0.3; echo \"end $(date +%s%N) $DLOCK_TOKEN\" >> " + log;
  constexpr int kRuns = 4;
  std::vector<Process> procs;
  for (int i = 0; i < kRuns; ++i) {
    ProcessOptions po;
    po.stderr_path = dir.file("run-err");
    auto p = Process::spawn({SD_DLOCK_BIN, "--uri", d.uri(), "run", "--wait", "30s", "cli/serial",
                             "--", "/bin/sh", "-c", script},
                            po);
    REQUIRE(p.is_ok());
    procs.push_back(std::move(*p));
  }
  for (auto& p : procs) CHECK(p.wait_for(30s) == 0);
  INFO(sd::testing::read_file(dir.file("run-err")));

  struct Interval {
    long long start = -1, end = -1;
    unsigned long long token = 0;
  };
  std::map<unsigned long long, Interval> by_token;
  std::istringstream in(sd::testing::read_file(log));
  std::string what;
  long long ts = 0;
  unsigned long long token = 0;
  while (in >> what >> ts >> token) {
    auto& iv = by_token[token];
    iv.token = token;
    (what == "start" ? iv.start : iv.end) = ts;
  }
  REQUIRE(by_token.size() == kRuns);
  std::vector<Interval> ivs;
  for (auto& [t, iv] : by_token) {
    REQUIRE(iv.start > 0);
    REQUIRE(iv.end > iv.start);
    ivs.push_back(iv);
  }
  std::sort(ivs.begin(), ivs.end(), [](auto& a, auto& b) { return a.start < b.start; });
  for (size_t i = 1; i < ivs.size(); ++i) {
    CHECK(ivs[i - 1].end < ivs[i].start);    // disjoint
    CHECK(ivs[i - 1].token < ivs[i].token);  // fencing tokens increase in lock order
  }
}

TEST_CASE("dlock run: exit codes", "[integration]") {
  TempDir dir("dlock-cli");
  auto d = start_dlockd(dir);
  const std::string u = d.uri();

  CHECK(dlock(dir, {"--uri", u, "run", "cli/x", "--", "/bin/sh", "-c", "exit 7"}).code == 7);
  CHECK(dlock(dir, {"--uri", u, "run", "cli/x", "--", "/bin/sh", "-c", "exit 0"}).code == 0);
  CHECK(dlock(dir, {"--uri", u, "run", "cli/x", "--", "/bin/sh", "-c", "kill -9 $$"}).code ==
        128 + 9);
  // DLOCK_URI is the --uri fallback; the child sees its token/name/lease.
  auto env = dlock(dir,
                   {"run", "cli/env", "--", "/bin/sh", "-c",
                    "echo \"$DLOCK_NAME $DLOCK_TOKEN ${#DLOCK_LEASE_ID}\""},
                   20s, {{"DLOCK_URI", u}});
  CHECK(env.code == 0);
  CHECK_THAT(env.out, Catch::StartsWith("cli/env "));
  CHECK_THAT(env.out, Catch::EndsWith(" 32\n"));

  auto missing = dlock(dir, {"--uri", u, "run", "cli/x", "--", "/nonexistent/command"});
  CHECK(missing.code == 127);
  CHECK_THAT(missing.err, Catch::Contains("cannot execute"));

  // Held elsewhere (an `acquire` lease lives for its ttl): --wait 200ms elapses -> 75.
  auto held = dlock(dir, {"--uri", u, "acquire", "cli/busy", "--ttl", "30s"});
  REQUIRE(held.code == 0);
  auto start = std::chrono::steady_clock::now();
  auto busy = dlock(dir, {"--uri", u, "run", "--wait", "200ms", "cli/busy", "--", "true"});
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(busy.code == 75);
  CHECK(took >= 200ms);
  CHECK(took < 5s);

  // Usage errors -> 64; --help -> 0.
  CHECK(dlock(dir, {"--uri", u, "run"}).code == 64);
  CHECK(dlock(dir, {"--uri", u, "run", "cli/x"}).code == 64);
  CHECK(dlock(dir, {"--uri", u, "run", "--ttl", "soon", "cli/x", "--", "true"}).code == 64);
  CHECK(dlock(dir, {"--uri", u, "acquire", "cli/x", "--wait", "1y"}).code == 64);
  CHECK(dlock(dir, {"frobnicate"}).code == 64);
  CHECK(dlock(dir, {}).code == 64);
  CHECK(dlock(dir, {"--uri", "ftp://nowhere", "status", "x"}).code == 64);
  CHECK(dlock(dir, {"--uri", "dlockd://127.0.0.1", "status", "x"}).code == 64);
  CHECK(dlock(dir, {"--uri", "redis://127.0.0.1:6379", "status", "x"}).code == 69);
  auto help = dlock(dir, {"--help"});
  CHECK(help.code == 0);
  CHECK_THAT(help.out, Catch::Contains("Exit codes"));
  auto run_help = dlock(dir, {"run", "--help"});
  CHECK(run_help.code == 0);
  CHECK_THAT(run_help.out, Catch::Contains("76"));
  CHECK_THAT(dlock(dir, {"acquire", "--help"}).out, Catch::Contains("NOT kept alive"));

  // Backend unreachable -> 69.
  const uint16_t dead = sd::testing::free_port();
  CHECK(dlock(dir, {"--uri", "dlockd://127.0.0.1:" + std::to_string(dead), "status", "x"}).code ==
        69);
  CHECK(
      dlock(dir, {"--uri", "dlockd://127.0.0.1:" + std::to_string(dead), "run", "x", "--", "true"})
          .code == 69);
}

TEST_CASE("dlock run: lock lost -> CMD terminated, exit 76", "[integration]") {
  TempDir dir("dlock-cli");
  auto d = start_dlockd(dir);
  const std::string pidfile = dir.file("child.pid");
  ProcessOptions po;
  po.stderr_path = dir.file("run-err");
  auto run = Process::spawn(
      {SD_DLOCK_BIN, "--uri", d.uri(), "run", "--ttl", "1s", "--grace", "1s", "cli/lost", "--",
       "/bin/sh", "-c", "echo $$ > " + pidfile + "; exec sleep 30"},
      po);
  REQUIRE(run.is_ok());

  // Find the holder's lease through `dlock status`, then revoke it behind dlock's back.
  std::string lease;
  for (int i = 0; i < 500 && lease.empty(); ++i) {
    auto st = dlock(dir, {"--uri", d.uri(), "status", "cli/lost"});
    if (st.code == 0) {
      auto j = parse(st.out);
      if (!j["holders"].empty()) lease = j["holders"][0]["lease_id"].get<std::string>();
    }
    if (lease.empty()) std::this_thread::sleep_for(10ms);
  }
  REQUIRE_FALSE(lease.empty());
  pid_t child = 0;
  for (int i = 0; i < 500 && child == 0; ++i) {
    std::istringstream(sd::testing::read_file(pidfile)) >> child;
    if (child == 0) std::this_thread::sleep_for(10ms);
  }
  REQUIRE(child > 0);
  REQUIRE(::kill(child, 0) == 0);

  sd::net::HttpClient http("127.0.0.1", d.port);
  auto del = http.del("/v1/leases/" + lease);
  REQUIRE(del.is_ok());
  CHECK(del->status / 100 == 2);

  auto start = std::chrono::steady_clock::now();
  auto code = run->wait_for(5s);
  auto took = std::chrono::steady_clock::now() - start;
  INFO(sd::testing::read_file(dir.file("run-err")));
  REQUIRE(code.has_value());
  CHECK(*code == 76);
  CHECK(took < 3s);
  CHECK_THAT(sd::testing::read_file(dir.file("run-err")), Catch::Contains("lost"));
  // dlock reaped its child; nothing with that pid is left (modulo pid reuse, vanishingly rare).
  CHECK((::kill(child, 0) == -1 && errno == ESRCH));
}

TEST_CASE("dlock run: SIGTERM/SIGINT are forwarded to CMD or abort the wait", "[integration]") {
  TempDir dir("dlock-cli");
  auto d = start_dlockd(dir);
  auto holders = [&](const std::string& name) {
    auto st = dlock(dir, {"--uri", d.uri(), "status", name});
    return st.code == 0 ? parse(st.out)["holders"].size() : size_t{0};
  };
  auto waiters = [&](const std::string& name) {
    auto st = dlock(dir, {"--uri", d.uri(), "status", name});
    return st.code == 0 ? parse(st.out)["waiters"].size() : size_t{0};
  };

  // While CMD runs: SIGTERM to dlock reaches CMD; dlock exits with CMD's status and releases.
  auto run = Process::spawn(
      {SD_DLOCK_BIN, "--uri", d.uri(), "run", "cli/sig", "--", "/bin/sh", "-c", "exec sleep 30"});
  REQUIRE(run.is_ok());
  for (int i = 0; i < 500 && holders("cli/sig") == 0; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(holders("cli/sig") == 1);
  std::this_thread::sleep_for(100ms);  // let the child exec
  REQUIRE(run->signal(SIGTERM).is_ok());
  auto code = run->wait_for(5s);
  REQUIRE(code.has_value());
  CHECK(*code == 128 + SIGTERM);
  CHECK(holders("cli/sig") == 0);

  // While waiting for the lock: SIGINT aborts the wait (exit 130) and leaves no waiter behind.
  REQUIRE(dlock(dir, {"--uri", d.uri(), "acquire", "cli/sig", "--ttl", "30s"}).code == 0);
  auto waiting = Process::spawn(
      {SD_DLOCK_BIN, "--uri", d.uri(), "run", "--wait", "60s", "cli/sig", "--", "true"});
  REQUIRE(waiting.is_ok());
  for (int i = 0; i < 500 && waiters("cli/sig") == 0; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(waiters("cli/sig") == 1);
  REQUIRE(waiting->signal(SIGINT).is_ok());
  auto wcode = waiting->wait_for(5s);
  REQUIRE(wcode.has_value());
  CHECK(*wcode == 128 + SIGINT);
  CHECK(waiters("cli/sig") == 0);
}

TEST_CASE("dlock acquire/status/list/release print JSON", "[integration]") {
  TempDir dir("dlock-cli");
  auto d = start_dlockd(dir);
  const std::string u = d.uri();
  auto acq = dlock(dir, {"--uri", u, "acquire", "cli/json/a", "--ttl", "20s"});
  REQUIRE(acq.code == 0);
  auto a = parse(acq.out);
  CHECK(a["name"] == "cli/json/a");
  CHECK(a["ttl_ms"] == 20000);
  const auto token = a["token"].get<unsigned long long>();
  const auto lease = a["lease_id"].get<std::string>();
  CHECK(token > 0);
  CHECK(lease.size() == 32);

  auto again = dlock(dir, {"--uri", u, "acquire", "cli/json/a"});
  CHECK(again.code == 1);
  CHECK_THAT(again.err, Catch::Contains("locked"));

  auto st = dlock(dir, {"--uri", u, "status", "cli/json/a"});
  REQUIRE(st.code == 0);
  auto s = parse(st.out);
  REQUIRE(s["holders"].size() == 1);
  CHECK(s["holders"][0]["token"] == token);
  CHECK(s["holders"][0]["lease_id"] == lease);
  CHECK(s["last_token"] == token);

  auto ls = dlock(dir, {"list", "--prefix", "cli/json/", "--uri", u});
  REQUIRE(ls.code == 0);
  auto l = parse(ls.out);
  REQUIRE(l["locks"].size() == 1);
  CHECK(l["locks"][0]["name"] == "cli/json/a");

  auto bad = dlock(dir, {"--uri", u, "release", "cli/json/a", "--lease", lease, "--token",
                         std::to_string(token + 1)});
  CHECK(bad.code == 1);
  auto rel = dlock(dir, {"--uri", u, "release", "cli/json/a", "--lease", lease, "--token",
                         std::to_string(token)});
  CHECK(rel.code == 0);
  CHECK(parse(rel.out)["released"] == true);
  auto st2 = parse(dlock(dir, {"--uri", u, "status", "cli/json/a"}).out);
  CHECK(st2["holders"].empty());
  CHECK(dlock(dir, {"--uri", u, "status", "cli/json/never"}).code == 1);
}

#endif  // SD_DLOCKD_BIN && SD_DLOCK_BIN
