// FencedStore (pure token rules), FencedResource (history logging) and the resource's HTTP routes
// driven through the Router without sockets.

#include "sd/dlock/lab/fenced_store.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "sd/dlock/lab/history.hpp"
#include "sd/dlock/lab/resource_routes.hpp"
#include "sd/net/router.hpp"
#include "sd/testing/testing.hpp"

using namespace sd::dlock::lab;
using nlohmann::json;

namespace {

ReadRequest rd(uint64_t token, std::string client = "c1") {
  return {"counter", std::move(client), token};
}
WriteRequest wr(uint64_t token, int64_t value, std::string client = "c1") {
  return {"counter", std::move(client), token, value};
}

// Captures the one response a route gives.
class Capture final : public sd::net::Responder::Sink {
 public:
  explicit Capture(std::shared_ptr<sd::net::Response> out) : out_(std::move(out)) {}
  void deliver(sd::net::Response r) override { *out_ = std::move(r); }

 private:
  std::shared_ptr<sd::net::Response> out_;
};

struct Routes {
  std::shared_ptr<FencedResource> resource;
  sd::net::Router router;
  int64_t clock = 1000;

  explicit Routes(bool fencing, std::unique_ptr<HistoryWriter> history = nullptr)
      : resource(std::make_shared<FencedResource>(fencing, std::move(history),
                                                  [this] { return ++clock; })),
        router(make_resource_router(resource)) {}

  sd::net::Response call(sd::net::Method m, const std::string& target, std::string body = {}) {
    sd::net::Request req;
    req.method = m;
    req.target = target;
    req.body = std::move(body);
    auto out = std::make_shared<sd::net::Response>();
    out->status = 0;
    router.dispatch(req, sd::net::Responder(std::make_shared<Capture>(out)));
    REQUIRE(out->status != 0);
    return *out;
  }
  sd::net::Response post(const std::string& target, const json& body) {
    return call(sd::net::Method::kPost, target, body.dump());
  }
};

json body_of(const sd::net::Response& r) {
  json j = json::parse(r.body, nullptr, false);
  REQUIRE(j.is_object());
  return j;
}

void require_error(const sd::net::Response& r, int status, const std::string& code) {
  INFO(r.body);
  REQUIRE(r.status == status);
  json j = body_of(r);
  REQUIRE(j["error"] == code);
  REQUIRE(j["message"].is_string());
}

}  // namespace

TEST_CASE("fenced store: tokens must not go backwards", "[unit][lab]") {
  FencedStore s(true);
  Decision d = s.read(rd(5), 10);
  REQUIRE(d.accepted);
  REQUIRE(d.value == 0);
  REQUIRE(d.state.max_token_seen == 5);
  REQUIRE(d.event.type == EventType::kOk);
  REQUIRE(d.event.process == "resource");
  REQUIRE(d.event.f == "read");
  REQUIRE(d.event.client == "c1");
  REQUIRE(d.event.token == 5u);
  REQUIRE(d.event.value == 0);
  REQUIRE(d.event.key == "counter");
  REQUIRE(d.event.time_ns == 10);

  // Same token again (the holder reads twice) is fine; an older one is not.
  REQUIRE(s.read(rd(5), 11).accepted);
  Decision old = s.read(rd(4, "c2"), 12);
  REQUIRE_FALSE(old.accepted);
  REQUIRE(old.event.type == EventType::kFail);
  REQUIRE(old.event.error == "stale_token");
  REQUIRE_FALSE(old.event.value.has_value());
  REQUIRE(old.reason.find("4") != std::string::npos);

  Decision w = s.write(wr(5, 1), 13);
  REQUIRE(w.accepted);
  REQUIRE(w.event.value == 1);
  REQUIRE(w.state.value == 1);
  REQUIRE(w.state.last_written_token == 5);

  // A second write with the same token is rejected (token <= last written), as is an older one.
  REQUIRE_FALSE(s.write(wr(5, 2), 14).accepted);
  Decision stale = s.write(wr(3, 9, "c0"), 15);
  REQUIRE_FALSE(stale.accepted);
  REQUIRE(stale.event.value == 9);  // what it tried to write
  REQUIRE(stale.event.client == "c0");

  // A newer holder that writes without reading first is accepted.
  REQUIRE(s.write(wr(8, 2), 16).accepted);
  KeyState st = s.state("counter");
  REQUIRE(st.value == 2);
  REQUIRE(st.max_token_seen == 8);
  REQUIRE(st.last_written_token == 8);
  REQUIRE(st.writes_accepted == 2);
  REQUIRE(st.writes_rejected == 2);
  REQUIRE(st.reads == 2);
  REQUIRE(st.reads_rejected == 1);
}

