#pragma once
// Internals shared by rules.cpp, rules_parse.cpp and rules_watch.cpp.

#include <string>
#include <string_view>
#include <vector>

#include "sd/base/status.hpp"
#include "sd/ratelimit/rules.hpp"

namespace sd::ratelimit::detail {

// Parses one rules document into its domain's root node (key = id = domain, children = the
// descriptors). The error lists every problem found, one "file:line: field: what" per line.
Result<RuleNode> parse_domain(std::string_view yaml, std::string_view filename);

// The rules files of a directory: regular *.yaml / *.yml files not starting with '.', sorted.
std::vector<std::string> list_rules_files(const std::string& dir);

// '%' -> %25 and '|' -> %7C (and '=' -> %3D when `escape_equals`), so ids and state keys split
// unambiguously.
void append_escaped(std::string& out, std::string_view value, bool escape_equals);

}  // namespace sd::ratelimit::detail
