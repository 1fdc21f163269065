#pragma once
// Private helpers of LockService: request parsing/validation and JSON rendering. Validation errors
// are kInvalidArgument Statuses whose message starts with the API error code ("invalid_ttl: ...");
// status_response() turns any Status into the project-wide JSON error.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sd/base/status.hpp"
#include "sd/dlock/types.hpp"
#include "sd/net/http.hpp"

namespace sd::dlock::service_detail {

using nlohmann::json;

// Maximum `limit` for GET /v1/locks and /v1/semaphores.
inline constexpr size_t kDefaultListLimit = 1000;
inline constexpr size_t kMaxListLimit = 10000;

// "code: message" -> Status(kInvalidArgument, "code: message").
Status bad_request(std::string_view code, std::string_view message);

// Maps a Status to a JSON error response. `not_found_code` names what a kNotFound refers to.
// The error code is the message's leading "[a-z_]+" token when it is a known code for that status
// class (e.g. "locked", "not_holder", "invalid_ttl"), else a generic one.
net::Response status_response(const Status& s, std::string_view not_found_code = "not_found");

// Parses a request body as a JSON object ("invalid_json" otherwise). Empty -> {} when allow_empty.
Result<json> parse_body(const std::string& body, bool allow_empty);

// Typed, strict field readers. Absent or null -> nullopt. Wrong type/range -> `code` error.
Result<std::optional<int64_t>> read_int(const json& obj, const char* field, std::string_view code,
                                        int64_t min, int64_t max);
Result<std::optional<std::string>> read_string(const json& obj, const char* field,
                                               std::string_view code);
Result<std::optional<Token>> read_token(const json& obj, const char* field);

Status check_lease_id(std::string_view id);                      // "invalid_lease_id"
Status check_name(std::string_view name, const Limits& limits);  // "invalid_name"

// Parses a positive decimal integer query parameter in [1, max].
Result<size_t> parse_list_limit(const std::string* raw);

struct AcquireParams {
  AcquireRequest request;                // lease_id empty when the ttl shortcut is used
  std::optional<Duration> shortcut_ttl;  // {"ttl_ms": N} instead of a lease_id
};
// Validates an acquire body for `kind` on `name` (already validated).
Result<AcquireParams> parse_acquire(Kind kind, const std::string& name, const std::string& body,
                                    const Limits& limits);

struct ReleaseParams {
  LeaseId lease_id;
  Token token = 0;
};
Result<ReleaseParams> parse_release(const std::string& body);

// Renderers.
json lease_json(const LeaseInfo& l);
json lock_info_json(const LockInfo& info);
// 200 response for a grant. own_lease_ttl_ms > 0 adds "ttl_ms" (the lease came from the shortcut).
net::Response grant_response(const Grant& g, uint32_t limit, long long own_lease_ttl_ms);

}  // namespace sd::dlock::service_detail
