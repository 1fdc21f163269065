#pragma once
// Rules in envoy/ratelimit's style: a domain holds a tree of descriptors (key, optional value);
// a request names a domain and one or more descriptors — ordered lists of key/value entries — and
// each request descriptor is matched down the tree to at most one rule.
//
//   domain: api
//   descriptors:
//     - key: remote_address              # no value: one limit per distinct value
//       rate_limit: {unit: second, requests_per_unit: 10, algorithm: token_bucket, burst: 20}
//     - key: path
//       value: /login                    # exact value
//       descriptors:
//         - key: remote_address
//           rate_limit: {unit: minute, requests_per_unit: 5, algorithm: sliding_window}
//           shadow_mode: true            # decide and count, but never deny
//     - key: tenant
//       concurrency: {max_in_flight: 10} # in-flight limit (ConcurrencyLimiter), not a rate
//
// Errors name the file, line and field: "rules/api.yaml:7:
// descriptors[1].descriptors[0].rate_limit.unit: unknown unit 'sec' (want second, minute, hour or
// day)". Every error in a file is reported, one per line. Unknown fields are errors (typo
// protection); so are duplicate sibling (key, value) pairs, a node with both rate_limit and
// concurrency, and shadow_mode on a node without either.
//
// Names: domain and rate_limit.name match [A-Za-z0-9_.-]+; keys match [A-Za-z0-9_.:-]+ (so '/',
// '=' and '|' can delimit ids and state keys); values are any string.
// Ids: a '%' or '|' in a value is written %25 / %7C; two rules whose ids still coincide (a value
// containing '/') are an error. Default policy name: the id with '/' -> '.' and every other
// character outside [A-Za-z0-9_.-] (e.g. '=') -> '_': "api.path_.login.remote_address".
// unlimited: true needs no unit or requests_per_unit (limit stays zero-valued: never hand it to a
// limiter); the rule matches so callers can tell "explicitly unlimited" from "no rule".

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sd/base/status.hpp"
#include "sd/ratelimit/limiter.hpp"

namespace sd::ratelimit {

struct Entry {
  std::string key;
  std::string value;
};

struct RateLimitSpec {
  std::string name;  // policy name for the RateLimit headers; default: the rule id
  std::string unit;  // "second" | "minute" | "hour" | "day"
  uint64_t requests_per_unit = 0;
  Algorithm algorithm = Algorithm::kTokenBucket;
  Limit limit;             // requests = requests_per_unit, period = unit, burst
  bool unlimited = false;  // matches, but never limits (envoy's `unlimited: true`)
};

struct ConcurrencySpec {
  uint32_t max_in_flight = 0;  // > 0
};

struct RuleNode {
  std::string key;
  std::optional<std::string> value;  // nullopt: matches any value, one limit per value
  std::optional<RateLimitSpec> rate_limit;
  std::optional<ConcurrencySpec> concurrency;
  bool shadow_mode = false;
  std::vector<RuleNode> children;
  // "api/path=/login/remote_address": domain, then key or key=value per level. Stable across
  // reloads while the path is unchanged (stores key their state by it plus the limit).
  std::string id;
  std::string file;
  int line = 0;  // 1-based
};

// The rule a request descriptor matched, and the state key it is counted under: the rule id plus
// the request's values for value-less levels ("api/remote_address|remote_address=10.0.0.1"); '%',
// '|' and '=' in request values are written %25, %7C, %3D, so distinct requests never share a key.
// `rule` points into the RuleSet: hold its shared_ptr while using the match.
struct Match {
  const RuleNode* rule = nullptr;
  std::string key;
};

class RuleSet {
 public:
  // Loads a YAML file, or every *.yaml / *.yml file in a directory (sorted; names starting with
  // '.' are skipped as editor/temp files; one domain per file; a domain may not appear twice; a
  // directory without rules files is an error). All errors name file:line: field.
  static Result<std::shared_ptr<const RuleSet>> load(const std::string& path);
  // Parses one document; `filename` is used in error messages.
  static Result<std::shared_ptr<const RuleSet>> parse(std::string_view yaml,
                                                      std::string_view filename);

  // Walks `entries` down the domain's tree, one level per entry: an exact key+value node wins
  // over a key-only node. The match is the node reached by the last entry, if every entry matched
  // and that node has a rate_limit or concurrency spec (envoy semantics). nullopt: no rule applies
  // (the request passes). Siblings are scanned linearly (trees are small; no allocation but the
  // key).
  std::optional<Match> match(std::string_view domain, std::span<const Entry> entries) const;

  std::vector<std::string> domains() const;
  // Every node with a rate_limit or concurrency spec, depth first (metrics, GET /v1/rules).
  std::vector<const RuleNode*> rules() const;
  const std::vector<std::string>& files() const;  // the files this set was loaded from

 private:
  // Each domain is a root RuleNode: key = domain name, id = domain, children = its descriptors.
  std::vector<RuleNode> domains_;  // sorted by key
  std::vector<std::string> files_;
};

}  // namespace sd::ratelimit
