// Matching request descriptors to rules (envoy semantics), state keys, and loading directories.

#include <fstream>
#include <set>
#include <string>

#include <catch2/catch.hpp>

#include "sd/ratelimit/rules.hpp"
#include "sd/testing/testing.hpp"

using namespace sd;
using namespace sd::ratelimit;

namespace {

constexpr const char* kRules = R"(domain: api
descriptors:
  - key: remote_address
    rate_limit: {unit: second, requests_per_unit: 10}
  - key: remote_address
    value: 10.0.0.9
    rate_limit: {unit: second, requests_per_unit: 1000}
  - key: path
    value: /login
    descriptors:
      - key: remote_address
        rate_limit: {unit: minute, requests_per_unit: 5, algorithm: sliding_window}
  - key: path
    descriptors:
      - key: user
        rate_limit: {unit: minute, requests_per_unit: 60}
  - key: health
    rate_limit: {unlimited: true}
  - key: tenant
    concurrency: {max_in_flight: 3}
)";

std::shared_ptr<const RuleSet> rules() {
  auto r = RuleSet::parse(kRules, "api.yaml");
  INFO(r.status().message());
  REQUIRE(r.is_ok());
  return *r;
}

std::optional<Match> match(const RuleSet& rs, std::vector<Entry> entries,
                           std::string_view domain = "api") {
  return rs.match(domain, entries);
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

}  // namespace

TEST_CASE("a key-only node matches any value with one state key per value", "[unit]") {
  auto rs = rules();
  auto a = match(*rs, {{"remote_address", "10.0.0.1"}});
  REQUIRE(a);
  CHECK(a->rule->id == "api/remote_address");
  CHECK(a->key == "api/remote_address|remote_address=10.0.0.1");
  auto b = match(*rs, {{"remote_address", "10.0.0.2"}});
  REQUIRE(b);
  CHECK(b->rule == a->rule);
  CHECK(b->key != a->key);
}

TEST_CASE("an exact value beats a key-only sibling", "[unit]") {
  auto rs = rules();
  auto m = match(*rs, {{"remote_address", "10.0.0.9"}});
  REQUIRE(m);
  CHECK(m->rule->id == "api/remote_address=10.0.0.9");
  CHECK(m->rule->rate_limit->requests_per_unit == 1000);
  CHECK(m->key == "api/remote_address=10.0.0.9");  // no value-less level: the id alone
}

TEST_CASE("nested descriptors match level by level", "[unit]") {
  auto rs = rules();
  auto login = match(*rs, {{"path", "/login"}, {"remote_address", "10.0.0.1"}});
  REQUIRE(login);
  CHECK(login->rule->id == "api/path=/login/remote_address");
  CHECK(login->key == "api/path=/login/remote_address|remote_address=10.0.0.1");

  // /login has no "user" child; the exact node wins at level one, so the key-only path node's
  // "user" child is not consulted (envoy: no backtracking).
  CHECK_FALSE(match(*rs, {{"path", "/login"}, {"user", "bob"}}));

  auto other = match(*rs, {{"path", "/search"}, {"user", "bob"}});
  REQUIRE(other);
  CHECK(other->rule->id == "api/path/user");
  CHECK(other->key == "api/path/user|path=/search|user=bob");
}

TEST_CASE("descriptors that leave the tree early or go past it do not match", "[unit]") {
  auto rs = rules();
  // Stops at a node without a limit.
  CHECK_FALSE(match(*rs, {{"path", "/login"}}));
  // Longer than the tree.
  CHECK_FALSE(match(*rs, {{"remote_address", "10.0.0.1"}, {"user", "bob"}}));
  CHECK_FALSE(match(*rs, {{"path", "/login"}, {"remote_address", "1.2.3.4"}, {"x", "y"}}));
  // Unknown key, empty descriptor, unknown domain.
  CHECK_FALSE(match(*rs, {{"cookie", "x"}}));
  CHECK_FALSE(match(*rs, {}));
  CHECK_FALSE(match(*rs, {{"remote_address", "10.0.0.1"}}, "web"));
  CHECK_FALSE(match(*rs, {{"remote_address", "10.0.0.1"}}, "ap"));
}

TEST_CASE("unlimited and concurrency rules match", "[unit]") {
  auto rs = rules();
  auto h = match(*rs, {{"health", "x"}});
  REQUIRE(h);
  REQUIRE(h->rule->rate_limit);
  CHECK(h->rule->rate_limit->unlimited);
  auto t = match(*rs, {{"tenant", "acme"}});
  REQUIRE(t);
  CHECK_FALSE(t->rule->rate_limit);
  REQUIRE(t->rule->concurrency);
  CHECK(t->rule->concurrency->max_in_flight == 3);
  CHECK(t->key == "api/tenant|tenant=acme");
}

