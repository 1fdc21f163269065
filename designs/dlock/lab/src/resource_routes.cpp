// HTTP routes of the fenced resource: JSON in, FencedResource decision, JSON out.

#include "sd/dlock/lab/resource_routes.hpp"

#include <limits>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "sd/net/json.hpp"

namespace sd::dlock::lab {

namespace {

using nlohmann::json;
using sd::net::Method;
using sd::net::Request;
using sd::net::Response;

Response bad_request(const std::string& message) {
  return Response::error(400, "invalid_argument", message);
}

Status check_name(const std::string& field, const std::string& v) {
  if (v.empty()) return invalid_argument("\"" + field + "\" must not be empty");
  if (v.size() > kMaxResourceKey) {
    return invalid_argument("\"" + field + "\" is longer than " + std::to_string(kMaxResourceKey) +
                            " bytes");
  }
  return Status::ok();
}

// The fields every operation carries: key, client, token (all required).
struct Common {
  std::string key, client;
  uint64_t token = 0;
};

Result<Common> parse_common(const json& body) {
  Common c;
  auto key = sd::net::get_string(body, "key");
  if (!key) return key.status();
  auto client = sd::net::get_string(body, "client");
  if (!client) return client.status();
  auto token = sd::net::get_uint(body, "token");
  if (!token) return token.status();
  if (!*key) return invalid_argument("missing field \"key\"");
  if (!*client) return invalid_argument("missing field \"client\"");
  if (!*token) return invalid_argument("missing field \"token\"");
  c.key = **key;
  c.client = **client;
  c.token = **token;
  SD_RETURN_IF_ERROR(check_name("key", c.key));
  SD_RETURN_IF_ERROR(check_name("client", c.client));
  return c;
}

Result<json> parse_body(const Request& req) {
  if (req.body.size() > kMaxResourceBody) {
    return invalid_argument("request body is larger than " + std::to_string(kMaxResourceBody) +
                            " bytes");
  }
  return sd::net::parse_json_object(req.body);
}

Response stale(const Decision& d) {
  json j = {{"error", "stale_token"},
            {"message", d.reason},
            {"max_token_seen", d.state.max_token_seen},
            {"last_written_token", d.state.last_written_token}};
  return Response::json(409, j);
}

json state_json(const KeyState& s, bool fencing) {
  return {{"key", s.key},
          {"value", s.value},
          {"max_token_seen", s.max_token_seen},
          {"last_written_token", s.last_written_token},
          {"writes_accepted", s.writes_accepted},
          {"writes_rejected", s.writes_rejected},
          {"reads", s.reads},
          {"reads_rejected", s.reads_rejected},
          {"fencing", fencing}};
}

}  // namespace

sd::net::Router make_resource_router(std::shared_ptr<FencedResource> resource) {
  sd::net::Router r;
  r.add(Method::kPost, "/v1/read", [resource](Request& req) {
    auto body = parse_body(req);
    if (!body) return bad_request(body.status().message());
    auto c = parse_common(*body);
    if (!c) return bad_request(c.status().message());
    Decision d = resource->read({c->key, c->client, c->token});
    if (!d.accepted) return stale(d);
    return Response::json(200, {{"value", d.value}});
  });
  r.add(Method::kPost, "/v1/write", [resource](Request& req) {
    auto body = parse_body(req);
    if (!body) return bad_request(body.status().message());
    auto c = parse_common(*body);
    if (!c) return bad_request(c.status().message());
    auto value = sd::net::get_int(*body, "value", std::numeric_limits<int64_t>::min(),
                                  std::numeric_limits<int64_t>::max());
    if (!value) return bad_request(value.status().message());
    if (!*value) return bad_request("missing field \"value\"");
    Decision d = resource->write({c->key, c->client, c->token, **value});
    if (!d.accepted) return stale(d);
    return Response::json(200, {{"accepted", true}});
  });
  r.add(Method::kGet, "/v1/state", [resource](Request& req) {
    std::string key = "counter";
    if (auto it = req.query.find("key"); it != req.query.end()) key = it->second;
    Status st = check_name("key", key);
    if (!st.is_ok()) return bad_request(st.message());
    return Response::json(200, state_json(resource->state(key), resource->fencing()));
  });
  return r;
}

}  // namespace sd::dlock::lab
