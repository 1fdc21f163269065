#include "sd/net/router.hpp"

#include <exception>

#include <boost/container/small_vector.hpp>

namespace sd::net {

namespace {

// Inline storage for typical paths: matching a request allocates nothing for segments.
using Segments = boost::container::small_vector<std::string_view, 16>;

// "/a/b" -> {"a","b"}; "/" -> {""}. Expects a leading '/'.
template <class Out>
void split_path(std::string_view path, Out& out) {
  size_t pos = 1;
  while (true) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) {
      out.emplace_back(path.substr(pos));
      return;
    }
    out.emplace_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
}

bool is_param(const std::string& seg) {
  return seg.size() >= 2 && seg.front() == '{' && seg.back() == '}';
}

// Literal segments compare against the decoded segment; params need a non-empty segment.
bool segments_match(const std::vector<std::string>& pattern, const Segments& raw, bool& bad) {
  if (pattern.size() != raw.size()) return false;
  for (size_t i = 0; i < raw.size(); ++i) {
    const std::string& p = pattern[i];
    if (is_param(p)) {
      if (raw[i].empty()) return false;
      continue;
    }
    if (raw[i].find('%') == std::string_view::npos) {
      if (raw[i] != p) return false;
    } else {
      auto dec = percent_decode(raw[i]);
      if (!dec) {
        bad = true;
        return false;
      }
      if (*dec != p) return false;
    }
  }
  return true;
}

// Query values are form-encoded in practice, so '+' means space there (not in the path).
std::optional<std::string> decode_query_part(std::string_view s) {
  if (s.find('+') == std::string_view::npos) return percent_decode(s);
  std::string tmp(s);
  for (char& c : tmp) {
    if (c == '+') c = ' ';
  }
  return percent_decode(tmp);
}

bool parse_query(std::string_view q, std::map<std::string, std::string>& out) {
  size_t pos = 0;
  while (pos <= q.size()) {
    size_t amp = q.find('&', pos);
    if (amp == std::string_view::npos) amp = q.size();
    std::string_view part = q.substr(pos, amp - pos);
    if (!part.empty()) {
      size_t eq = part.find('=');
      auto key = decode_query_part(part.substr(0, eq));
      auto val = decode_query_part(eq == std::string_view::npos ? std::string_view{}
                                                                : part.substr(eq + 1));
      if (!key || !val) return false;
      out.emplace(std::move(*key), std::move(*val));  // first occurrence wins
    }
    pos = amp + 1;
  }
  return true;
}

Response bad_request(std::string_view msg) {
  return Response::error(400, "bad_request", msg);
}

}  // namespace

void Router::add(Method m, std::string pattern, Handler h) {
  // Sync handlers run inline; exceptions become a 500 carrying the exception text.
  add_async(m, std::move(pattern), [h = std::move(h)](Request& req, Responder out) {
    Response resp;
    try {
      resp = h(req);
    } catch (const std::exception& e) {
      resp = Response::error(500, "internal", e.what());
    } catch (...) {
      resp = Response::error(500, "internal", "handler threw a non-standard exception");
    }
    out.send(std::move(resp));
  });
}

void Router::add_async(Method m, std::string pattern, AsyncHandler h) {
  Route r;
  r.method = m;
  if (pattern.empty() || pattern.front() != '/') pattern.insert(pattern.begin(), '/');
  std::vector<std::string_view> views;
  split_path(pattern, views);
  r.segments.assign(views.begin(), views.end());
  r.handler = std::move(h);
  routes_.push_back(std::move(r));
}

bool Router::has_route(Method m, std::string_view pattern) const {
  std::string p(pattern);
  if (p.empty() || p.front() != '/') p.insert(p.begin(), '/');
  std::vector<std::string_view> views;
  split_path(p, views);
  for (const auto& r : routes_) {
    if (r.method == m && r.segments.size() == views.size() &&
        std::equal(views.begin(), views.end(), r.segments.begin())) {
      return true;
    }
  }
  return false;
}

void Router::dispatch(Request& req, Responder out) const {
  if (req.target.empty()) req.target = req.path;  // in-process callers may only set path
  std::string_view target = req.target;
  size_t qpos = target.find('?');
  std::string_view raw_path = target.substr(0, qpos);
  if (size_t hash = raw_path.find('#'); hash != std::string_view::npos) {
    raw_path = raw_path.substr(0, hash);
  }
  if (raw_path.empty() || raw_path.front() != '/') {
    return out.send(bad_request("request target must start with '/'"));
  }
  req.query.clear();
  if (qpos != std::string_view::npos && !parse_query(target.substr(qpos + 1), req.query)) {
    return out.send(bad_request("malformed percent-escape in query string"));
  }
  if (raw_path.find('%') == std::string_view::npos) {
    req.path.assign(raw_path);
  } else {
    auto dec = percent_decode(raw_path);
    if (!dec) return out.send(bad_request("malformed percent-escape in path"));
    req.path = std::move(*dec);
  }

  Segments raw;
  split_path(raw_path, raw);
  const Route* found = nullptr;
  const Route* get_fallback = nullptr;
  // Allowed methods for a 405, as a bitmask indexed by Method.
  unsigned allowed = 0;
  bool bad = false;
  for (const auto& r : routes_) {
    if (!segments_match(r.segments, raw, bad)) {
      if (bad) return out.send(bad_request("malformed percent-escape in path"));
      continue;
    }
    allowed |= 1u << static_cast<unsigned>(r.method);
    if (r.method == req.method) {
      found = &r;
      break;
    }
    if (req.method == Method::kHead && r.method == Method::kGet && !get_fallback) get_fallback = &r;
  }
  if (!found) found = get_fallback;
  if (!found) {
    if (allowed == 0)
      return out.send(Response::error(404, "not_found", "no route for " + req.path));
    Response resp = Response::error(405, "method_not_allowed",
                                    std::string(method_name(req.method)) + " is not allowed here");
    std::string allow;
    for (unsigned m = 0; m <= static_cast<unsigned>(Method::kOther); ++m) {
      if (!(allowed & (1u << m))) continue;
      if (!allow.empty()) allow += ", ";
      allow += method_name(static_cast<Method>(m));
    }
    resp.headers.emplace_back("Allow", std::move(allow));
    return out.send(std::move(resp));
  }

  req.params.clear();
  for (size_t i = 0; i < raw.size(); ++i) {
    const std::string& p = found->segments[i];
    if (!is_param(p)) continue;
    auto dec = percent_decode(raw[i]);
    if (!dec) return out.send(bad_request("malformed percent-escape in path"));
    req.params.emplace(p.substr(1, p.size() - 2), std::move(*dec));
  }
  try {
    found->handler(req, std::move(out));
  } catch (...) {
    // The handler owned the Responder: its destructor already answered 500 (or the handler stored
    // it and will answer later). Either way the exception must not reach the connection.
  }
}

}  // namespace sd::net
