// Rules parsing and validation: every field of a good file, and each error's file:line: field text.

#include <string>

#include <catch2/catch.hpp>

#include "sd/ratelimit/rules.hpp"

using namespace sd;
using namespace sd::ratelimit;
using namespace std::chrono_literals;

namespace {

// The error message for a document expected to fail ("" if it parsed).
std::string error_of(std::string_view yaml) {
  auto r = RuleSet::parse(yaml, "rules/api.yaml");
  return r ? std::string() : r.status().message();
}

const RuleNode* find_rule(const RuleSet& rs, std::string_view id) {
  for (const RuleNode* n : rs.rules()) {
    if (n->id == id) return n;
  }
  return nullptr;
}

constexpr const char* kGood = R"(domain: api
descriptors:
  - key: remote_address
    rate_limit:
      unit: second
      requests_per_unit: 10
      algorithm: token_bucket
      burst: 20
  - key: path
    value: /login
    descriptors:
      - key: remote_address
        rate_limit: {unit: minute, requests_per_unit: 5, algorithm: sliding_window, name: login}
        shadow_mode: true
  - key: api_key
    rate_limit: {unit: hour, requests_per_unit: 1000, algorithm: gcra, burst: 50}
  - key: queue
    rate_limit: {unit: day, requests_per_unit: 86400, algorithm: leaky_queue, burst: 3}
  - key: health
    value: "yes"
    rate_limit: {unlimited: true}
  - key: tenant
    concurrency: {max_in_flight: 7}
    shadow_mode: false
)";

}  // namespace

TEST_CASE("a good rules file parses with every field", "[unit]") {
  auto r = RuleSet::parse(kGood, "good.yaml");
  INFO(r.status().message());
  REQUIRE(r.is_ok());
  const RuleSet& rs = **r;
  CHECK(rs.domains() == std::vector<std::string>{"api"});
  CHECK(rs.files() == std::vector<std::string>{"good.yaml"});

  auto rules = rs.rules();
  std::vector<std::string> ids;
  for (auto* n : rules) ids.push_back(n->id);
  CHECK(ids == std::vector<std::string>{"api/remote_address", "api/path=/login/remote_address",
                                        "api/api_key", "api/queue", "api/health=yes",
                                        "api/tenant"});

  const RuleNode* ip = find_rule(rs, "api/remote_address");
  REQUIRE(ip);
  CHECK(ip->key == "remote_address");
  CHECK_FALSE(ip->value);
  CHECK(ip->file == "good.yaml");
  CHECK(ip->line == 3);
  REQUIRE(ip->rate_limit);
  CHECK(ip->rate_limit->unit == "second");
  CHECK(ip->rate_limit->requests_per_unit == 10);
  CHECK(ip->rate_limit->algorithm == Algorithm::kTokenBucket);
  CHECK(ip->rate_limit->limit.requests == 10);
  CHECK(ip->rate_limit->limit.period == 1s);
  CHECK(ip->rate_limit->limit.burst == 20);
  CHECK(ip->rate_limit->name == "api.remote_address");
  CHECK_FALSE(ip->rate_limit->unlimited);
  CHECK_FALSE(ip->shadow_mode);
  CHECK_FALSE(ip->concurrency);

  const RuleNode* login = find_rule(rs, "api/path=/login/remote_address");
  REQUIRE(login);
  CHECK(login->line == 12);
  CHECK(login->shadow_mode);
  REQUIRE(login->rate_limit);
  CHECK(login->rate_limit->name == "login");
  CHECK(login->rate_limit->algorithm == Algorithm::kSlidingWindow);
  CHECK(login->rate_limit->limit.period == 60s);
  CHECK(login->rate_limit->limit.burst == 0);

  const RuleNode* key = find_rule(rs, "api/api_key");
  REQUIRE(key);
  CHECK(key->rate_limit->algorithm == Algorithm::kGcra);
  CHECK(key->rate_limit->limit.period == 3600s);
  CHECK(key->rate_limit->limit.burst == 50);

  const RuleNode* queue = find_rule(rs, "api/queue");
  REQUIRE(queue);
  CHECK(queue->rate_limit->algorithm == Algorithm::kLeakyQueue);
  CHECK(queue->rate_limit->limit.period == 86400s);

  const RuleNode* health = find_rule(rs, "api/health=yes");
  REQUIRE(health);
  CHECK(health->value == std::optional<std::string>("yes"));
  CHECK(health->rate_limit->unlimited);
  CHECK(health->rate_limit->name == "api.health_yes");

  const RuleNode* tenant = find_rule(rs, "api/tenant");
  REQUIRE(tenant);
  CHECK_FALSE(tenant->rate_limit);
  REQUIRE(tenant->concurrency);
  CHECK(tenant->concurrency->max_in_flight == 7);
}

