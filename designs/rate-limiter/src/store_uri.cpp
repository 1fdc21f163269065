// open_store(): the one place that maps a store URI to an implementation.

#include <charconv>
#include <string>

#include "sd/ratelimit/store.hpp"
#include "store_impl.hpp"

namespace sd::ratelimit {
namespace {

Status bad_uri(std::string_view uri, const std::string& why) {
  return invalid_argument("bad rate-limit store URI \"" + std::string(uri) + "\": " + why +
                          " (expected memory:// or redis://host:port[?timeout_ms=N&prefix=P])");
}

// A decimal number in [lo, hi]; nullopt if not.
std::optional<long long> parse_int(std::string_view s, long long lo, long long hi) {
  long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi)
    return std::nullopt;
  return v;
}

// "host:port" or "[v6addr]:port".
Result<redis::RedisAddr> parse_host_port(std::string_view uri, std::string_view hp) {
  std::string_view host, port;
  if (!hp.empty() && hp.front() == '[') {
    const auto close = hp.find(']');
    if (close == std::string_view::npos) return bad_uri(uri, "unterminated '[' in host");
    host = hp.substr(1, close - 1);
    const auto rest = hp.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return bad_uri(uri, "missing port (host:port)");
    port = rest.substr(1);
  } else {
    const auto colon = hp.rfind(':');
    if (colon == std::string_view::npos) return bad_uri(uri, "missing port (host:port)");
    host = hp.substr(0, colon);
    port = hp.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return bad_uri(uri, "IPv6 hosts must be written in brackets: [::1]:6379");
  }
  if (host.empty()) return bad_uri(uri, "empty host");
  for (char c : host) {
    if (c == '/' || c == '@' || c == '?' || c == '#' || c == ' ' || c == ',' || c == '&')
      return bad_uri(uri, "invalid character in host \"" + std::string(host) + "\"");
  }
  const auto p = parse_int(port, 1, 65535);
  if (!p) return bad_uri(uri, "port \"" + std::string(port) + "\" is not a number in 1..65535");
  return redis::RedisAddr{std::string(host), static_cast<uint16_t>(*p)};
}

Result<detail::RedisStoreConfig> parse_redis(std::string_view uri, std::string_view rest) {
  detail::RedisStoreConfig config;
  const auto q = rest.find('?');
  std::string_view hp = rest.substr(0, q);
  if (!hp.empty() && hp.back() == '/') hp.remove_suffix(1);
  if (hp.empty()) return bad_uri(uri, "missing host:port");
  auto addr = parse_host_port(uri, hp);
  if (!addr.is_ok()) return addr.status();
  config.addr = std::move(*addr);
  if (q == std::string_view::npos) return config;
  std::string_view query = rest.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = param.find('=');
    if (eq == std::string_view::npos)
      return bad_uri(uri,
                     "query parameter \"" + std::string(param) + "\" needs a value (name=value)");
    const std::string_view name = param.substr(0, eq), value = param.substr(eq + 1);
    if (name == "timeout_ms") {
      const auto ms = parse_int(value, 1, 60'000);
      if (!ms)
        return bad_uri(uri,
                       "timeout_ms \"" + std::string(value) + "\" is not a number in 1..60000");
      config.timeout = Duration{*ms};
    } else if (name == "prefix") {
      config.prefix = std::string(value);  // may be empty: keys are then the bare state keys
    } else {
      return bad_uri(
          uri, "unknown query parameter \"" + std::string(name) + "\" (known: timeout_ms, prefix)");
    }
  }
  return config;
}

}  // namespace

Result<std::unique_ptr<Store>> open_store(std::string_view uri, StoreOptions options) {
  const auto sep = uri.find("://");
  if (sep == std::string_view::npos || sep == 0) return bad_uri(uri, "missing scheme://");
  const std::string_view scheme = uri.substr(0, sep), rest = uri.substr(sep + 3);
  if (scheme == "memory") {
    if (!rest.empty() && rest != "/") return bad_uri(uri, "memory:// takes no host, path or query");
    return detail::make_memory_store(options);
  }
  if (scheme == "redis") {
    auto config = parse_redis(uri, rest);
    if (!config.is_ok()) return config.status();
    return detail::make_redis_store(std::move(*config), options);
  }
  return bad_uri(uri, "unknown scheme \"" + std::string(scheme) + "\"");
}

}  // namespace sd::ratelimit
