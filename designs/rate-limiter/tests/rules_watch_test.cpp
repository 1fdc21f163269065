// Hot reload: explicit reload(), the polling watcher (rename-style edits, directories), broken
// edits keeping the old rules, readers racing reloads, and SIGHUP.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "sd/ratelimit/rules_watch.hpp"
#include "sd/testing/testing.hpp"

using namespace sd;
using namespace sd::ratelimit;
using namespace std::chrono_literals;

namespace {

std::string rules_with(uint64_t requests, const std::string& domain = "api") {
  const std::string r = std::to_string(requests);
  return "domain: " + domain + "\ndescriptors:\n  - key: ip\n    rate_limit: {unit: second, " +
         "requests_per_unit: " + r + "}\n  - key: user\n    rate_limit: {unit: minute, " +
         "requests_per_unit: " + r + "}\n";
}

// Writes a temp file and renames it over `path`, as editors and config managers do.
void replace_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text;
  std::filesystem::rename(tmp, path);
}

// requests_per_unit of the "ip" rule in `domain`, or 0 when there is none.
uint64_t ip_limit(const RulesSource& src, std::string_view domain = "api") {
  auto rs = src.current();
  auto m = rs->match(domain, std::vector<Entry>{{"ip", "1.2.3.4"}});
  return m ? m->rule->rate_limit->requests_per_unit : 0;
}

// Records on_reload outcomes from any thread.
struct Outcomes {
  std::mutex mu;
  std::vector<Status> seen;
  std::function<void(const Status&)> callback() {
    return [this](const Status& s) {
      std::lock_guard<std::mutex> lk(mu);
      seen.push_back(s);
    };
  }
  size_t count() {
    std::lock_guard<std::mutex> lk(mu);
    return seen.size();
  }
  Status last() {
    std::lock_guard<std::mutex> lk(mu);
    return seen.empty() ? Status() : seen.back();
  }
};

std::shared_ptr<const RuleSet> load_or_fail(const std::string& path) {
  auto r = RuleSet::load(path);
  INFO(r.status().message());
  REQUIRE(r.is_ok());
  return *r;
}

}  // namespace

TEST_CASE("RulesSource swaps rules and counts versions", "[unit]") {
  auto a = RuleSet::parse(rules_with(1), "a.yaml");
  auto b = RuleSet::parse(rules_with(2), "b.yaml");
  REQUIRE(a.is_ok());
  REQUIRE(b.is_ok());
  RulesSource src(*a);
  CHECK(src.version() == 1);
  auto held = src.current();
  src.set(*b);
  CHECK(src.version() == 2);
  CHECK(src.current() == *b);
  CHECK(held == *a);  // a request in flight keeps the rules it started with
}

TEST_CASE("reload picks up a rewritten file and keeps old rules on a broken edit", "[unit]") {
  testing::TempDir dir("sd-rules");
  const std::string path = dir.file("api.yaml");
  std::ofstream(path) << rules_with(5);
  RulesSource src(load_or_fail(path));
  Outcomes out;
  RulesWatcher w(path, src, 20ms, out.callback());

  std::ofstream(path) << rules_with(7);
  REQUIRE(w.reload().is_ok());
  CHECK(ip_limit(src) == 7);
  CHECK(src.version() == 2);
  CHECK(out.count() == 1);

  std::ofstream(path) << "domain: api\ndescriptors:\n  - key: ip\n    rate_limit: {unit: sec, "
                         "requests_per_unit: 1}\n";
  Status s = w.reload();
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.message().rfind(path + ":4: descriptors[0].rate_limit.unit: unknown unit 'sec'", 0) == 0);
  CHECK(ip_limit(src) == 7);
  CHECK(src.version() == 2);
  CHECK(out.count() == 2);
  CHECK(out.last().message() == s.message());

  std::filesystem::remove(path);
  CHECK(w.reload().code() == Code::kNotFound);
  CHECK(ip_limit(src) == 7);
}

TEST_CASE("the watcher notices a file replaced by rename", "[unit]") {
  testing::TempDir dir("sd-rules");
  const std::string path = dir.file("api.yaml");
  std::ofstream(path) << rules_with(5);
  RulesSource src(load_or_fail(path));
  Outcomes out;
  RulesWatcher w(path, src, 20ms, out.callback());
  w.start();

  // Same size as before: only the inode (and mtime) tell the files apart.
  replace_file(path, rules_with(6));
  CHECK(testing::eventually([&] { return ip_limit(src) == 6; }, 2s));
  REQUIRE(testing::eventually([&] { return out.count() == 1; }, 2s));
  CHECK(out.last().is_ok());

  // A broken edit is reported and the old rules stay.
  const size_t before = out.count();
  replace_file(path, "domain: api\ndescriptors: [\n");
  REQUIRE(testing::eventually([&] { return out.count() > before; }, 2s));
  CHECK_FALSE(out.last().is_ok());
  CHECK(out.last().message().find("YAML syntax error") != std::string::npos);
  CHECK(ip_limit(src) == 6);
  const uint64_t version = src.version();

  // No change, no reload: a few intervals pass without another attempt.
  const size_t attempts = out.count();
  std::this_thread::sleep_for(100ms);
  CHECK(out.count() == attempts);
  CHECK(src.version() == version);

  // Fixing the file recovers.
  replace_file(path, rules_with(8));
  CHECK(testing::eventually([&] { return ip_limit(src) == 8; }, 2s));
  // on_reload runs just after the swap: wait for it too.
  CHECK(testing::eventually([&] { return out.count() > attempts; }, 2s));
  CHECK(out.last().is_ok());
  w.stop();
  w.stop();  // idempotent
}

