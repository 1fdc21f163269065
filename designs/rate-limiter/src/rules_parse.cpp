// YAML -> RuleNode tree with validation. Every problem is collected (not just the first) and
// reported as "file:line: field.path: what", so one edit-reload cycle fixes a whole file.

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "rules_parse.hpp"

namespace sd::ratelimit::detail {
namespace {

constexpr int kMaxDepth = 32;  // deeper trees are surely a mistake; also bounds recursion

bool is_name_char(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-' || (allow_colon && c == ':');
}

bool is_name(std::string_view s, bool allow_colon = false) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_name_char(c, allow_colon)) return false;
  }
  return true;
}

std::string kind_name(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "'" + n.Scalar() + "'";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "an undefined node";
  }
}

std::string default_policy_name(std::string_view id) {
  std::string out(id);
  for (char& c : out) {
    if (c == '/') {
      c = '.';
    } else if (!is_name_char(c, false)) {
      c = '_';
    }
  }
  return out;
}

std::optional<Nanos> unit_period(std::string_view unit) {
  using std::chrono::seconds;
  if (unit == "second") return Nanos(seconds(1));
  if (unit == "minute") return Nanos(seconds(60));
  if (unit == "hour") return Nanos(seconds(3600));
  if (unit == "day") return Nanos(seconds(86400));
  return std::nullopt;
}

std::string algorithm_list() {
  std::string out;
  const size_t n = std::size(kAllAlgorithms);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += i + 1 == n ? " or " : ", ";
    out += algorithm_name(kAllAlgorithms[i]);
  }
  return out;
}

class Parser {
 public:
  explicit Parser(std::string_view file) : file_(file) {}

  void parse_document(const YAML::Node& doc, RuleNode& root) {
    root.file = file_;
    root.line = line(doc);
    if (!doc.IsMap()) {
      error(doc, "(top level)", "want a map with domain and descriptors, got " + kind_name(doc));
      return;
    }
    std::optional<YAML::Node> descriptors;
    bool have_domain = false;
    for_each_field(doc, "", {"domain", "descriptors"},
                   [&](const std::string& field, const YAML::Node& v) {
                     if (field == "domain") {
                       have_domain = true;
                       if (auto s = scalar(v, "domain")) {
                         if (is_name(*s)) {
                           root.key = *s;
                         } else {
                           error(v, "domain", "invalid domain '" + *s + "' (want [A-Za-z0-9_.-]+)");
                         }
                       }
                     } else {
                       descriptors = v;
                     }
                   });
    if (!have_domain) error(doc, "domain", "missing (required)");
    root.id = root.key;
    if (descriptors) parse_list(*descriptors, "descriptors", root, 1);
  }

  const std::vector<std::string>& errors() const { return errors_; }

 private:
  // yaml-cpp marks an empty value ("unit:") at the next token, often lines later; such a value is
  // reported at its field's line instead.
  int line(const YAML::Node& n) const {
    if (n.IsNull()) {
      for (const auto& [node, key_line] : empty_values_) {
        if (node.is(n)) return key_line;
      }
    }
    const auto m = n.Mark();
    return m.line >= 0 ? m.line + 1 : 0;
  }

  void error(const YAML::Node& at, const std::string& path, const std::string& what) {
    error_at(line(at), path, what);
  }
  void error_at(int at_line, const std::string& path, const std::string& what) {
    errors_.push_back(file_ + ":" + std::to_string(at_line) + ": " + path + ": " + what);
  }

  static std::string join(const std::string& prefix, const std::string& field) {
    return prefix.empty() ? field : prefix + "." + field;
  }

