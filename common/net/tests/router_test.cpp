#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "sd/net/router.hpp"

using namespace sd::net;

namespace {

struct CaptureSink : Responder::Sink {
  std::optional<Response> got;
  int calls = 0;
  void deliver(Response r) override {
    ++calls;
    got = std::move(r);
  }
};

Response call(const Router& router, Method m, std::string target, Request* out = nullptr) {
  Request req;
  req.method = m;
  req.target = std::move(target);
  auto sink = std::make_shared<CaptureSink>();
  router.dispatch(req, Responder(sink));
  REQUIRE(sink->calls == 1);
  if (out) *out = req;
  return *sink->got;
}

std::string error_code_of(const Response& r) {
  return nlohmann::json::parse(r.body).at("error").get<std::string>();
}

Router make_router() {
  Router r;
  r.add(Method::kGet, "/v1/locks/{name}", [](Request& req) {
    return Response::json(200, {{"name", req.param("name")}});
  });
  r.add(Method::kPost, "/v1/locks/{name}/acquire", [](Request& req) {
    return Response::json(200, {{"acquire", req.param("name")}});
  });
  r.add(Method::kDelete, "/v1/locks/{name}", [](Request&) { return Response::json(204, nullptr); });
  r.add(Method::kGet, "/v1/items/{a}/{b}", [](Request& req) {
    return Response::json(200, {{"a", req.param("a")}, {"b", req.param("b")}});
  });
  r.add(Method::kGet, "/", [](Request&) { return Response::text(200, "root"); });
  return r;
}

}  // namespace

TEST_CASE("router matches literals and parameters", "[unit][router]") {
  Router r = make_router();
  auto resp = call(r, Method::kGet, "/v1/locks/alpha");
  CHECK(resp.status == 200);
  CHECK(nlohmann::json::parse(resp.body)["name"] == "alpha");
  resp = call(r, Method::kPost, "/v1/locks/alpha/acquire");
  CHECK(nlohmann::json::parse(resp.body)["acquire"] == "alpha");
  resp = call(r, Method::kGet, "/v1/items/x/y");
  CHECK(nlohmann::json::parse(resp.body) == nlohmann::json{{"a", "x"}, {"b", "y"}});
  CHECK(call(r, Method::kGet, "/").body == "root");
}

TEST_CASE("router percent-decodes after segment matching", "[unit][router]") {
  Router r = make_router();
  Request req;
  auto resp = call(r, Method::kGet, "/v1/locks/a%2Fb%20c", &req);
  CHECK(resp.status == 200);
  CHECK(nlohmann::json::parse(resp.body)["name"] == "a/b c");
  CHECK(req.path == "/v1/locks/a/b c");
  CHECK(req.target == "/v1/locks/a%2Fb%20c");
  // An encoded literal still matches the literal segment.
  CHECK(call(r, Method::kGet, "/v1/%6Cocks/z").status == 200);
  // The decoded slash does not create a new segment for matching.
  CHECK(call(r, Method::kGet, "/v1/items/a%2Fb").status == 404);
}

TEST_CASE("router parses the query string", "[unit][router]") {
  Router r = make_router();
  Request req;
  call(r, Method::kGet, "/v1/locks/q?wait=5&x=a%20b&y=c+d&flag&wait=9", &req);
  CHECK(req.query.at("wait") == "5");  // first occurrence wins
  CHECK(req.query.at("x") == "a b");
  CHECK(req.query.at("y") == "c d");
  CHECK(req.query.at("flag").empty());
  CHECK(req.path == "/v1/locks/q");
}

TEST_CASE("router answers 404 and 405 as JSON errors", "[unit][router]") {
  Router r = make_router();
  auto resp = call(r, Method::kGet, "/nope");
  CHECK(resp.status == 404);
  CHECK(error_code_of(resp) == "not_found");
  CHECK(resp.content_type == "application/json");
  // Empty parameter segment does not match.
  CHECK(call(r, Method::kGet, "/v1/locks/").status == 404);

  resp = call(r, Method::kPut, "/v1/locks/a");
  CHECK(resp.status == 405);
  CHECK(error_code_of(resp) == "method_not_allowed");
  const std::string* allow = find_header(resp.headers, "allow");
  REQUIRE(allow);
  CHECK(*allow == "GET, DELETE");
}

TEST_CASE("router rejects malformed percent-escapes with 400", "[unit][router]") {
  Router r = make_router();
  auto resp = call(r, Method::kGet, "/v1/locks/a%2");
  CHECK(resp.status == 400);
  CHECK(error_code_of(resp) == "bad_request");
  CHECK(call(r, Method::kGet, "/v1/locks/a%zz").status == 400);
  CHECK(call(r, Method::kGet, "/v1/locks/a?x=%g1").status == 400);
  CHECK(call(r, Method::kGet, "no-slash").status == 400);
}

TEST_CASE("handler exceptions become 500 JSON errors", "[unit][router]") {
  Router r;
  r.add(Method::kGet, "/sync", [](Request&) -> Response { throw std::runtime_error("boom"); });
  r.add_async(Method::kGet, "/async", [](Request&, Responder) { throw 42; });
  r.add_async(Method::kGet, "/forgot", [](Request&, Responder) {});
  auto resp = call(r, Method::kGet, "/sync");
  CHECK(resp.status == 500);
  CHECK(error_code_of(resp) == "internal");
  CHECK(nlohmann::json::parse(resp.body)["message"] == "boom");
  CHECK(call(r, Method::kGet, "/async").status == 500);
  CHECK(call(r, Method::kGet, "/forgot").status == 500);
}

TEST_CASE("responder delivers at most once", "[unit][router]") {
  auto sink = std::make_shared<CaptureSink>();
  {
    Responder a(sink);
    CHECK(a.pending());
    Responder b = std::move(a);
    b.send(Response::text(201, "x"));
    CHECK_FALSE(b.pending());
    b.send(Response::text(202, "y"));
  }
  CHECK(sink->calls == 1);
  CHECK(sink->got->status == 201);
}

TEST_CASE("HEAD falls back to the GET route / has_route sees exact routes", "[unit][router]") {
  Router r = make_router();
  CHECK(call(r, Method::kHead, "/v1/locks/a").status == 200);
  CHECK(r.has_route(Method::kGet, "/v1/locks/{name}"));
  CHECK_FALSE(r.has_route(Method::kGet, "/healthz"));
}

TEST_CASE("percent_encode and percent_decode round-trip", "[unit][router]") {
  CHECK(percent_encode("a/b c~") == "a%2Fb%20c~");
  CHECK(percent_decode("a%2Fb%20c~") == "a/b c~");
  CHECK_FALSE(percent_decode("%").has_value());
  CHECK_FALSE(percent_decode("%4").has_value());
  CHECK(method_name(parse_method("PATCH")) == "PATCH");
  CHECK(parse_method("BREW") == Method::kOther);
}
