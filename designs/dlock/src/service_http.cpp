// Request parsing/validation and JSON rendering for LockService.

#include "service_http.hpp"

#include <array>
#include <limits>

#include "sd/base/ids.hpp"
#include "sd/base/utf8.hpp"

namespace sd::dlock::service_detail {
namespace {

// The leading "[a-z_]+" token of a message ("locked: held by ..." -> "locked").
std::string_view leading_code(std::string_view msg) {
  size_t i = 0;
  while (i < msg.size() && ((msg[i] >= 'a' && msg[i] <= 'z') || msg[i] == '_')) ++i;
  if (i == 0) return {};
  if (i < msg.size() && msg[i] != ':' && msg[i] != ' ') return {};
  return msg.substr(0, i);
}

bool one_of(std::string_view code, std::initializer_list<std::string_view> codes) {
  for (auto c : codes) {
    if (c == code) return true;
  }
  return false;
}

// Drops the "code: " prefix (when present) for the human-readable message.
std::string_view strip_code(std::string_view msg, std::string_view code) {
  if (code.empty() || msg.size() < code.size() + 2 || msg.substr(code.size(), 2) != ": ") {
    return msg;
  }
  return msg.substr(code.size() + 2);
}

// Human-readable text for codes the core reports bare ("locked").
std::string_view describe_code(std::string_view code) {
  if (code == "locked") return "held by another lease (or a lock-delay is active)";
  if (code == "not_holder") return "this lease does not hold it with that token";
  if (code == "mode_mismatch") return "this lease holds it in the other mode";
  if (code == "limit_mismatch") return "the semaphore's holders use a different limit";
  if (code == "permits_mismatch") return "this lease holds a different number of permits";
  if (code == "already_waiting") return "this lease is already waiting for it";
  return code;
}

}  // namespace

Status bad_request(std::string_view code, std::string_view message) {
  std::string m(code);
  m += ": ";
  m += message;
  return invalid_argument(std::move(m));
}

net::Response status_response(const Status& s, std::string_view not_found_code) {
  const std::string& msg = s.message();
  std::string_view lead = leading_code(msg);
  auto reply = [&](int status, std::string_view code) {
    std::string_view text = strip_code(msg, lead == code ? lead : std::string_view{});
    return net::Response::error(status, code,
                                text.empty() || text == code ? describe_code(code) : text);
  };
  switch (s.code()) {
    case Code::kOk:
      return net::Response::error(500, "internal", "unexpected ok status");
    case Code::kInvalidArgument:
      return reply(400, lead.starts_with("invalid_") ? lead : "invalid_argument");
    case Code::kNotFound:
      return reply(404, one_of(lead, {"lease_not_found", "not_found"}) ? lead : not_found_code);
    case Code::kAlreadyExists:
      return reply(409, "already_exists");
    case Code::kConflict:
      return reply(409, one_of(lead, {"locked", "not_holder", "mode_mismatch", "limit_mismatch",
                                      "permits_mismatch", "already_waiting"})
                            ? lead
                            : "conflict");
    case Code::kResourceExhausted:
      return reply(429, "too_many");
    case Code::kDeadlineExceeded:
      return reply(504, "deadline_exceeded");
    case Code::kUnavailable:
      return reply(503, "unavailable");
    case Code::kFailedPrecondition:
      return reply(400, "failed_precondition");
    case Code::kUnimplemented:
      return reply(501, "unimplemented");
    case Code::kInternal:
      return reply(500, "internal");
  }
  return reply(500, "internal");
}

Result<json> parse_body(const std::string& body, bool allow_empty) {
  if (body.empty()) {
    if (allow_empty) return json::object();
    return bad_request("invalid_json", "request body must be a JSON object");
  }
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad_request("invalid_json", "request body is not valid JSON");
  if (!j.is_object()) return bad_request("invalid_json", "request body must be a JSON object");
  return j;
}

Result<std::optional<int64_t>> read_int(const json& obj, const char* field, std::string_view code,
                                        int64_t min, int64_t max) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::optional<int64_t>{};
  auto range_error = [&] {
    return bad_request(code, std::string(field) + " must be an integer in [" + std::to_string(min) +
                                 ", " + std::to_string(max) + "]");
  };
  if (!it->is_number_integer()) return range_error();  // strings, floats, bools, objects
  int64_t v = 0;
  if (it->is_number_unsigned()) {
    auto u = it->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return range_error();
    v = static_cast<int64_t>(u);
  } else {
    v = it->get<int64_t>();
  }
  if (v < min || v > max) return range_error();
  return std::optional<int64_t>{v};
}

Result<std::optional<std::string>> read_string(const json& obj, const char* field,
                                               std::string_view code) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::optional<std::string>{};
  if (!it->is_string()) return bad_request(code, std::string(field) + " must be a string");
  return std::optional<std::string>{it->get<std::string>()};
}

Result<std::optional<Token>> read_token(const json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::optional<Token>{};
  if (it->is_number_unsigned()) return std::optional<Token>{it->get<uint64_t>()};
  if (it->is_number_integer() && it->get<int64_t>() >= 0) {
    return std::optional<Token>{static_cast<Token>(it->get<int64_t>())};
  }
  return bad_request("invalid_token", std::string(field) + " must be a non-negative integer");
}

Status check_lease_id(std::string_view id) {
  if (!is_valid_id(id)) {
    return bad_request("invalid_lease_id", "lease_id must be 32 lowercase hex characters");
  }
  return Status::ok();
}

