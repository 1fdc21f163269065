// TicketingService through net::Router::dispatch: every route's happy path and JSON shape, the
// error mapping, idempotency keys, the live seat map and queue streams, the waiting-room gate and
// the periodic jobs (hold expiry, queue ticks, reconcile) on ManualTimers.

#include <algorithm>
#include <set>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "service/sse_hub.hpp"
#include "service/worker_pool.hpp"
#include "service_test_support.hpp"

using namespace service_test;  // NOLINT(google-build-using-namespace)

TEST_CASE("service: catalog routes and their JSON shape", "[unit][service]") {
  Fixture f;
  auto r = f.get("/v1/events");
  REQUIRE(r->status() == 200);
  REQUIRE(r->response.content_type == "application/json");
  json events = r->body()["events"];
  REQUIRE(events.size() == 2);
  const json& e = events[0];
  CHECK(e["id"] == f.concert);
  CHECK(e["name"] == "Concert");
  CHECK(e["venue"] == "Test Hall");
  CHECK(e["starts_at_ms"].is_number_integer());
  CHECK(e["waiting_room"] == false);
  CHECK(e["seat_count"] == 15);
  CHECK(e["available"] == 15);
  CHECK(events[1]["waiting_room"] == true);

  r = f.get(f.events_path(f.concert));
  REQUIRE(r->status() == 200);
  json ev = r->body();
  CHECK(ev["id"] == f.concert);
  CHECK(ev["hold_ttl_s"] == 600);
  CHECK(ev["strategy"] == "conditional");
  REQUIRE(ev["tiers"].size() == 2);
  std::set<std::pair<std::string, int64_t>> tiers;
  for (const json& t : ev["tiers"]) {
    tiers.emplace(t["name"].get<std::string>(), t["price_cents"].get<int64_t>());
  }
  CHECK(tiers == std::set<std::pair<std::string, int64_t>>{{"floor", 5'000}, {"balcony", 2'500}});

  r = f.get(f.events_path(f.concert, "/seats"));
  REQUIRE(r->status() == 200);
  json doc = r->body();
  CHECK(doc["event"] == f.concert);
  REQUIRE(doc["seats"].size() == 15);
  const json& s = doc["seats"][0];
  for (const char* field :
       {"id", "label", "section", "row", "number", "x", "y", "tier", "price_cents", "version"}) {
    CHECK(s.contains(field));
  }
  CHECK(s["state"] == "available");
  CHECK(s["label"].get<std::string>().find(s["section"].get<std::string>()) == 0);

  r = f.get("/v1/strategy");
  REQUIRE(r->status() == 200);
  CHECK(r->body()["strategy"] == "conditional");
  CHECK(r->body()["stats"].contains("claims"));

  require_error(f.get("/v1/events/999"), 404, "not_found");
  require_error(f.get("/v1/events/999/seats"), 404, "not_found");
  require_error(f.get("/v1/events/abc"), 400, "invalid_argument");
  require_error(f.get("/v1/holds/h_nope"), 404, "not_found");
  require_error(f.get("/v1/orders/o_nope"), 404, "not_found");
}