TEST_CASE("the default policy name is the id made header-safe", "[unit]") {
  auto r = RuleSet::parse(R"(domain: api
descriptors:
  - key: path
    value: /login
    descriptors:
      - key: remote_address
        rate_limit: {unit: minute, requests_per_unit: 5}
)",
                          "x.yaml");
  REQUIRE(r.is_ok());
  const RuleNode* n = find_rule(**r, "api/path=/login/remote_address");
  REQUIRE(n);
  CHECK(n->rate_limit->name == "api.path_.login.remote_address");
  CHECK(n->rate_limit->algorithm == Algorithm::kTokenBucket);  // the default
}

TEST_CASE("the demo config in examples loads", "[unit]") {
  auto r = RuleSet::load(SD_RATELIMIT_EXAMPLES_DIR "/rules.yaml");
  INFO(r.status().message());
  REQUIRE(r.is_ok());
  bool algorithms[std::size(kAllAlgorithms)] = {};
  bool shadow = false, concurrency = false, unlimited = false;
  for (const RuleNode* n : (*r)->rules()) {
    if (n->rate_limit) algorithms[static_cast<size_t>(n->rate_limit->algorithm)] = true;
    if (n->rate_limit && n->rate_limit->unlimited) unlimited = true;
    shadow = shadow || n->shadow_mode;
    concurrency = concurrency || n->concurrency.has_value();
  }
  CHECK(algorithms[static_cast<size_t>(Algorithm::kTokenBucket)]);
  CHECK(algorithms[static_cast<size_t>(Algorithm::kSlidingWindow)]);
  CHECK(algorithms[static_cast<size_t>(Algorithm::kGcra)]);
  CHECK(algorithms[static_cast<size_t>(Algorithm::kLeakyQueue)]);
  CHECK(shadow);
  CHECK(concurrency);
  CHECK(unlimited);
  CHECK(find_rule(**r, "api/path=/login/remote_address"));
}