TEST_CASE("state keys never collide across different request values", "[unit]") {
  auto rs = rules();
  // Values chosen to forge separators: without escaping, ("a|user=b") and ("a", "b") would both
  // give "...|path=a|user=b".
  std::vector<std::vector<Entry>> requests = {
      {{"path", "a|user=b"}, {"user", "c"}}, {{"path", "a"}, {"user", "b|user=c"}},
      {{"path", "a"}, {"user", "b"}},        {{"path", "a=b"}, {"user", "c"}},
      {{"path", "a%7Cb"}, {"user", "c"}},    {{"path", "a|b"}, {"user", "c"}},
      {{"path", "a%3Db"}, {"user", "c"}},    {{"path", ""}, {"user", ""}},
      {{"path", "|"}, {"user", ""}},         {{"path", ""}, {"user", "|"}},
  };
  std::set<std::string> keys;
  for (const auto& r : requests) {
    auto m = match(*rs, r);
    REQUIRE(m);
    CHECK(m->rule->id == "api/path/user");
    keys.insert(m->key);
  }
  CHECK(keys.size() == requests.size());
  auto m = match(*rs, {{"path", "a|b=c%d"}, {"user", "u"}});
  REQUIRE(m);
  CHECK(m->key == "api/path/user|path=a%7Cb%3Dc%25d|user=u");
}

TEST_CASE("'%' and '|' in configured values are escaped in ids", "[unit]") {
  auto r = RuleSet::parse(R"(domain: api
descriptors:
  - key: path
    value: "a|b%"
    rate_limit: {unit: second, requests_per_unit: 1}
)",
                          "x.yaml");
  REQUIRE(r.is_ok());
  auto m = (*r)->match("api", std::vector<Entry>{{"path", "a|b%"}});
  REQUIRE(m);
  CHECK(m->rule->id == "api/path=a%7Cb%25");
  CHECK(*m->rule->value == "a|b%");
}

TEST_CASE("load reads a directory of rules files", "[unit]") {
  testing::TempDir dir("sd-rules");
  write(dir.file("b.yaml"),
        "domain: web\ndescriptors:\n  - key: ip\n    rate_limit: {unit: "
        "second, requests_per_unit: 1}\n");
  write(dir.file("a.yml"),
        "domain: api\ndescriptors:\n  - key: ip\n    rate_limit: {unit: "
        "second, requests_per_unit: 2}\n");
  write(dir.file("notes.txt"), "not yaml: [");
  write(dir.file(".api.yaml.swp"), "not yaml: [");
  write(dir.file(".#tmp.yaml"), "not yaml: [");
  auto r = RuleSet::load(dir.path().string());
  INFO(r.status().message());
  REQUIRE(r.is_ok());
  CHECK((*r)->domains() == std::vector<std::string>{"api", "web"});
  CHECK((*r)->files() == std::vector<std::string>{dir.file("a.yml"), dir.file("b.yaml")});
  auto web = (*r)->match("web", std::vector<Entry>{{"ip", "1"}});
  REQUIRE(web);
  CHECK(web->rule->rate_limit->requests_per_unit == 1);
  CHECK(web->rule->file == dir.file("b.yaml"));
  auto api = (*r)->match("api", std::vector<Entry>{{"ip", "1"}});
  REQUIRE(api);
  CHECK(api->rule->rate_limit->requests_per_unit == 2);
}

TEST_CASE("a domain defined in two files is an error naming both", "[unit]") {
  testing::TempDir dir("sd-rules");
  write(dir.file("one.yaml"), "domain: api\n");
  write(dir.file("two.yaml"), "# again\ndomain: api\n");
  auto r = RuleSet::load(dir.path().string());
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message() == dir.file("two.yaml") + ":2: domain: domain 'api' is already " +
                                    "defined in " + dir.file("one.yaml") + ":1");
}

TEST_CASE("load errors: missing path and empty directory and bad file", "[unit]") {
  testing::TempDir dir("sd-rules");
  auto missing = RuleSet::load(dir.file("nope.yaml"));
  REQUIRE_FALSE(missing.is_ok());
  CHECK(missing.status().code() == Code::kNotFound);
  CHECK(missing.status().message() == dir.file("nope.yaml") + ": no such rules file or directory");

  auto empty = RuleSet::load(dir.path().string());
  REQUIRE_FALSE(empty.is_ok());
  CHECK(empty.status().message().find("no *.yaml or *.yml rules files") != std::string::npos);

  write(dir.file("api.yaml"), "domain: api\ndescriptors:\n  - key: ip\n    bogus: 1\n");
  auto bad = RuleSet::load(dir.file("api.yaml"));
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().code() == Code::kInvalidArgument);
  CHECK(bad.status().message().rfind(dir.file("api.yaml") + ":4: descriptors[0].bogus: ", 0) == 0);
}