TEST_CASE("service: hold, pay, cancel the order", "[unit][service]") {
  Options o;
  o.strategy = GENERATE(tk::StrategyKind::kConditional, tk::StrategyKind::kDlock);
  Fixture f(o);
  const std::vector<tk::SeatId> two = {f.seats[0], f.seats[1]};

  auto r = f.hold(f.concert, "alice", two);
  INFO(r->response.body);
  REQUIRE(r->status() == 201);
  json h = r->body();
  const std::string hold_id = h["hold_id"];
  CHECK(hold_id.rfind("h_", 0) == 0);
  CHECK(h["event"] == f.concert);
  CHECK(h["customer"] == "alice");
  CHECK(h["seats"] == json(two));
  CHECK(h["amount_cents"] == 10'000);
  CHECK(h["status"] == "active");
  CHECK(h["ttl_ms"] == 600'000);
  CHECK(h["expires_at_ms"] == f.now() + 600'000);
  CHECK_FALSE(h.contains("order_id"));
  CHECK(f.seat(f.concert, two[0])["state"] == "held");
  CHECK(f.get("/v1/events")->body()["events"][0]["available"] == 13);

  r = f.get("/v1/holds/" + hold_id);
  REQUIRE(r->status() == 200);
  CHECK(r->body()["hold_id"] == hold_id);
  CHECK(r->body()["status"] == "active");

  r = f.pay(hold_id, "alice");
  INFO(r->response.body);
  REQUIRE(r->status() == 201);
  json order = r->body();
  const std::string order_id = order["order_id"];
  CHECK(order_id.rfind("o_", 0) == 0);
  CHECK(order["hold_id"] == hold_id);
  CHECK(order["event"] == f.concert);
  CHECK(order["customer"] == "alice");
  CHECK(order["seats"] == json(two));
  CHECK(order["amount_cents"] == 10'000);
  CHECK(order["status"] == "confirmed");
  CHECK(order["payment_id"].get<std::string>().rfind("pay_", 0) == 0);
  CHECK(f.seat(f.concert, two[1])["state"] == "sold");

  r = f.get("/v1/holds/" + hold_id);
  CHECK(r->body()["status"] == "paid");
  CHECK(r->body()["order_id"] == order_id);
  r = f.get("/v1/orders/" + order_id);
  REQUIRE(r->status() == 200);
  CHECK(r->body() == order);

  // Paying twice is a conflict (idempotency keys are how clients retry safely).
  require_error(f.pay(hold_id, "alice"), 409, "hold_not_active");
  // Only the buyer may cancel.
  require_error(f.post("/v1/orders/" + order_id + "/cancel", {{"customer", "mallory"}}), 403,
                "not_your_hold");
  r = f.post("/v1/orders/" + order_id + "/cancel", {{"customer", "alice"}});
  INFO(r->response.body);
  REQUIRE(r->status() == 200);
  CHECK(r->body()["status"] == "cancelled");
  CHECK(r->body()["order_id"] == order_id);
  CHECK(f.seat(f.concert, two[0])["state"] == "available");
  auto charges = f.payments->charges();
  REQUIRE(charges.is_ok());
  REQUIRE(charges->size() == 1);
  CHECK((*charges)[0].state == tk::ChargeState::kRefunded);

  // The seats sell again.
  f.hold_ok(f.concert, "bob", two);
}

TEST_CASE("service: cancel a hold releases its seats", "[unit][service]") {
  Fixture f;
  std::string id = f.hold_ok(f.concert, "alice", {f.seats[2]});
  require_error(f.post("/v1/holds/" + id + "/cancel", {{"customer", "bob"}}), 403, "not_your_hold");
  auto r = f.post("/v1/holds/" + id + "/cancel", {{"customer", "alice"}});
  INFO(r->response.body);
  REQUIRE(r->status() == 200);
  CHECK(r->body()["hold_id"] == id);
  CHECK(r->body()["status"] == "cancelled");
  CHECK(r->body()["ttl_ms"] == 0);
  CHECK(f.seat(f.concert, f.seats[2])["state"] == "available");
  require_error(f.post("/v1/holds/" + id + "/cancel", {{"customer", "alice"}}), 409,
                "hold_not_active");
  require_error(f.post("/v1/holds/h_nope/cancel", {{"customer", "alice"}}), 404, "not_found");
  require_error(f.pay(id, "alice"), 409, "hold_not_active");
}

TEST_CASE("service: request errors map to HTTP statuses", "[unit][service]") {
  Options o;
  o.service.max_body_bytes = 1024;
  Fixture f(o);
  const std::string holds = f.events_path(f.concert, "/holds");

  SECTION("400: malformed JSON, wrong types, missing fields") {
    require_error(f.call(Method::kPost, holds, "{not json"), 400, "invalid_argument");
    require_error(f.call(Method::kPost, holds, "[1,2]"), 400, "invalid_argument");
    require_error(f.call(Method::kPost, holds, ""), 400, "invalid_argument");
    require_error(f.post(holds, {{"seats", {f.seats[0]}}}), 400, "invalid_argument");
    require_error(f.post(holds, {{"customer", 7}, {"seats", {f.seats[0]}}}), 400,
                  "invalid_argument");
    require_error(f.post(holds, {{"customer", "alice"}, {"seats", "1,2"}}), 400,
                  "invalid_argument");
    require_error(f.post(holds, {{"customer", "alice"}, {"seats", {"one"}}}), 400,
                  "invalid_argument");
    require_error(f.post(holds, {{"customer", "alice"}, {"seats", {f.seats[0]}}, {"ttl_s", "x"}}),
                  400, "invalid_argument");
    require_error(f.post(holds, {{"customer", "alice"}, {"seats", json::array()}}), 400,
                  "invalid_argument");
    require_error(f.post(holds, {{"customer", "al ice"}, {"seats", {f.seats[0]}}}), 400,
                  "invalid_argument");
    require_error(f.post(holds, {{"customer", "alice"}, {"seats", {f.seats[0]}}, {"ttl_s", 0}}),
                  400, "invalid_argument");
    // A seat of another venue (or none at all).
    require_error(f.post(holds, {{"customer", "alice"}, {"seats", {999'999}}}), 400,
                  "invalid_argument");
    std::string id = f.hold_ok(f.concert, "alice", {f.seats[0]});
    require_error(f.post("/v1/holds/" + id + "/pay", {{"customer", "alice"}}), 400,
                  "invalid_argument");
    require_error(f.pay(id, "alice", "1234"), 400, "invalid_card");
  }

  SECTION("unknown fields are ignored") {
    auto r = f.post(holds, {{"customer", "alice"},
                            {"seats", {f.seats[0]}},
                            {"coupon", "FREE"},
                            {"nested", {{"a", 1}}}});
    INFO(r->response.body);
    CHECK(r->status() == 201);
  }

  SECTION("404: unknown event, hold, order") {
    require_error(f.hold(999, "alice", {f.seats[0]}), 404, "not_found");
    require_error(f.pay("h_nope", "alice"), 404, "not_found");
    require_error(f.post("/v1/orders/o_nope/cancel", {{"customer", "alice"}}), 404, "not_found");
    require_error(f.post("/v1/nope", json::object()), 404, "not_found");
  }

  SECTION("409 seat_unavailable, 403 not_your_hold, 402 card_declined, 429 too_many_holds") {
    std::string id = f.hold_ok(f.concert, "alice", {f.seats[0], f.seats[1]});
    require_error(f.hold(f.concert, "bob", {f.seats[1], f.seats[2]}), 409, "seat_unavailable");
    CHECK(f.seat(f.concert, f.seats[2])["state"] == "available");  // all or nothing
    require_error(f.pay(id, "bob"), 403, "not_your_hold");
    require_error(f.pay(id, "alice", kDeclinedCard), 402, "card_declined");
    // Nothing charged; the hold is still there to pay with another card.
    CHECK(f.get("/v1/holds/" + id)->body()["status"] == "active");
    REQUIRE(f.pay(id, "alice")->status() == 201);

    for (int i = 0; i < 4; ++i)
      f.hold_ok(f.concert, "carol", {f.seats[static_cast<size_t>(3 + i)]});
    require_error(f.hold(f.concert, "carol", {f.seats[7]}), 429, "too_many_holds");
  }

  SECTION("413 beyond max_body_bytes") {
    json big = {{"customer", "alice"}, {"seats", {f.seats[0]}}, {"pad", std::string(2048, 'x')}};
    require_error(f.post(holds, big), 413, "payload_too_large");
    require_error(f.post("/v1/holds/h_x/pay", big), 413, "payload_too_large");
  }
}

TEST_CASE("service: hold attempts per shopper are rate limited with the rate limiter's bucket",
          "[unit][service]") {
  Options o;
  o.service.holds_per_minute = 3;
  Fixture f(o);
  const std::string holds = f.events_path(f.concert, "/holds");
  // Three attempts a minute, successful or not: a taken seat counts too (bots retry those).
  CHECK(f.post(holds, {{"customer", "alice"}, {"seats", {f.seats[0]}}})->status() == 201);
  CHECK(f.post(holds, {{"customer", "alice"}, {"seats", {f.seats[1]}}})->status() == 201);
  CHECK(f.post(holds, {{"customer", "alice"}, {"seats", {f.seats[0]}}})->status() == 409);
  auto limited = f.post(holds, {{"customer", "alice"}, {"seats", {f.seats[2]}}});
  require_error(limited, 429, "rate_limited");
  CHECK(limited->header("Retry-After") == "20");                 // one token every 60 s / 3
  CHECK(f.seat(f.concert, f.seats[2])["state"] == "available");  // nothing was held
  // Per shopper and per event: bob is not affected.
  CHECK(f.post(holds, {{"customer", "bob"}, {"seats", {f.seats[2]}}})->status() == 201);
  // A 429 is not stored under an idempotency key: the retry after the wait runs.
  sd::net::Headers key = {{"Idempotency-Key", "retry-1"}};
  const json body = {{"customer", "alice"}, {"seats", {f.seats[3]}}};
  require_error(f.post(holds, body, key), 429, "rate_limited");
  f.clock.advance(std::chrono::seconds(19));
  require_error(f.post(holds, body, key), 429, "rate_limited");
  f.clock.advance(std::chrono::seconds(1));
  auto ok = f.post(holds, body, key);
  CHECK(ok->status() == 201);
  CHECK_FALSE(ok->has_header("Idempotent-Replayed"));
}

TEST_CASE("service: idempotency keys replay, reject reuse and in-progress keys",
          "[unit][service]") {
  Fixture f;
  const std::string holds = f.events_path(f.concert, "/holds");
  const json body = {{"customer", "alice"}, {"seats", {f.seats[0]}}};
  sd::net::Headers key = {{"Idempotency-Key", "k-1"}};

  auto first = f.post(holds, body, key);
  REQUIRE(first->status() == 201);
  CHECK_FALSE(first->has_header("Idempotent-Replayed"));
  auto again = f.post(holds, body, key);
  REQUIRE(again->status() == 201);
  CHECK(again->header("Idempotent-Replayed") == "true");
  CHECK(again->response.body == first->response.body);
  CHECK(f.metric("ticketing_idempotent_replays_total") == 1);
  // One hold, not two: the seat is held by the first.
  CHECK(f.seat(f.concert, f.seats[0])["version"] == 1);

  // The same key with another request: 422.
  require_error(f.post(holds, {{"customer", "alice"}, {"seats", {f.seats[1]}}}, key), 422,
                "idempotency_key_reused");
  // Keys are per customer.
  auto bob = f.post(holds, {{"customer", "bob"}, {"seats", {f.seats[1]}}}, key);
  CHECK(bob->status() == 201);
  CHECK_FALSE(bob->has_header("Idempotent-Replayed"));

  // Errors that are the client's are stored too; a replayed 409 is the same 409.
  auto conflict =
      f.post(holds, {{"customer", "carol"}, {"seats", {f.seats[0]}}}, {{"Idempotency-Key", "k-2"}});
  require_error(conflict, 409, "seat_unavailable");
  auto conflict_again =
      f.post(holds, {{"customer", "carol"}, {"seats", {f.seats[0]}}}, {{"Idempotency-Key", "k-2"}});
  CHECK(conflict_again->status() == 409);
  CHECK(conflict_again->header("Idempotent-Replayed") == "true");
  CHECK(conflict_again->response.body == conflict->response.body);

  // A pay retried with its key after success answers the same order.
  std::string hold_id = first->body()["hold_id"];
  auto paid = f.pay(hold_id, "alice", kCard, {{"Idempotency-Key", "pay-1"}});
  REQUIRE(paid->status() == 201);
  auto paid_again = f.pay(hold_id, "alice", kCard, {{"Idempotency-Key", "pay-1"}});
  CHECK(paid_again->status() == 201);
  CHECK(paid_again->response.body == paid->response.body);
  CHECK(paid_again->header("Idempotent-Replayed") == "true");

  // A key whose first request is still running: 409 in use.
  const json busy = {{"customer", "dave"}, {"seats", {f.seats[5]}}};
  auto begun =
      f.idempotency->begin("dave", "k-busy", "POST " + holds + "\n" + busy.dump(), f.now());
  REQUIRE(begun.is_ok());
  REQUIRE(begun->outcome == tk::IdempotencyStore::Outcome::kProceed);
  require_error(f.post(holds, busy, {{"Idempotency-Key", "k-busy"}}), 409,
                "idempotency_key_in_use");
  CHECK(f.seat(f.concert, f.seats[5])["state"] == "available");

  // A malformed key.
  require_error(f.post(holds, body, {{"Idempotency-Key", std::string(300, 'k')}}), 400,
                "invalid_idempotency_key");
}

TEST_CASE("service: holds expire on the sweep timer", "[unit][service]") {
  Options o;
  o.strategy = GENERATE(tk::StrategyKind::kConditional, tk::StrategyKind::kDlock);
  Fixture f(o);
  auto r = f.post(f.events_path(f.concert, "/holds"),
                  {{"customer", "alice"}, {"seats", {f.seats[0]}}, {"ttl_s", 2}});
  INFO(r->response.body);
  REQUIRE(r->status() == 201);
  CHECK(r->body()["ttl_ms"] == 2'000);
  std::string id = r->body()["hold_id"];
  auto stream = f.open_stream(f.events_path(f.concert, "/seats/stream"));
  (void)stream->take();

  f.timers.advance(1'500ms);
  CHECK(f.get("/v1/holds/" + id)->body()["ttl_ms"] == 500);
  f.timers.advance(1'500ms);  // expired at 2 s, released by the sweep at 3 s
  json h = f.get("/v1/holds/" + id)->body();
  CHECK(h["status"] == "expired");
  CHECK(h["ttl_ms"] == 0);
  CHECK(f.seat(f.concert, f.seats[0])["state"] == "available");
  CHECK(f.metric("ticketing_holds_expired_total") == 1);
  require_error(f.pay(id, "alice"), 409, "hold_expired");

  auto events = parse_sse(stream->take());
  REQUIRE(events.size() == 1);
  CHECK(events[0].event == "seat");
  CHECK(json::parse(events[0].data)["seat"] == f.seats[0]);
  CHECK(json::parse(events[0].data)["state"] == "available");
}

TEST_CASE("service: the periodic jobs are armed and stop on shutdown", "[unit][service]") {
  Options o;
  o.service.sweep_interval = 500ms;
  o.service.queue_tick = 50ms;
  o.service.reconcile_interval = 5'000ms;
  Fixture f(o);
  auto delays = f.timers.delays();
  std::sort(delays.begin(), delays.end());
  CHECK(delays == std::vector<std::chrono::milliseconds>{50ms, 500ms, 5'000ms, 3'600'000ms});
  CHECK(f.timers.live() == 4);
  f.timers.advance(1'000ms);
  CHECK(f.timers.live() == 4);  // each re-armed after running
  f.service->shutdown();
  CHECK(f.timers.live() == 0);
  f.service->shutdown();  // idempotent
}

TEST_CASE("service: reconcile voids an authorization whose order never committed",
          "[unit][service]") {
  Options o;
  o.booking.orphan_authorization_ms = 1'000;
  o.service.reconcile_interval = 5'000ms;
  Fixture f(o);
  std::string id = f.hold_ok(f.concert, "alice", {f.seats[0]});
  // The provider records the authorization but the answer is lost: the caller sees 503.
  require_error(f.pay(id, "alice", kTimeoutAfterSuccessCard), 503, "payment_unavailable");
  auto charges = f.payments->charges();
  REQUIRE(charges.is_ok());
  REQUIRE(charges->size() == 1);
  CHECK((*charges)[0].state == tk::ChargeState::kAuthorized);

  f.timers.advance(5'000ms);
  charges = f.payments->charges();
  REQUIRE(charges.is_ok());
  CHECK((*charges)[0].state == tk::ChargeState::kVoided);
  CHECK(f.metric("ticketing_reconcile_total{action=\"voided\"}") == 1);
  // The hold is still payable.
  CHECK(f.pay(id, "alice")->status() == 201);
}

TEST_CASE("service: the seat map stream sends a snapshot, then versioned deltas",
          "[unit][service]") {
  Options o;
  o.strategy = GENERATE(tk::StrategyKind::kConditional, tk::StrategyKind::kDlock);
  Fixture f(o);
  std::string before = f.hold_ok(f.concert, "zed", {f.seats[4]});
  auto r = f.get(f.events_path(f.concert, "/seats/stream"));
  REQUIRE(r->status() == 200);
  CHECK(r->response.content_type == "text/event-stream");
  CHECK(r->header("Cache-Control") == "no-cache");
  auto stream = r->response.stream;
  REQUIRE(stream);

  auto events = parse_sse(stream->take());
  REQUIRE(events.size() == 1);
  REQUIRE(events[0].event == "snapshot");
  json snap = json::parse(events[0].data);
  CHECK(snap["event"] == f.concert);
  REQUIRE(snap["seats"].size() == 15);
  std::map<int64_t, json> by_id;
  for (const json& s : snap["seats"]) by_id[s["id"].get<int64_t>()] = s;
  CHECK(by_id[f.seats[4]]["state"] == "held");
  const int64_t v0 = by_id[f.seats[0]]["version"];

  std::string id = f.hold_ok(f.concert, "alice", {f.seats[0], f.seats[1]});
  events = parse_sse(stream->take());
  REQUIRE(events.size() == 2);
  std::set<int64_t> seen;
  for (const auto& ev : events) {
    CHECK(ev.event == "seat");
    json d = json::parse(ev.data);
    CHECK(d["state"] == "held");
    CHECK(d["version"].get<int64_t>() > v0);
    seen.insert(d["seat"].get<int64_t>());
  }
  CHECK(seen == std::set<int64_t>{f.seats[0], f.seats[1]});

  REQUIRE(f.pay(id, "alice")->status() == 201);
  events = parse_sse(stream->take());
  REQUIRE(events.size() == 2);
  for (const auto& ev : events) CHECK(json::parse(ev.data)["state"] == "sold");

  // Another event's changes do not show up here.
  f.timers.advance(200ms);  // queue ticks do nothing visible either
  auto other = f.hold(f.flash, "bob", {f.seats[0]});
  CHECK(other->status() == 403);
  CHECK(stream->take().empty());

  // A closed stream unregisters (max_streams counts only open ones); shutdown closes the rest.
  stream->close();
  auto second = f.open_stream(f.events_path(f.concert, "/seats/stream"));
  f.service->shutdown();
  CHECK(second->closed());
}

TEST_CASE("service: stream limits and unknown events", "[unit][service]") {
  Options o;
  o.service.max_streams = 1;
  Fixture f(o);
  require_error(f.get("/v1/events/999/seats/stream"), 404, "not_found");
  auto s1 = f.open_stream(f.events_path(f.concert, "/seats/stream"));
  require_error(f.get(f.events_path(f.concert, "/seats/stream")), 503, "unavailable");
  s1->detach();  // the client went away
  auto s2 = f.open_stream(f.events_path(f.concert, "/seats/stream"));
  CHECK_FALSE(s2->closed());
}

TEST_CASE("service: seat hub buffers changes until the snapshot is sent", "[unit][service]") {
  auto hub = std::make_shared<tk::SeatHub>();
  auto stream = sd::net::EventStream::create();
  auto sub = hub->subscribe(7, stream);
  CHECK(hub->size() == 1);
  // Committed before the snapshot read (version 2, in it) and after (version 5).
  hub->publish(7, {{1, tk::SeatState::kHeld, 2}, {1, tk::SeatState::kSold, 5}});
  hub->publish(8, {{1, tk::SeatState::kHeld, 9}});  // another event
  CHECK(stream->take().empty());
  tk::Seat seat;
  seat.id = 1;
  seat.version = 2;
  seat.state = tk::SeatState::kHeld;
  REQUIRE(hub->ready(*sub, R"({"event":7,"seats":[]})", {seat}));
  auto events = parse_sse(stream->take());
  REQUIRE(events.size() == 2);
  CHECK(events[0].event == "snapshot");
  CHECK(events[1].event == "seat");
  CHECK(json::parse(events[1].data) == json{{"seat", 1}, {"state", "sold"}, {"version", 5}});
  hub->publish(7, {{1, tk::SeatState::kAvailable, 6}});
  events = parse_sse(stream->take());
  REQUIRE(events.size() == 1);
  CHECK(json::parse(events[0].data)["version"] == 6);
  stream->close();
  CHECK(hub->size() == 0);
  hub->publish(7, {{1, tk::SeatState::kHeld, 7}});  // nobody left: a no-op
}

TEST_CASE("service: waiting room join, admission by ticks, the hold gate", "[unit][service]") {
  Options o;
  o.service.waiting_room.max_active = 1;
  o.service.waiting_room.admit_per_second = 10;
  o.service.waiting_room.admit_burst = 1;
  Fixture f(o);
  const std::string queue = f.events_path(f.flash, "/queue");

  require_error(f.post(f.events_path(f.concert, "/queue"), {{"customer", "alice"}}), 400,
                "no_waiting_room");
  require_error(f.post("/v1/events/999/queue", {{"customer", "alice"}}), 404, "not_found");
  require_error(f.post(queue, json::object()), 400, "invalid_argument");
  require_error(f.post(queue, {{"customer", "bad customer"}}), 400, "invalid_argument");
  CHECK(f.service->waiting_room(f.concert) == nullptr);
  CHECK(f.service->waiting_room(f.flash) != nullptr);

  auto r = f.post(queue, {{"customer", "alice"}});
  REQUIRE(r->status() == 200);
  json a = r->body();
  const std::string ticket_a = a["ticket"];
  CHECK(a["customer"] == "alice");
  CHECK(a["event"] == f.flash);
  CHECK(a["state"] == "waiting");
  CHECK(a["position"] == 1);
  CHECK(a.contains("eta_ms"));
  CHECK(a["active_left_ms"] == 0);
  // Joining again gives the same ticket.
  CHECK(f.post(queue, {{"customer", "alice"}})->body()["ticket"] == ticket_a);

  // Not admitted yet: no holds on the flash sale.
  require_error(f.hold(f.flash, "alice", {f.seats[0]}), 403, "not_admitted");
  require_error(f.hold(f.flash, "alice", {f.seats[0]}, {{"X-Queue-Ticket", ticket_a}}), 403,
                "not_admitted");

  f.timers.advance(100ms);  // a queue tick admits alice
  r = f.get("/v1/queue/" + ticket_a);
  REQUIRE(r->status() == 200);
  CHECK(r->body()["state"] == "active");
  CHECK(r->body()["position"] == 0);
  CHECK(r->body()["active_left_ms"].get<int64_t>() > 0);

  // Bob waits behind her and watches his status stream.
  std::string ticket_b = f.post(queue, {{"customer", "bob"}})->body()["ticket"];
  auto stream = f.open_stream("/v1/queue/" + ticket_b + "/stream");
  auto events = parse_sse(stream->take());
  REQUIRE(events.size() == 1);
  CHECK(events[0].event == "status");
  CHECK(json::parse(events[0].data)["state"] == "waiting");
  CHECK(json::parse(events[0].data)["position"] == 1);

  // Alice's ticket admits alice only.
  require_error(f.hold(f.flash, "bob", {f.seats[0]}, {{"X-Queue-Ticket", ticket_a}}), 403,
                "not_admitted");
  auto held = f.hold(f.flash, "alice", {f.seats[0]}, {{"X-Queue-Ticket", ticket_a}});
  INFO(held->response.body);
  REQUIRE(held->status() == 201);

  // Nothing moves: still a refresh at least once a second.
  f.timers.advance(1'000ms);
  events = parse_sse(stream->take());
  REQUIRE_FALSE(events.empty());
  for (const auto& ev : events) CHECK(json::parse(ev.data)["state"] == "waiting");
  CHECK_FALSE(stream->closed());

  // Alice leaves; the next tick admits bob, whose stream gets "active" and ends.
  r = f.post("/v1/queue/" + ticket_a + "/leave", json::object());
  REQUIRE(r->status() == 200);
  CHECK(r->body()["state"] == "left");
  require_error(f.hold(f.flash, "alice", {f.seats[1]}, {{"X-Queue-Ticket", ticket_a}}), 403,
                "not_admitted");
  f.timers.advance(100ms);
  events = parse_sse(stream->take());
  REQUIRE_FALSE(events.empty());
  CHECK(json::parse(events.back().data)["state"] == "active");
  CHECK(stream->closed());
  CHECK(f.hold(f.flash, "bob", {f.seats[1]}, {{"X-Queue-Ticket", ticket_b}})->status() == 201);
  CHECK(f.metric("ticketing_queue_active{event=\"" + std::to_string(f.flash) + "\"}") == 1);

  require_error(f.get("/v1/queue/q_nope"), 404, "not_found");
  require_error(f.get("/v1/queue/q_nope/stream"), 404, "not_found");
  require_error(f.post("/v1/queue/q_nope/leave", json::object()), 404, "not_found");
}

TEST_CASE("service: the web UI routes", "[unit][service]") {
  Fixture f;
  for (const char* path : {"/", "/events/1", "/queue/2"}) {
    auto r = f.get(path);
    INFO(path);
    REQUIRE(r->status() == 200);
    CHECK(r->response.content_type.rfind("text/html", 0) == 0);
    CHECK(r->header("Cache-Control") == "no-cache");
    CHECK(r->response.body.find("<html") != std::string::npos);
  }
  auto js = f.get("/static/app.js");
  REQUIRE(js->status() == 200);
  CHECK(js->response.content_type.rfind("text/javascript", 0) == 0);
  CHECK(js->header("Cache-Control") == "no-cache");
  CHECK_FALSE(js->response.body.empty());
  require_error(f.get("/static/nope.js"), 404, "not_found");
  require_error(f.get("/static/..%2Fservice.hpp"), 404, "not_found");
  require_error(f.get("/nope"), 404, "not_found");

  Options o;
  o.service.ui = false;
  Fixture no_ui(o);
  require_error(no_ui.get("/"), 404, "not_found");
}

TEST_CASE("service: worker pool runs tasks, drains on stop, refuses work after",
          "[unit][service]") {
  tk::WorkerPool pool(3);
  CHECK(pool.size() == 3);
  std::atomic<size_t> max_queued{0};
  pool.set_observer([&](size_t queued, size_t) {
    size_t seen = max_queued.load();
    while (queued > seen && !max_queued.compare_exchange_weak(seen, queued)) {
    }
  });
  // Three tasks block the three workers; the rest queue behind them.
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> ran{0};
  for (int i = 0; i < 3; ++i) {
    REQUIRE(pool.submit([&] {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return release; });
      ++ran;
    }));
  }
  REQUIRE(sd::testing::eventually([&] { return pool.busy() == 3; }));
  for (int i = 0; i < 10; ++i) {
    REQUIRE(pool.submit([&ran, i] {
      ++ran;
      if (i == 0) throw std::runtime_error("a task that throws does not take its worker down");
    }));
  }
  CHECK(pool.queue_depth() == 10);
  CHECK(max_queued.load() == 10);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  pool.stop();  // runs what was queued
  CHECK(ran == 13);
  CHECK(pool.busy() == 0);
  CHECK_FALSE(pool.submit([&] { ++ran; }));
  pool.stop();  // idempotent
  CHECK(ran == 13);
}