  // Calls fn(field, value) for each known field of map `n`; unknown and repeated fields are errors.
  template <class Fn>
  void for_each_field(const YAML::Node& n, const std::string& path,
                      std::initializer_list<const char*> known, Fn&& fn) {
    std::map<std::string, int> seen;
    // By value: yaml-cpp's iterator yields a temporary pair, so references into it dangle.
    for (const auto kv : n) {
      const YAML::Node k = kv.first;
      if (!k.IsScalar()) {
        error(k, join(path, "?"), "field names must be strings, got " + kind_name(k));
        continue;
      }
      const std::string field = k.Scalar();
      bool is_known = false;
      for (const char* f : known) is_known = is_known || field == f;
      if (!is_known) {
        std::string want;
        for (const char* f : known) want += (want.empty() ? "" : ", ") + std::string(f);
        error(k, join(path, field), "unknown field '" + field + "' (want " + want + ")");
        continue;
      }
      auto [pos, inserted] = seen.emplace(field, line(k));
      if (!inserted) {
        error(k, join(path, field),
              "field given twice (also at line " + std::to_string(pos->second) + ")");
        continue;
      }
      if (kv.second.IsNull()) empty_values_.emplace_back(kv.second, line(k));
      fn(field, kv.second);
    }
  }

  std::optional<std::string> scalar(const YAML::Node& v, const std::string& path) {
    if (!v.IsScalar()) {
      error(v, path, "want a string, got " + kind_name(v));
      return std::nullopt;
    }
    return v.Scalar();
  }

  std::optional<bool> boolean(const YAML::Node& v, const std::string& path) {
    if (v.IsScalar()) {
      const std::string& s = v.Scalar();
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
    }
    error(v, path, "want true or false, got " + kind_name(v));
    return std::nullopt;
  }

  // A decimal integer in [min, max]; rejects signs, fractions, exponents and hex.
  std::optional<uint64_t> integer(const YAML::Node& v, const std::string& path, uint64_t min,
                                  uint64_t max) {
    const std::string want =
        "want an integer " + (min == 0 ? std::string(">= 0") : "> " + std::to_string(min - 1));
    if (!v.IsScalar()) {
      error(v, path, want + ", got " + kind_name(v));
      return std::nullopt;
    }
    const std::string& s = v.Scalar();
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (s.empty() || end != s.data() + s.size() ||
        (ec != std::errc() && ec != std::errc::result_out_of_range)) {
      error(v, path, want + ", got '" + s + "'");
      return std::nullopt;
    }
    if (ec == std::errc::result_out_of_range || value > max) {
      error(v, path, "'" + s + "' is too large (at most " + std::to_string(max) + ")");
      return std::nullopt;
    }
    if (value < min) {
      error(v, path, want + ", got '" + s + "'");
      return std::nullopt;
    }
    return value;
  }

  using Siblings = std::map<std::pair<std::string, std::optional<std::string>>, int>;

  // One node per item of a `descriptors` list, appended to parent.children.
  void parse_list(const YAML::Node& list, const std::string& path, RuleNode& parent, int depth) {
    if (list.IsNull()) return;  // "descriptors:" with nothing after it: no children
    if (!list.IsSequence()) {
      error(list, path, "want a list of descriptors, got " + kind_name(list));
      return;
    }
    if (depth > kMaxDepth) {
      error(list, path, "descriptors nested deeper than " + std::to_string(kMaxDepth) + " levels");
      return;
    }
    Siblings siblings;
    for (size_t i = 0; i < list.size(); ++i) {
      RuleNode node;
      if (parse_node(list[i], path + "[" + std::to_string(i) + "]", parent.id, depth, siblings,
                     node)) {
        parent.children.push_back(std::move(node));
      }
    }
  }

