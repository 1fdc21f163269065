#pragma once
// The ticketing schema as migration steps (PRAGMA user_version). Append steps; never edit one
// that has shipped.

#include <string>
#include <vector>

namespace sd::ticketing::detail {

const std::vector<std::string>& schema_migrations();

}  // namespace sd::ticketing::detail
