// Request parsing for RateLimitService: every limit is explicit and every violation a 4xx with a
// stable error code (invalid_json, invalid_domain, invalid_descriptors, too_many_descriptors,
// too_many_entries, invalid_entry, entry_too_long, invalid_cost, invalid_entries, missing_header,
// invalid_permit, body_too_large).

#include <charconv>
#include <string_view>

#include "sd/net/json.hpp"
#include "service_internal.hpp"

namespace sd::ratelimit::service_detail {

using json = nlohmann::json;

namespace {

ApiError bad(std::string code, std::string message) {
  return ApiError{400, std::move(code), std::move(message)};
}

std::optional<ApiError> check_body_size(const std::string& body, const ServiceOptions& o) {
  if (body.size() <= o.max_body_bytes) return std::nullopt;
  return ApiError{413, "body_too_large",
                  "request body is " + std::to_string(body.size()) + " bytes (limit " +
                      std::to_string(o.max_body_bytes) + ")"};
}

std::optional<ApiError> check_domain(const std::string& domain, const ServiceOptions& o) {
  if (domain.empty()) return bad("invalid_domain", "domain must be a non-empty string");
  if (domain.size() > o.max_entry_bytes) {
    return bad("invalid_domain",
               "domain is longer than " + std::to_string(o.max_entry_bytes) + " bytes");
  }
  return std::nullopt;
}

// A descriptor key or value: at most max_entry_bytes; keys must not be empty.
std::optional<ApiError> check_part(std::string_view what, std::string_view s, bool is_key,
                                   const ServiceOptions& o) {
  if (is_key && s.empty()) return bad("invalid_entry", std::string(what) + " must not be empty");
  if (s.size() > o.max_entry_bytes) {
    return bad("entry_too_long", std::string(what) + " is " + std::to_string(s.size()) +
                                     " bytes (limit " + std::to_string(o.max_entry_bytes) + ")");
  }
  return std::nullopt;
}

Parsed<std::vector<Entry>> parse_entries(const json& d, size_t index, const ServiceOptions& o) {
  std::string at = "descriptors[" + std::to_string(index) + "]";
  if (!d.is_object()) return bad("invalid_descriptors", at + " must be an object");
  auto it = d.find("entries");
  if (it == d.end() || !it->is_array()) {
    return bad("invalid_descriptors", at + ".entries must be an array");
  }
  if (it->empty()) return bad("invalid_descriptors", at + ".entries must not be empty");
  if (it->size() > o.max_entries) {
    return bad("too_many_entries", at + " has " + std::to_string(it->size()) + " entries (limit " +
                                       std::to_string(o.max_entries) + ")");
  }
  std::vector<Entry> entries;
  entries.reserve(it->size());
  for (size_t j = 0; j < it->size(); ++j) {
    const json& e = (*it)[j];
    std::string eat = at + ".entries[" + std::to_string(j) + "]";
    if (!e.is_object()) return bad("invalid_entry", eat + " must be an object");
    auto k = e.find("key");
    auto v = e.find("value");
    if (k == e.end() || !k->is_string()) return bad("invalid_entry", eat + ".key must be a string");
    if (v == e.end() || !v->is_string()) {
      return bad("invalid_entry", eat + ".value must be a string");
    }
    Entry entry{k->get<std::string>(), v->get<std::string>()};
    if (auto err = check_part(eat + ".key", entry.key, true, o)) return *err;
    if (auto err = check_part(eat + ".value", entry.value, false, o)) return *err;
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace

Parsed<CheckRequest> parse_check(const std::string& body, const ServiceOptions& o) {
  if (auto err = check_body_size(body, o)) return *err;
  auto j = net::parse_json_object(body);
  if (!j) return bad("invalid_json", j.status().message());
  CheckRequest req;
  auto domain = net::get_string(*j, "domain");
  if (!domain) return bad("invalid_domain", domain.status().message());
  req.domain = domain->value_or("");
  if (auto err = check_domain(req.domain, o)) return *err;

  auto it = j->find("descriptors");
  if (it == j->end() || !it->is_array()) {
    return bad("invalid_descriptors", "descriptors must be an array");
  }
  if (it->empty()) return bad("invalid_descriptors", "descriptors must not be empty");
  if (it->size() > o.max_descriptors) {
    return bad("too_many_descriptors", std::to_string(it->size()) + " descriptors (limit " +
                                           std::to_string(o.max_descriptors) + ")");
  }
  for (size_t i = 0; i < it->size(); ++i) {
    auto entries = parse_entries((*it)[i], i, o);
    if (auto* err = std::get_if<ApiError>(&entries)) return *err;
    req.descriptors.push_back(std::move(std::get<std::vector<Entry>>(entries)));
  }

  auto cost = net::get_int(*j, "cost", 0, static_cast<int64_t>(o.max_cost));
  if (!cost) return bad("invalid_cost", cost.status().message());
  req.cost = static_cast<uint64_t>(cost->value_or(1));
  return req;
}

Parsed<CheckRequest> parse_auth(const net::Request& req, const ServiceOptions& o) {
  CheckRequest out;
  out.domain = req.param("domain");
  if (auto err = check_domain(out.domain, o)) return *err;

  auto q = req.query.find("entries");
  if (q == req.query.end() || q->second.empty()) {
    return bad("invalid_entries",
               "query parameter 'entries' is required: entries=key:Header[,key:Header...]");
  }
  std::vector<Entry> entries;
  std::string_view rest = q->second;
  for (;;) {  // every comma-separated item, empty ones included (they are errors)
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    size_t colon = item.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == item.size()) {
      return bad("invalid_entries",
                 "entries item '" + std::string(item) + "' must be key:Header-Name");
    }
    if (entries.size() == o.max_entries) {
      return bad("too_many_entries",
                 "more than " + std::to_string(o.max_entries) + " entries in the query");
    }
    std::string key(item.substr(0, colon));
    std::string header(item.substr(colon + 1));
    if (auto err = check_part("key '" + key + "'", key, true, o)) return *err;
    const std::string* value = req.header(header);
    if (value == nullptr) {
      return bad("missing_header",
                 "request header '" + header + "' (for descriptor key '" + key + "') is missing");
    }
    if (auto err = check_part("header '" + header + "'", *value, false, o)) return *err;
    entries.push_back({std::move(key), *value});
    if (comma == std::string_view::npos) break;
  }
  out.descriptors.push_back(std::move(entries));

  if (auto c = req.query.find("cost"); c != req.query.end()) {
    const std::string& s = c->second;
    uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v > o.max_cost) {
      return bad("invalid_cost", "query parameter 'cost' must be an integer between 0 and " +
                                     std::to_string(o.max_cost));
    }
    out.cost = v;
  }
  return out;
}

Parsed<std::string> parse_release(const std::string& body, const ServiceOptions& o) {
  if (auto err = check_body_size(body, o)) return *err;
  auto j = net::parse_json_object(body);
  if (!j) return bad("invalid_json", j.status().message());
  auto permit = net::get_string(*j, "permit");
  if (!permit) return bad("invalid_permit", permit.status().message());
  if (!permit->has_value() || (*permit)->empty() || (*permit)->size() > 128) {
    return bad("invalid_permit", "permit must be a non-empty string (at most 128 bytes)");
  }
  return **permit;
}

}  // namespace sd::ratelimit::service_detail
