#include "sd/net/json.hpp"

#include <limits>

namespace sd::net {

namespace {
std::string type_error(const char* field, const char* what) {
  return std::string("field '") + field + "' must be " + what;
}
}  // namespace

Result<nlohmann::json> parse_json_object(const std::string& body, bool allow_empty) {
  if (body.empty()) {
    if (allow_empty) return nlohmann::json::object();
    return invalid_argument("request body must be a JSON object, got an empty body");
  }
  // allow_exceptions=false: a discarded value means a syntax error, no exception cost.
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument("request body is not valid JSON");
  if (!j.is_object()) {
    return invalid_argument(std::string("request body must be a JSON object, got ") +
                            j.type_name());
  }
  return j;
}

Result<std::optional<std::string>> get_string(const nlohmann::json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::optional<std::string>{};
  if (!it->is_string()) return invalid_argument(type_error(field, "a string"));
  return std::optional<std::string>{it->get<std::string>()};
}

Result<std::optional<int64_t>> get_int(const nlohmann::json& obj, const char* field, int64_t min,
                                       int64_t max) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::optional<int64_t>{};
  // nlohmann stores positive literals as unsigned and literals beyond uint64 as float, so the
  // float check also rejects values that overflow 64 bits.
  if (it->is_number_float()) {
    double d = it->get<double>();
    if (d > 9.2e18 || d < -9.2e18) {
      return invalid_argument(type_error(field, "an integer within 64 bits (out of range)"));
    }
    return invalid_argument(type_error(field, "an integer, not a fraction"));
  }
  if (!it->is_number_integer()) return invalid_argument(type_error(field, "an integer"));
  int64_t v = 0;
  if (it->is_number_unsigned()) {
    uint64_t u = it->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return invalid_argument(type_error(field, "an integer within 64 bits (out of range)"));
    }
    v = static_cast<int64_t>(u);
  } else {
    v = it->get<int64_t>();
  }
  if (v < min || v > max) {
    return invalid_argument(std::string("field '") + field + "' must be between " +
                            std::to_string(min) + " and " + std::to_string(max) + ", got " +
                            std::to_string(v));
  }
  return std::optional<int64_t>{v};
}

Result<std::optional<uint64_t>> get_uint(const nlohmann::json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::optional<uint64_t>{};
  if (it->is_number_float()) {
    return invalid_argument(type_error(field, "an unsigned 64-bit integer"));
  }
  if (!it->is_number_integer()) return invalid_argument(type_error(field, "an unsigned integer"));
  if (!it->is_number_unsigned()) {
    if (it->get<int64_t>() < 0) return invalid_argument(type_error(field, "non-negative"));
    return std::optional<uint64_t>{static_cast<uint64_t>(it->get<int64_t>())};
  }
  return std::optional<uint64_t>{it->get<uint64_t>()};
}

Result<std::optional<bool>> get_bool(const nlohmann::json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::optional<bool>{};
  if (!it->is_boolean()) return invalid_argument(type_error(field, "a boolean"));
  return std::optional<bool>{it->get<bool>()};
}

}  // namespace sd::net
