#pragma once
// JSON body helpers for handlers: parse a body into an object, read typed fields with clear errors.

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "sd/base/status.hpp"

namespace sd::net {

// Parses body as a JSON object. An empty body is {} when allow_empty. Errors are kInvalidArgument.
Result<nlohmann::json> parse_json_object(const std::string& body, bool allow_empty = false);

// Typed field readers: absent -> nullopt (or `def`); present with the wrong type or out of range ->
// kInvalidArgument naming the field.
Result<std::optional<std::string>> get_string(const nlohmann::json& obj, const char* field);
Result<std::optional<int64_t>> get_int(const nlohmann::json& obj, const char* field, int64_t min,
                                       int64_t max);
Result<std::optional<uint64_t>> get_uint(const nlohmann::json& obj, const char* field);
Result<std::optional<bool>> get_bool(const nlohmann::json& obj, const char* field);

}  // namespace sd::net
