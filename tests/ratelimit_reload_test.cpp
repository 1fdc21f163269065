// ratelimitd as a process: decisions over real HTTP, rules reload by SIGHUP and by file change,
// requests answered throughout repeated reloads, startup errors.

#include <signal.h>

#include <atomic>

#include "ratelimit_test_support.hpp"

using namespace ratelimitd_test;  // NOLINT(google-build-using-namespace)

namespace {

// A token bucket of `n` per hour: after n requests the next token is minutes away, so the counts
// below cannot be disturbed by refill or window boundaries.
std::string rules_with_limit(int n) {
  return "domain: api\n"
         "descriptors:\n"
         "  - key: remote_address\n"
         "    rate_limit: {unit: hour, requests_per_unit: " +
         std::to_string(n) + ", algorithm: token_bucket}\n";
}

// Sends requests for `value` until one is denied; returns how many were allowed (0 on errors).
int allowed_until_denied(sd::net::HttpClient& c, const std::string& value, int cap = 100) {
  for (int i = 0; i < cap; ++i) {
    int st = check(c, "api", "remote_address", value);
    if (st == 429) return i;
    if (st != 200) return -1;
  }
  return cap;
}

}  // namespace

TEST_CASE("ratelimitd: decisions over HTTP and reload on SIGHUP", "[integration]") {
  sd::testing::TempDir dir("rl-reload");
  const std::string rules = dir.file("rules.yaml");
  write_rules(rules, rules_with_limit(3));
  auto d = Ratelimitd::start(dir, rules, {"--reload-poll-ms", "0"});
  auto c = d.client();

  sd::net::ClientResponse resp;
  REQUIRE(check(c, "api", "remote_address", "10.0.0.1", &resp) == 200);
  REQUIRE(*resp.header("RateLimit-Policy") == "\"api.remote_address\";q=3;w=3600");
  REQUIRE(*resp.header("RateLimit") == "\"api.remote_address\";r=2;t=1200");
  REQUIRE(allowed_until_denied(c, "10.0.0.1") == 2);
  REQUIRE(check(c, "api", "remote_address", "10.0.0.1", &resp) == 429);
  REQUIRE(*resp.header("Retry-After") == "1200");
  REQUIRE(json::parse(resp.body)["overall_code"] == "OVER_LIMIT");
  REQUIRE(d.rules_version() == 1);

  // A new limit via SIGHUP (the watcher is off): fresh state with 5 per hour.
  write_rules(rules, rules_with_limit(5));
  REQUIRE(d.proc->signal(SIGHUP).is_ok());
  REQUIRE(sd::testing::eventually([&] { return d.rules_version() == 2; }));
  REQUIRE(allowed_until_denied(c, "10.0.0.1") == 5);

  // Invalid rules are reported and the old ones kept; the process keeps serving.
  write_rules(rules,
              "domain: api\ndescriptors:\n  - key: remote_address\n    rate_limit: {unit: sec}\n");
  REQUIRE(d.proc->signal(SIGHUP).is_ok());
  REQUIRE(sd::testing::eventually([&] {
    return sd::testing::read_file(d.log_path).find("rules.yaml:4") != std::string::npos;
  }));
  REQUIRE(d.rules_version() == 2);
  REQUIRE(check(c, "api", "remote_address", "10.0.0.1") == 429);
  REQUIRE(allowed_until_denied(c, "10.0.0.2") == 5);

  // The reload endpoint answers the outcome itself.
  auto r = c.post_json("/v1/rules/reload", json::object());
  REQUIRE(r.is_ok());
  REQUIRE(r->status == 400);
  REQUIRE(json::parse(r->body)["error"] == "invalid_rules");
  auto m = c.get("/metrics");
  REQUIRE(m.is_ok());
  REQUIRE(m->body.find("ratelimit_rules_reloads_total{result=\"error\"} 2") != std::string::npos);
  REQUIRE(m->body.find("ratelimit_rules_reloads_total{result=\"ok\"} 1") != std::string::npos);
  REQUIRE(d.proc->running());
}

TEST_CASE("ratelimitd: a changed rules file is reloaded by the watcher", "[integration]") {
  sd::testing::TempDir dir("rl-watch");
  const std::string rules = dir.file("rules.yaml");
  write_rules(rules, rules_with_limit(2));
  auto d = Ratelimitd::start(dir, rules, {"--reload-poll-ms", "20"});
  auto c = d.client();
  REQUIRE(allowed_until_denied(c, "a") == 2);
  write_rules(rules, rules_with_limit(4));
  REQUIRE(sd::testing::eventually([&] { return d.rules_version() == 2; }));
  REQUIRE(allowed_until_denied(c, "a") == 4);
}

TEST_CASE("ratelimitd: requests are answered during 50 reloads", "[integration]") {
  sd::testing::TempDir dir("rl-reloads");
  const std::string rules = dir.file("rules.yaml");
  write_rules(rules, rules_with_limit(1000));
  auto d = Ratelimitd::start(dir, rules, {"--reload-poll-ms", "5", "--threads", "2"});

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::string first_failure;
  std::thread client([&] {
    auto c = d.client();
    for (int i = 0; !stop.load(); ++i) {
      int st = check(c, "api", "remote_address", "client-" + std::to_string(i % 50));
      if (st == 200 || st == 429) {
        ok.fetch_add(1);
      } else if (failed.fetch_add(1) == 0) {
        first_failure = "status " + std::to_string(st);
      }
    }
  });
  for (int i = 0; i < 50; ++i) {
    write_rules(rules, rules_with_limit(1000 + i % 7));
    if (i % 5 == 0) (void)d.proc->signal(SIGHUP);  // both reload paths, concurrently
    std::this_thread::sleep_for(10ms);
  }
  // Let the client run past the last reload, then stop it.
  int seen = ok.load();
  REQUIRE(sd::testing::eventually([&] { return ok.load() > seen + 20; }));
  stop.store(true);
  client.join();
  INFO(first_failure);
  REQUIRE(failed.load() == 0);
  REQUIRE(ok.load() > 100);
  REQUIRE(d.rules_version() > 10);
  REQUIRE(d.proc->running());
}

TEST_CASE("ratelimitd: invalid rules or a missing --rules stop startup", "[integration]") {
  sd::testing::TempDir dir("rl-start");
  const std::string rules = dir.file("bad.yaml");
  write_rules(rules, "domain: api\ndescriptors:\n  - key: k\n    rate_limit: {unit: hour}\n");
  sd::testing::ProcessOptions opts;
  opts.stdout_path = opts.stderr_path = dir.file("out.log");
  auto p = sd::testing::Process::spawn({SD_RATELIMITD_BIN, "--port", "0", "--rules", rules}, opts);
  REQUIRE(p.is_ok());
  REQUIRE(p->wait_for(10s) == 1);
  REQUIRE(sd::testing::read_file(dir.file("out.log")).find("bad.yaml:4") != std::string::npos);

  opts.stdout_path = opts.stderr_path = dir.file("out2.log");
  opts.env["RATELIMITD_RULES"] = "";
  auto q = sd::testing::Process::spawn({SD_RATELIMITD_BIN, "--port", "0"}, opts);
  REQUIRE(q.is_ok());
  REQUIRE(q->wait_for(10s) == 2);
  REQUIRE(sd::testing::read_file(dir.file("out2.log")).find("--rules") != std::string::npos);
}