TEST_CASE("fenced store: a write older than a newer holder's read is rejected", "[unit][lab]") {
  // Kleppmann's diagram: client 1 (token 33) pauses; client 2 (token 34) reads; client 1 wakes.
  FencedStore s(true);
  REQUIRE(s.read(rd(33, "c1"), 1).accepted);
  REQUIRE(s.read(rd(34, "c2"), 2).accepted);
  REQUIRE_FALSE(s.write(wr(33, 1, "c1"), 3).accepted);
  REQUIRE(s.write(wr(34, 1, "c2"), 4).accepted);
  REQUIRE(s.state("counter").value == 1);
}

TEST_CASE("fenced store: unfenced mode accepts everything", "[unit][lab]") {
  FencedStore s(false);
  REQUIRE_FALSE(s.fencing());
  REQUIRE(s.read(rd(34, "c2"), 1).accepted);
  REQUIRE(s.write(wr(34, 1, "c2"), 2).accepted);
  Decision late = s.write(wr(33, 1, "c1"), 3);  // the lost update
  REQUIRE(late.accepted);
  REQUIRE(s.read(rd(1), 4).accepted);
  KeyState st = s.state("counter");
  REQUIRE(st.value == 1);
  REQUIRE(st.writes_accepted == 2);
  REQUIRE(st.last_written_token == 33);
  REQUIRE(st.max_token_seen == 34);
}

TEST_CASE("fenced store: keys are independent and unknown keys are zero", "[unit][lab]") {
  FencedStore s(true);
  REQUIRE(s.write({"a", "c1", 10, 7}, 1).accepted);
  REQUIRE(s.write({"b", "c1", 1, 3}, 2).accepted);
  REQUIRE(s.state("a").value == 7);
  REQUIRE(s.state("b").value == 3);
  KeyState none = s.state("nope");
  REQUIRE(none.key == "nope");
  REQUIRE(none.value == 0);
  REQUIRE(none.max_token_seen == 0);
  REQUIRE(none.writes_accepted == 0);
  // The first write may carry token 0.
  REQUIRE(s.write({"z", "c1", 0, 1}, 3).accepted);
}

TEST_CASE("fenced resource logs every decision in order", "[unit][lab]") {
  sd::testing::TempDir dir("sd-lab-res");
  auto w = HistoryWriter::open(dir.file("resource.jsonl"));
  REQUIRE(w.is_ok());
  int64_t t = 0;
  FencedResource r(true, std::move(*w), [&t] { return t += 10; });
  REQUIRE(r.read(rd(2)).accepted);
  REQUIRE(r.write(wr(2, 1)).accepted);
  REQUIRE_FALSE(r.write(wr(1, 1, "c0")).accepted);
  REQUIRE(r.history_errors() == 0);
  auto h = read_history(dir.file("resource.jsonl"));
  REQUIRE(h.is_ok());
  REQUIRE(h->events.size() == 3);
  REQUIRE(h->events[0].f == "read");
  REQUIRE(h->events[0].time_ns == 10);
  REQUIRE(h->events[1].type == EventType::kOk);
  REQUIRE(h->events[1].value == 1);
  REQUIRE(h->events[2].type == EventType::kFail);
  REQUIRE(h->events[2].client == "c0");
  REQUIRE(h->events[2].time_ns == 30);
}

