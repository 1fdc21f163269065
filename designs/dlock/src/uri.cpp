// Backend URI parsing and open_backend(): the one place that maps a URI to an engine.

#include <charconv>
#include <string>

#include "backend_impl.hpp"
#include "sd/dlock/backend.hpp"

namespace sd::dlock {
namespace {

Status bad_uri(std::string_view uri, const std::string& why) {
  return invalid_argument("bad backend URI \"" + std::string(uri) + "\": " + why +
                          " (expected memory://, sqlite:///path/file.db, dlockd://host:port, "
                          "redis://host:port, redlock://h1:p1,h2:p2,h3:p3 or etcd://h1:p1,...)");
}

// "host:port" or "[v6addr]:port".
Result<std::pair<std::string, uint16_t>> parse_host_port(std::string_view uri,
                                                         std::string_view hp) {
  std::string_view host;
  std::string_view port;
  if (!hp.empty() && hp.front() == '[') {
    auto close = hp.find(']');
    if (close == std::string_view::npos) return bad_uri(uri, "unterminated '[' in host");
    host = hp.substr(1, close - 1);
    auto rest = hp.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return bad_uri(uri, "missing port (host:port)");
    port = rest.substr(1);
  } else {
    auto colon = hp.rfind(':');
    if (colon == std::string_view::npos) return bad_uri(uri, "missing port (host:port)");
    host = hp.substr(0, colon);
    port = hp.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return bad_uri(uri, "IPv6 hosts must be written in brackets: [::1]:7401");
    }
  }
  if (host.empty()) return bad_uri(uri, "empty host");
  for (char c : host) {
    if (c == '/' || c == '@' || c == '?' || c == '#' || c == ' ' || c == ',') {
      return bad_uri(uri, "invalid character in host \"" + std::string(host) + "\"");
    }
  }
  if (port.empty()) return bad_uri(uri, "missing port (host:port)");
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size()) {
    return bad_uri(uri, "port \"" + std::string(port) + "\" is not a number");
  }
  if (value < 1 || value > 65535) {
    return bad_uri(uri, "port " + std::string(port) + " out of range 1..65535");
  }
  return std::make_pair(std::string(host), static_cast<uint16_t>(value));
}

Result<std::vector<std::pair<std::string, uint16_t>>> parse_host_list(std::string_view uri,
                                                                      std::string_view rest,
                                                                      bool allow_many) {
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty()) return bad_uri(uri, "missing host:port");
  std::vector<std::pair<std::string, uint16_t>> hosts;
  while (true) {
    auto comma = rest.find(',');
    auto item = rest.substr(0, comma);
    if (item.empty()) return bad_uri(uri, "empty host:port in the host list");
    auto hp = parse_host_port(uri, item);
    if (!hp) return hp.status();
    hosts.push_back(std::move(*hp));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (!allow_many && hosts.size() != 1) return bad_uri(uri, "exactly one host:port expected");
  return hosts;
}

}  // namespace

Result<BackendUri> parse_backend_uri(std::string_view uri) {
  auto sep = uri.find("://");
  if (sep == std::string_view::npos || sep == 0) return bad_uri(uri, "missing scheme://");
  BackendUri out;
  out.scheme = std::string(uri.substr(0, sep));
  std::string_view rest = uri.substr(sep + 3);
  if (out.scheme == "memory") {
    if (!rest.empty() && rest != "/") return bad_uri(uri, "memory:// takes no host or path");
    return out;
  }
  if (out.scheme == "sqlite") {
    // sqlite:///abs/path -> "/abs/path"; sqlite://rel/path -> "rel/path".
    if (rest.empty() || rest == "/") return bad_uri(uri, "empty sqlite file path");
    if (rest.back() == '/') return bad_uri(uri, "sqlite path must name a file, not a directory");
    if (rest.find('\0') != std::string_view::npos) return bad_uri(uri, "NUL in path");
    out.path = std::string(rest);
    return out;
  }
  if (out.scheme == "dlockd" || out.scheme == "redis") {
    auto hosts = parse_host_list(uri, rest, /*allow_many=*/false);
    if (!hosts) return hosts.status();
    out.hosts = std::move(*hosts);
    return out;
  }
  if (out.scheme == "redlock" || out.scheme == "etcd") {
    auto hosts = parse_host_list(uri, rest, /*allow_many=*/true);
    if (!hosts) return hosts.status();
    out.hosts = std::move(*hosts);
    return out;
  }
  return bad_uri(uri, "unknown scheme \"" + out.scheme + "\"");
}

Result<std::shared_ptr<Backend>> open_backend(std::string_view uri, BackendOptions options) {
  auto parsed = parse_backend_uri(uri);
  if (!parsed) return parsed.status();
  const BackendUri& u = *parsed;
  if (u.scheme == "memory" || u.scheme == "sqlite") return open_local_backend(u, options);
  if (u.scheme == "dlockd") return open_http_backend(u, options);
  if (u.scheme == "redis") return open_redis_backend(u, options);
  if (u.scheme == "redlock") return open_redlock_backend(u, options);
  if (u.scheme == "etcd") return open_etcd_backend(u, options);
  return invalid_argument("unknown backend scheme \"" + u.scheme + "\"");
}

Result<Grant> acquire_chunked(const AcquireRequest& req, Duration max_wait_per_call,
                              const std::function<Result<Grant>(const AcquireRequest&)>& call) {
  if (max_wait_per_call.count() <= 0 || req.wait <= max_wait_per_call) return call(req);
  // Measured on the steady clock: this splits real waiting time, whatever clock the engine uses.
  auto deadline = std::chrono::steady_clock::now() + req.wait;
  AcquireRequest chunk = req;
  while (true) {
    auto left = std::chrono::duration_cast<Duration>(deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = Duration{0};
    chunk.wait = std::min(left, max_wait_per_call);
    auto r = call(chunk);
    if (r.is_ok()) return r;
    bool timed_out = r.status().code() == Code::kConflict && r.status().message() == "locked";
    if (!timed_out || chunk.wait == left) return r;
  }
}

}  // namespace sd::dlock