  // False when the node cannot be placed in the tree (no usable key, or a duplicate sibling:
  // then its subtree is not parsed, to avoid follow-on errors).
  bool parse_node(const YAML::Node& n, const std::string& path, const std::string& parent_id,
                  int depth, Siblings& siblings, RuleNode& node) {
    node.file = file_;
    node.line = line(n);
    if (!n.IsMap()) {
      error(n, path, "want a map with key (and value, rate_limit, ...), got " + kind_name(n));
      return false;
    }
    bool key_ok = false;
    bool have_key = false;
    std::optional<YAML::Node> children, rate_limit, concurrency, shadow;
    for_each_field(
        n, path, {"key", "value", "rate_limit", "concurrency", "shadow_mode", "descriptors"},
        [&](const std::string& field, const YAML::Node& v) {
          if (field == "key") {
            have_key = true;
            if (auto s = scalar(v, path + ".key")) {
              if (is_name(*s, true)) {
                node.key = *s;
                key_ok = true;
              } else {
                error(v, path + ".key", "invalid key '" + *s + "' (want [A-Za-z0-9_.:-]+)");
              }
            }
          } else if (field == "value") {
            if (auto s = scalar(v, path + ".value")) node.value = *s;
          } else if (field == "rate_limit") {
            rate_limit = v;
          } else if (field == "concurrency") {
            concurrency = v;
          } else if (field == "shadow_mode") {
            shadow = v;
          } else {
            children = v;
          }
        });
    if (!have_key) error(n, path + ".key", "missing (required)");
    if (key_ok) {
      auto [pos, inserted] = siblings.emplace(std::make_pair(node.key, node.value), node.line);
      if (!inserted) {
        std::string what = "duplicate key '" + node.key + "'";
        what += node.value ? " value '" + *node.value + "'" : " (no value)";
        error(n, path, what + " (also at line " + std::to_string(pos->second) + ")");
        return false;
      }
    }

    node.id = parent_id + "/" + node.key;
    if (node.value) {
      node.id += "=";
      append_escaped(node.id, *node.value, false);
    }
    if (rate_limit && concurrency) {
      error(*concurrency, path + ".concurrency",
            "a descriptor has rate_limit (line " + std::to_string(line(*rate_limit)) +
                ") or concurrency, not both");
    } else if (rate_limit) {
      node.rate_limit = parse_rate_limit(*rate_limit, path + ".rate_limit", node.id);
    } else if (concurrency) {
      node.concurrency = parse_concurrency(*concurrency, path + ".concurrency");
    }
    if (shadow) {
      if (auto b = boolean(*shadow, path + ".shadow_mode")) node.shadow_mode = *b;
      if (!rate_limit && !concurrency) {
        error(*shadow, path + ".shadow_mode",
              "shadow_mode needs a rate_limit or concurrency on the same descriptor");
      }
    }
    if ((node.rate_limit || node.concurrency) && key_ok) {
      auto [pos, inserted] = ids_.emplace(node.id, node.line);
      if (!inserted) {
        error(n, path,
              "rule id '" + node.id + "' is also the id of the rule at line " +
                  std::to_string(pos->second) + " (a value containing '/'?)");
      }
    }
    if (children) parse_list(*children, path + ".descriptors", node, depth + 1);
    return key_ok;
  }