TEST_CASE("the watcher notices files added to and removed from a directory", "[unit]") {
  testing::TempDir dir("sd-rules");
  std::ofstream(dir.file("api.yaml")) << rules_with(5);
  RulesSource src(load_or_fail(dir.path().string()));
  RulesWatcher w(dir.path().string(), src, 20ms);
  w.start();

  replace_file(dir.file("web.yaml"), rules_with(3, "web"));
  CHECK(testing::eventually([&] { return ip_limit(src, "web") == 3; }, 2s));
  CHECK(ip_limit(src, "api") == 5);

  std::filesystem::remove(dir.file("web.yaml"));
  CHECK(testing::eventually([&] { return ip_limit(src, "web") == 0; }, 2s));
  CHECK(ip_limit(src, "api") == 5);
}

TEST_CASE("stop ends the watcher thread promptly", "[unit]") {
  testing::TempDir dir("sd-rules");
  std::ofstream(dir.file("api.yaml")) << rules_with(5);
  RulesSource src(load_or_fail(dir.file("api.yaml")));
  RulesWatcher w(dir.file("api.yaml"), src, std::chrono::hours(1));
  w.start();
  const auto t0 = std::chrono::steady_clock::now();
  w.stop();
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);
}

TEST_CASE("readers racing many reloads always see a whole rule set", "[unit]") {
  testing::TempDir dir("sd-rules");
  const std::string path = dir.file("api.yaml");
  std::ofstream(path) << rules_with(1);
  RulesSource src(load_or_fail(path));
  RulesWatcher w(path, src, 20ms);

  std::atomic<bool> done{false};
  std::atomic<uint64_t> torn{0}, reads{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      while (!done) {
        // Both rules of one set carry the same number; a mix would mean a torn set.
        auto rs = src.current();
        auto ip = rs->match("api", std::vector<Entry>{{"ip", "1"}});
        auto user = rs->match("api", std::vector<Entry>{{"user", "u"}});
        if (!ip || !user ||
            ip->rule->rate_limit->requests_per_unit != user->rule->rate_limit->requests_per_unit) {
          ++torn;
        }
        ++reads;
      }
    });
  }
  // Readers must overlap the reloads for the test to mean anything.
  REQUIRE(testing::eventually([&] { return reads.load() > 0; }, 5s));
  constexpr int kReloads = 200;
  for (int i = 2; i < 2 + kReloads; ++i) {
    replace_file(path, rules_with(static_cast<uint64_t>(i)));
    REQUIRE(w.reload().is_ok());
  }
  done = true;
  for (auto& t : readers) t.join();
  CHECK(torn == 0);
  CHECK(src.version() == 1 + kReloads);
  CHECK(ip_limit(src) == 1 + kReloads);
}

TEST_CASE("concurrent reload calls and the watcher thread end with the newest rules", "[unit]") {
  testing::TempDir dir("sd-rules");
  const std::string path = dir.file("api.yaml");
  std::ofstream(path) << rules_with(1);
  RulesSource src(load_or_fail(path));
  RulesWatcher w(path, src, 1ms);
  w.start();
  std::vector<std::thread> reloaders;
  for (int i = 0; i < 3; ++i) {
    reloaders.emplace_back([&] {
      for (int j = 0; j < 50; ++j) (void)w.reload();
    });
  }
  for (int i = 2; i <= 60; ++i) replace_file(path, rules_with(static_cast<uint64_t>(i)));
  for (auto& t : reloaders) t.join();
  CHECK(testing::eventually([&] { return ip_limit(src) == 60; }, 2s));
}

// In-process: Catch runs tests on its main thread and every earlier test joined its threads, so
// blocking SIGHUP here (before the watcher starts any thread) covers the whole process.
TEST_CASE("SIGHUP reloads the rules", "[unit]") {
  testing::TempDir dir("sd-rules");
  const std::string path = dir.file("api.yaml");
  std::ofstream(path) << rules_with(5);
  RulesSource src(load_or_fail(path));
  Outcomes out;
  RulesWatcher w(path, src, std::chrono::hours(1), out.callback());  // no polling help
  w.reload_on_sighup();

  std::ofstream(path) << rules_with(9);
  REQUIRE(::kill(::getpid(), SIGHUP) == 0);
  CHECK(testing::eventually([&] { return ip_limit(src) == 9; }, 2s));
  CHECK(testing::eventually([&] { return out.count() == 1; }, 2s));

  std::ofstream(path) << rules_with(11);
  REQUIRE(::kill(::getpid(), SIGHUP) == 0);
  CHECK(testing::eventually([&] { return ip_limit(src) == 11; }, 2s));

  const auto t0 = std::chrono::steady_clock::now();
  w.stop();
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);
  CHECK(out.count() == 2);  // stop's wake-up signal is not a reload
}