TEST_CASE("resource routes: read write state and stale tokens", "[unit][lab]") {
  Routes f(true);
  auto r = f.post("/v1/read", {{"key", "counter"}, {"client", "c1"}, {"token", 5}});
  REQUIRE(r.status == 200);
  REQUIRE(body_of(r)["value"] == 0);
  r = f.post("/v1/write", {{"key", "counter"}, {"client", "c1"}, {"token", 5}, {"value", 1}});
  REQUIRE(r.status == 200);
  REQUIRE(body_of(r)["accepted"] == true);

  r = f.post("/v1/read", {{"key", "counter"}, {"client", "c2"}, {"token", 4}});
  require_error(r, 409, "stale_token");
  REQUIRE(body_of(r)["max_token_seen"] == 5);
  r = f.post("/v1/write", {{"key", "counter"}, {"client", "c2"}, {"token", 5}, {"value", 9}});
  require_error(r, 409, "stale_token");

  r = f.call(sd::net::Method::kGet, "/v1/state?key=counter");
  REQUIRE(r.status == 200);
  json s = body_of(r);
  REQUIRE(s["key"] == "counter");
  REQUIRE(s["value"] == 1);
  REQUIRE(s["max_token_seen"] == 5);
  REQUIRE(s["last_written_token"] == 5);
  REQUIRE(s["writes_accepted"] == 1);
  REQUIRE(s["writes_rejected"] == 1);
  REQUIRE(s["reads"] == 1);
  REQUIRE(s["fencing"] == true);

  // Unknown key: the initial state. No key: "counter".
  s = body_of(f.call(sd::net::Method::kGet, "/v1/state?key=other"));
  REQUIRE(s["key"] == "other");
  REQUIRE(s["value"] == 0);
  REQUIRE(s["writes_accepted"] == 0);
  REQUIRE(body_of(f.call(sd::net::Method::kGet, "/v1/state"))["value"] == 1);
}

TEST_CASE("resource routes: unfenced accepts stale writes", "[unit][lab]") {
  Routes f(false);
  REQUIRE(f.post("/v1/read", {{"key", "k"}, {"client", "c2"}, {"token", 9}}).status == 200);
  auto r = f.post("/v1/write", {{"key", "k"}, {"client", "c1"}, {"token", 1}, {"value", 1}});
  REQUIRE(r.status == 200);
  REQUIRE(body_of(f.call(sd::net::Method::kGet, "/v1/state?key=k"))["fencing"] == false);
}

TEST_CASE("resource routes: bad input is a 400 JSON error", "[unit][lab]") {
  Routes f(true);
  const json ok = {{"key", "counter"}, {"client", "c1"}, {"token", 1}, {"value", 1}};
  auto without = [&](const char* field) {
    json j = ok;
    j.erase(field);
    return j;
  };
  auto with = [&](const char* field, json v) {
    json j = ok;
    j[field] = std::move(v);
    return j;
  };
  for (const char* target : {"/v1/read", "/v1/write"}) {
    INFO(target);
    require_error(f.post(target, without("key")), 400, "invalid_argument");
    require_error(f.post(target, without("client")), 400, "invalid_argument");
    require_error(f.post(target, without("token")), 400, "invalid_argument");
    require_error(f.post(target, with("token", -1)), 400, "invalid_argument");
    require_error(f.post(target, with("token", "5")), 400, "invalid_argument");
    require_error(f.post(target, with("token", 1.5)), 400, "invalid_argument");
    require_error(f.post(target, with("key", 5)), 400, "invalid_argument");
    require_error(f.post(target, with("key", "")), 400, "invalid_argument");
    require_error(f.post(target, with("client", std::string(300, 'x'))), 400, "invalid_argument");
    require_error(f.call(sd::net::Method::kPost, target, "not json"), 400, "invalid_argument");
    require_error(f.call(sd::net::Method::kPost, target, "[1]"), 400, "invalid_argument");
    require_error(f.post(target, with("pad", std::string(kMaxResourceBody, 'p'))), 400,
                  "invalid_argument");
  }
  require_error(f.post("/v1/write", without("value")), 400, "invalid_argument");
  require_error(f.post("/v1/write", with("value", "1")), 400, "invalid_argument");
  require_error(f.call(sd::net::Method::kGet, "/v1/state?key="), 400, "invalid_argument");
  // Nothing was applied.
  json s = body_of(f.call(sd::net::Method::kGet, "/v1/state?key=counter"));
  REQUIRE(s["reads"] == 0);
  REQUIRE(s["writes_accepted"] == 0);
  REQUIRE(s["max_token_seen"] == 0);
  REQUIRE(f.call(sd::net::Method::kGet, "/v1/nope").status == 404);
}