  std::optional<RateLimitSpec> parse_rate_limit(const YAML::Node& n, const std::string& path,
                                                const std::string& id) {
    if (!n.IsMap()) {
      error(n, path, "want a map with unit and requests_per_unit, got " + kind_name(n));
      return std::nullopt;
    }
    RateLimitSpec spec;
    bool ok = true;
    std::optional<YAML::Node> unit_node, requests_node, burst_node;
    for_each_field(
        n, path, {"unit", "requests_per_unit", "algorithm", "burst", "name", "unlimited"},
        [&](const std::string& field, const YAML::Node& v) {
          const std::string p = path + "." + field;
          if (field == "unit") {
            unit_node = v;
            auto s = scalar(v, p);
            auto period = s ? unit_period(*s) : std::nullopt;
            if (s && !period) {
              error(v, p, "unknown unit '" + *s + "' (want second, minute, hour or day)");
            }
            if (period) {
              spec.unit = *s;
              spec.limit.period = *period;
            } else {
              ok = false;
            }
          } else if (field == "requests_per_unit") {
            requests_node = v;
            auto r = integer(v, p, 1, UINT64_MAX);
            if (r) spec.requests_per_unit = spec.limit.requests = *r;
            ok = ok && r.has_value();
          } else if (field == "algorithm") {
            auto s = scalar(v, p);
            auto a = s ? parse_algorithm(*s) : std::nullopt;
            if (s && !a) {
              error(v, p, "unknown algorithm '" + *s + "' (want " + algorithm_list() + ")");
            }
            if (a) spec.algorithm = *a;
            ok = ok && a.has_value();
          } else if (field == "burst") {
            burst_node = v;
            auto b = integer(v, p, 0, UINT64_MAX);
            if (b) spec.limit.burst = *b;
            ok = ok && b.has_value();
          } else if (field == "name") {
            auto s = scalar(v, p);
            if (s && !is_name(*s)) {
              error(v, p, "invalid policy name '" + *s + "' (want [A-Za-z0-9_.-]+)");
            } else if (s) {
              spec.name = *s;
            }
          } else {
            auto b = boolean(v, p);
            if (b) spec.unlimited = *b;
            ok = ok && b.has_value();
          }
        });
    if (spec.name.empty()) spec.name = default_policy_name(id);
    if (!spec.unlimited) {
      if (!unit_node) error(n, path + ".unit", "missing (required unless unlimited: true)");
      if (!requests_node) {
        error(n, path + ".requests_per_unit", "missing (required unless unlimited: true)");
      }
    }
    if (ok && unit_node && requests_node) {
      // Blame the burst only when the limit without it is fine.
      Limit no_burst = spec.limit;
      no_burst.burst = 0;
      std::string why = validate_limit(spec.algorithm, no_burst);
      if (!why.empty()) {
        error(*requests_node, path + ".requests_per_unit", why);
      } else if (burst_node && !(why = validate_limit(spec.algorithm, spec.limit)).empty()) {
        error(*burst_node, path + ".burst", why);
      }
    }
    return spec;
  }

  std::optional<ConcurrencySpec> parse_concurrency(const YAML::Node& n, const std::string& path) {
    if (!n.IsMap()) {
      error(n, path, "want a map with max_in_flight, got " + kind_name(n));
      return std::nullopt;
    }
    ConcurrencySpec spec;
    bool have = false;
    for_each_field(n, path, {"max_in_flight"}, [&](const std::string&, const YAML::Node& v) {
      have = true;
      if (auto m = integer(v, path + ".max_in_flight", 1, UINT32_MAX)) {
        spec.max_in_flight = static_cast<uint32_t>(*m);
      }
    });
    if (!have) error(n, path + ".max_in_flight", "missing (required)");
    return spec;
  }

  std::string file_;
  std::vector<std::string> errors_;
  std::map<std::string, int> ids_;  // rule id -> line, to reject colliding ids
  std::vector<std::pair<YAML::Node, int>> empty_values_;  // null value -> its field's line
};

}  // namespace

Result<RuleNode> parse_domain(std::string_view yaml, std::string_view filename) {
  const std::string file(filename);
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return invalid_argument(file + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " +
                            e.msg + " (column " + std::to_string(e.mark.column + 1) + ")");
  }
  if (docs.empty() || (docs.size() == 1 && docs[0].IsNull())) {
    return invalid_argument(file + ":1: (top level): empty rules file (want a map with domain " +
                            "and descriptors)");
  }
  if (docs.size() > 1) {
    return invalid_argument(file + ":" + std::to_string(docs[1].Mark().line + 1) +
                            ": (top level): more than one YAML document (one domain per file)");
  }
  Parser parser(file);
  RuleNode root;
  try {
    parser.parse_document(docs[0], root);
  } catch (const YAML::Exception& e) {  // defensive: conversions we do not expect to throw
    return invalid_argument(file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!parser.errors().empty()) {
    std::string msg;
    for (const auto& e : parser.errors()) msg += (msg.empty() ? "" : "\n") + e;
    return invalid_argument(std::move(msg));
  }
  return root;
}

void append_escaped(std::string& out, std::string_view value, bool escape_equals) {
  for (char c : value) {
    if (c == '%') {
      out += "%25";
    } else if (c == '|') {
      out += "%7C";
    } else if (c == '=' && escape_equals) {
      out += "%3D";
    } else {
      out += c;
    }
  }
}

}  // namespace sd::ratelimit::detail