TEST_CASE("validation errors name file line and field", "[unit]") {
  CHECK(error_of(R"(domain: api
descriptors:
  - key: remote_address
  - key: path
    value: /login
    descriptors:
      - key: remote_address
        rate_limit: {unit: sec, requests_per_unit: 5}
)") == "rules/api.yaml:8: descriptors[1].descriptors[0].rate_limit.unit: unknown unit 'sec' "
       "(want second, minute, hour or day)");

  CHECK(error_of(R"(domain: api
descriptors:
  - key: ip
    rate_limit:
      unit: second
      requests_per_unit: 5
      algorithm: token-bucket
)") == "rules/api.yaml:7: descriptors[0].rate_limit.algorithm: unknown algorithm 'token-bucket' "
       "(want token_bucket, leaky_bucket, leaky_queue, fixed_window, sliding_log, "
       "sliding_window or gcra)");

  CHECK(error_of(R"(domain: api
descriptors:
  - key: ip
    rate_limit:
      unit: second
      requests_per_unit: 0
)") == "rules/api.yaml:6: descriptors[0].rate_limit.requests_per_unit: want an integer > 0, "
       "got '0'");

  CHECK(error_of(R"(domain: api
descriptors:
  - key: ip
    rate_limit: {unit: second, requests_per_unit: 2.5}
)") == "rules/api.yaml:4: descriptors[0].rate_limit.requests_per_unit: want an integer > 0, "
       "got '2.5'");

  CHECK(error_of(R"(domain: api
descriptors:
  - key: ip
    rate_limit: {unit: second, requests_per_unit: ten}
)") == "rules/api.yaml:4: descriptors[0].rate_limit.requests_per_unit: want an integer > 0, "
       "got 'ten'");

  CHECK(error_of(R"(domain: api
descriptors:
  - key: ip
    rate_limit: {unit: second, requests_per_unit: -3}
)") == "rules/api.yaml:4: descriptors[0].rate_limit.requests_per_unit: want an integer > 0, "
       "got '-3'");

  CHECK(error_of(R"(domain: api
descriptors:
  - key: ip
    rate_limit:
      unit: second
      requests_per_unit: 5
      burst: -1
)") == "rules/api.yaml:7: descriptors[0].rate_limit.burst: want an integer >= 0, got '-1'");

  CHECK(error_of(R"(domain: api
descriptors:
  - key: tenant
    concurrency:
      max_in_flight: 0
)") == "rules/api.yaml:5: descriptors[0].concurrency.max_in_flight: want an integer > 0, "
       "got '0'");

  CHECK(error_of(R"(domain: api
descriptors:
  - key: ip
    rate_limit: {unit: second, requests_per_unit: 99999999999999999999999}
)") == "rules/api.yaml:4: descriptors[0].rate_limit.requests_per_unit: "
       "'99999999999999999999999' is too large (at most 18446744073709551615)");
}

TEST_CASE("burst on a window algorithm is rejected at the burst line", "[unit]") {
  const std::string e = error_of(R"(domain: api
descriptors:
  - key: ip
    rate_limit:
      unit: second
      requests_per_unit: 5
      algorithm: fixed_window
      burst: 10
)");
  INFO(e);
  CHECK(e.rfind("rules/api.yaml:8: descriptors[0].rate_limit.burst: ", 0) == 0);
  // The rest is validate_limit's own explanation.
  CHECK(
      e.find("burst", std::string("rules/api.yaml:8: descriptors[0].rate_limit.burst: ").size()) !=
      std::string::npos);

  // A limit validate_limit rejects without any burst is blamed on requests_per_unit.
  const std::string huge = error_of(R"(domain: api
descriptors:
  - key: ip
    rate_limit:
      unit: second
      requests_per_unit: 18446744073709551615
      algorithm: sliding_log
)");
  INFO(huge);
  CHECK(huge.rfind("rules/api.yaml:6: descriptors[0].rate_limit.requests_per_unit: ", 0) == 0);
  CHECK(huge.find('\n') == std::string::npos);
}

TEST_CASE("unknown fields are errors that name the field", "[unit]") {
  CHECK(error_of(R"(domain: api
descriptors:
  - key: ip
    rate_limit: {unit: second, requests_per_unit: 5}
    shadow: true
)") == "rules/api.yaml:5: descriptors[0].shadow: unknown field 'shadow' (want key, value, "
       "rate_limit, concurrency, shadow_mode, descriptors)");

  CHECK(error_of(R"(domain: api
descriptors:
  - key: ip
    rate_limit:
      unit: second
      request_per_unit: 5
)") == "rules/api.yaml:6: descriptors[0].rate_limit.request_per_unit: unknown field "
       "'request_per_unit' (want unit, requests_per_unit, algorithm, burst, name, unlimited)\n"
       "rules/api.yaml:5: descriptors[0].rate_limit.requests_per_unit: missing (required unless "
       "unlimited: true)");

  CHECK(error_of("domain: api\ndescriptor: []\n") ==
        "rules/api.yaml:2: descriptor: unknown field 'descriptor' (want domain, descriptors)");

  CHECK(error_of(R"(domain: api
descriptors:
  - key: ip
    key: ip2
)") == "rules/api.yaml:4: descriptors[0].key: field given twice (also at line 3)");
}

TEST_CASE("duplicate siblings are errors naming both lines", "[unit]") {
  CHECK(error_of(R"(domain: api
descriptors:
  - key: path
    value: /login
    rate_limit: {unit: second, requests_per_unit: 5}
  - key: ip
    rate_limit: {unit: second, requests_per_unit: 5}
  - key: path
    value: /login
    rate_limit: {unit: minute, requests_per_unit: 50}
)") == "rules/api.yaml:8: descriptors[2]: duplicate key 'path' value '/login' (also at line 3)");

  CHECK(error_of(R"(domain: api
descriptors:
  - key: ip
    rate_limit: {unit: second, requests_per_unit: 5}
  - key: ip
    rate_limit: {unit: minute, requests_per_unit: 50}
)") == "rules/api.yaml:5: descriptors[1]: duplicate key 'ip' (no value) (also at line 3)");

  // A duplicate's subtree is not parsed: one error, not one per colliding child id.
  CHECK(error_of(R"(domain: api
descriptors:
  - key: path
    value: /login
    descriptors:
      - key: ip
        rate_limit: {unit: second, requests_per_unit: 5}
  - key: path
    value: /login
    descriptors:
      - key: ip
        rate_limit: {unit: second, requests_per_unit: 5}
)") == "rules/api.yaml:8: descriptors[1]: duplicate key 'path' value '/login' (also at line 3)");

  // Same key with different values, or with and without a value, are fine.
  CHECK(error_of(R"(domain: api
descriptors:
  - key: ip
    rate_limit: {unit: second, requests_per_unit: 5}
  - key: ip
    value: 10.0.0.1
    rate_limit: {unit: second, requests_per_unit: 50}
  - key: ip
    value: 10.0.0.2
    rate_limit: {unit: second, requests_per_unit: 50}
)") == "");
}

TEST_CASE("a descriptor with both rate_limit and concurrency is an error", "[unit]") {
  CHECK(error_of(R"(domain: api
descriptors:
  - key: tenant
    rate_limit: {unit: second, requests_per_unit: 5}
    concurrency: {max_in_flight: 3}
)") == "rules/api.yaml:5: descriptors[0].concurrency: a descriptor has rate_limit (line 4) or "
       "concurrency, not both");
}

TEST_CASE("structural errors: domain type and shadow_mode", "[unit]") {
  CHECK(error_of("descriptors: []\n") == "rules/api.yaml:1: domain: missing (required)");
  CHECK(error_of("domain: api/v1\n") ==
        "rules/api.yaml:1: domain: invalid domain 'api/v1' (want [A-Za-z0-9_.-]+)");
  CHECK(error_of("domain: api\ndescriptors: {key: ip}\n") ==
        "rules/api.yaml:2: descriptors: want a list of descriptors, got a map");
  CHECK(error_of("- domain: api\n") ==
        "rules/api.yaml:1: (top level): want a map with domain and descriptors, got a list");
  CHECK(error_of("domain: api\ndescriptors:\n  - key: ip\n    value:\n") ==
        "rules/api.yaml:4: descriptors[0].value: want a string, got nothing");
  CHECK(error_of("domain: api\ndescriptors:\n  - key: ip\n    rate_limit:\n\n  - key: b\n") ==
        "rules/api.yaml:4: descriptors[0].rate_limit: want a map with unit and requests_per_unit, "
        "got nothing");
  CHECK(error_of("domain: api\ndescriptors:\n  - key: [ip]\n") ==
        "rules/api.yaml:3: descriptors[0].key: want a string, got a list");
  CHECK(error_of("domain: api\ndescriptors:\n  - value: x\n") ==
        "rules/api.yaml:3: descriptors[0].key: missing (required)");
  CHECK(error_of("domain: api\ndescriptors:\n  - key: a=b\n") ==
        "rules/api.yaml:3: descriptors[0].key: invalid key 'a=b' (want [A-Za-z0-9_.:-]+)");
  CHECK(error_of(R"(domain: api
descriptors:
  - key: ip
    shadow_mode: true
)") == "rules/api.yaml:4: descriptors[0].shadow_mode: shadow_mode needs a rate_limit or "
       "concurrency on the same descriptor");
  CHECK(error_of(R"(domain: api
descriptors:
  - key: ip
    rate_limit: {unit: second, requests_per_unit: 1}
    shadow_mode: yes
)") == "rules/api.yaml:5: descriptors[0].shadow_mode: want true or false, got 'yes'");
  CHECK(error_of(R"(domain: api
descriptors:
  - key: ip
    rate_limit: {unit: second, requests_per_unit: 1, name: "per ip"}
)") == "rules/api.yaml:4: descriptors[0].rate_limit.name: invalid policy name 'per ip' "
       "(want [A-Za-z0-9_.-]+)");
}

TEST_CASE("colliding rule ids are rejected", "[unit]") {
  // "path=/a" + child "b" and "path=/a/b" would share the id api/path=/a/b and so their state.
  CHECK(error_of(R"(domain: api
descriptors:
  - key: path
    value: /a
    descriptors:
      - key: b
        rate_limit: {unit: second, requests_per_unit: 1}
  - key: path
    value: /a/b
    rate_limit: {unit: second, requests_per_unit: 1}
)") == "rules/api.yaml:8: descriptors[1]: rule id 'api/path=/a/b' is also the id of the rule at "
       "line 6 (a value containing '/'?)");
}

TEST_CASE("every error in a file is reported", "[unit]") {
  const std::string e = error_of(R"(domain: api
descriptors:
  - key: a
    rate_limit: {unit: sec, requests_per_unit: 1}
  - key: b
    rate_limit: {unit: second, requests_per_unit: 0}
)");
  CHECK(e ==
        "rules/api.yaml:4: descriptors[0].rate_limit.unit: unknown unit 'sec' (want second, "
        "minute, hour or day)\n"
        "rules/api.yaml:6: descriptors[1].rate_limit.requests_per_unit: want an integer > 0, "
        "got '0'");
}

TEST_CASE("YAML syntax errors and empty files name file and line", "[unit]") {
  const std::string e =
      error_of("domain: api\ndescriptors:\n  - key: ip\n    rate_limit: {unit: second\n");
  INFO(e);
  CHECK(e.rfind("rules/api.yaml:", 0) == 0);
  CHECK(e.find("YAML syntax error") != std::string::npos);

  const std::string bad_indent = error_of("domain: api\ndescriptors:\n  - key: ip\n   value: x\n");
  INFO(bad_indent);
  CHECK(bad_indent.rfind("rules/api.yaml:4: YAML syntax error: ", 0) == 0);

  CHECK(error_of("") ==
        "rules/api.yaml:1: (top level): empty rules file (want a map with domain and descriptors)");
  CHECK(error_of("# only a comment\n") ==
        "rules/api.yaml:1: (top level): empty rules file (want a map with domain and descriptors)");
  CHECK(error_of("domain: a\n---\ndomain: b\n") ==
        "rules/api.yaml:3: (top level): more than one YAML document (one domain per file)");
}

TEST_CASE("absurdly deep descriptor trees are rejected", "[unit]") {
  std::string yaml = "domain: api\n";
  std::string indent;
  for (int i = 0; i < 40; ++i) {
    yaml += indent + "descriptors:\n" + indent + "  - key: k" + std::to_string(i) + "\n";
    indent += "    ";
  }
  const std::string e = error_of(yaml);
  INFO(e);
  CHECK(e.find("descriptors nested deeper than 32 levels") != std::string::npos);
  CHECK(e.rfind("rules/api.yaml:", 0) == 0);
}
