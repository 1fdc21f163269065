// Target parsing and the loopback-only guard: a load generator pointed at someone else's server by
// a typo is a denial-of-service tool, so anything that does not resolve to loopback is refused.
#include <charconv>

#include <boost/asio/ip/address.hpp>

#include "engine_impl.hpp"

namespace sd::loadgen {

std::string Target::to_string() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<Target> parse_target(std::string_view s, uint16_t default_port) {
  std::string_view rest = s;
  if (auto p = rest.find("://"); p != std::string_view::npos) rest.remove_prefix(p + 3);
  if (auto p = rest.find('/'); p != std::string_view::npos) rest = rest.substr(0, p);
  Target t;
  t.port = default_port;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos)
      return invalid_argument("bad target '" + std::string(s) + "'");
    t.host = std::string(rest.substr(1, close - 1));
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return invalid_argument("bad target '" + std::string(s) + "'");
      port = after.substr(1);
    }
  } else if (auto colon = rest.rfind(':');
             colon != std::string_view::npos && rest.find(':') == colon) {
    t.host = std::string(rest.substr(0, colon));
    port = rest.substr(colon + 1);
  } else {
    t.host = std::string(rest);  // a bare name or a bare IPv6 literal
  }
  if (t.host.empty()) return invalid_argument("target '" + std::string(s) + "' has no host");
  if (!port.empty()) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc() || p != port.data() + port.size() || v == 0 || v > 65535)
      return invalid_argument("bad port in target '" + std::string(s) + "'");
    t.port = static_cast<uint16_t>(v);
  }
  if (t.port == 0) return invalid_argument("target '" + std::string(s) + "' needs a port");
  return t;
}

namespace {
bool is_loopback(const boost::asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6()).is_loopback();
  return a.is_loopback();  // v4: 127.0.0.0/8, v6: ::1
}
}  // namespace

bool is_loopback_literal(std::string_view address) {
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(std::string(address), ec);
  return !ec && is_loopback(a);
}

namespace detail {

Result<tcp::endpoint> resolve_loopback(const Target& target) {
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  auto results = resolver.resolve(target.host, std::to_string(target.port), ec);
  if (ec || results.empty())
    return unavailable("cannot resolve '" + target.host + "': " + ec.message());
  for (const auto& r : results) {
    if (!is_loopback(r.endpoint().address()))
      return invalid_argument("refusing to load '" + target.host + "': it resolves to " +
                              r.endpoint().address().to_string() +
                              "; sd-load only targets loopback (127.0.0.0/8 or ::1)");
  }
  return results.begin()->endpoint();
}

}  // namespace detail
}  // namespace sd::loadgen