Status check_name(std::string_view name, const Limits& limits) {
  Status s = validate_name(name, limits.max_name_bytes);
  if (s.is_ok()) return s;
  return bad_request("invalid_name", s.message());
}

Result<size_t> parse_list_limit(const std::string* raw) {
  if (raw == nullptr) return kDefaultListLimit;
  auto err = [] {
    return bad_request("invalid_limit",
                       "limit must be an integer in [1, " + std::to_string(kMaxListLimit) + "]");
  };
  if (raw->empty() || raw->size() > 6) return err();
  size_t v = 0;
  for (char c : *raw) {
    if (c < '0' || c > '9') return err();
    v = v * 10 + static_cast<size_t>(c - '0');
  }
  if (v < 1 || v > kMaxListLimit) return err();
  return v;
}

Result<AcquireParams> parse_acquire(Kind kind, const std::string& name, const std::string& body,
                                    const Limits& limits) {
  auto obj = parse_body(body, false);
  if (!obj) return obj.status();
  AcquireParams p;
  p.request.kind = kind;
  p.request.name = name;

  auto lease = read_string(*obj, "lease_id", "invalid_lease_id");
  if (!lease) return lease.status();
  auto ttl =
      read_int(*obj, "ttl_ms", "invalid_ttl", limits.min_ttl.count(), limits.max_ttl.count());
  if (!ttl) return ttl.status();
  if (lease->has_value() == ttl->has_value()) {
    return bad_request("invalid_argument", "give exactly one of lease_id and ttl_ms");
  }
  if (lease->has_value()) {
    SD_RETURN_IF_ERROR(check_lease_id(**lease));
    p.request.lease_id = **lease;
  } else {
    p.shortcut_ttl = Duration(**ttl);
  }

  auto wait = read_int(*obj, "wait_ms", "invalid_wait", 0, limits.max_wait.count());
  if (!wait) return wait.status();
  p.request.wait = Duration(wait->value_or(0));

  if (kind == Kind::kLock) {
    auto mode = read_string(*obj, "mode", "invalid_mode");
    if (!mode) return mode.status();
    if (mode->has_value()) {
      auto m = parse_mode(**mode);
      if (!m) return bad_request("invalid_mode", "mode must be \"exclusive\" or \"shared\"");
      p.request.mode = *m;
    }
  } else {
    p.request.mode = Mode::kShared;
    auto limit = read_int(*obj, "limit", "invalid_limit", 1, limits.max_semaphore_limit);
    if (!limit) return limit.status();
    if (!limit->has_value()) return bad_request("invalid_limit", "limit is required");
    p.request.limit = static_cast<uint32_t>(**limit);
    auto permits = read_int(*obj, "permits", "invalid_permits", 1, **limit);
    if (!permits) return permits.status();
    p.request.permits = static_cast<uint32_t>(permits->value_or(1));
  }
  return p;
}

Result<ReleaseParams> parse_release(const std::string& body) {
  auto obj = parse_body(body, false);
  if (!obj) return obj.status();
  auto lease = read_string(*obj, "lease_id", "invalid_lease_id");
  if (!lease) return lease.status();
  if (!lease->has_value()) return bad_request("invalid_lease_id", "lease_id is required");
  SD_RETURN_IF_ERROR(check_lease_id(**lease));
  auto token = read_token(*obj, "token");
  if (!token) return token.status();
  if (!token->has_value()) return bad_request("invalid_token", "token is required");
  return ReleaseParams{**lease, **token};
}

json lease_json(const LeaseInfo& l) {
  return json{{"lease_id", l.id},
              {"ttl_ms", l.ttl.count()},
              {"ttl_ms_left", l.ttl_ms_left},
              {"holds", l.holds}};
}

json lock_info_json(const LockInfo& info) {
  const bool sem = info.kind == Kind::kSemaphore;
  json holders = json::array();
  for (const auto& h : info.holders) {
    json j{{"lease_id", h.lease_id}, {"token", h.token}, {"ttl_ms_left", h.ttl_ms_left}};
    if (sem) {
      j["permits"] = h.permits;
    } else {
      j["mode"] = mode_name(h.mode);
    }
    holders.push_back(std::move(j));
  }
  json waiters = json::array();
  for (const auto& w : info.waiters) {
    json j{{"lease_id", w.lease_id}, {"wait_ms_left", w.wait_ms_left}};
    if (sem) {
      j["permits"] = w.permits;
    } else {
      j["mode"] = mode_name(w.mode);
    }
    waiters.push_back(std::move(j));
  }
  json out{{"name", info.name},
           {"kind", kind_name(info.kind)},
           {"holders", std::move(holders)},
           {"waiters", std::move(waiters)},
           {"last_token", info.last_token},
           {"lock_delay_ms_left", info.lock_delay_ms_left}};
  if (sem) out["limit"] = info.limit;
  return out;
}

net::Response grant_response(const Grant& g, uint32_t limit, long long own_lease_ttl_ms) {
  json j{{"name", g.name}, {"token", g.token}, {"lease_id", g.lease_id}};
  if (g.kind == Kind::kSemaphore) {
    j["permits"] = g.permits;
    j["limit"] = limit;
  } else {
    j["mode"] = mode_name(g.mode);
  }
  if (own_lease_ttl_ms > 0) j["ttl_ms"] = own_lease_ttl_ms;
  return net::Response::json(200, j);
}

}  // namespace sd::dlock::service_detail
