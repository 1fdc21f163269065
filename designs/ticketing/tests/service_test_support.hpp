#pragma once
// Shared by the TicketingService unit tests: the Router is driven directly (no sockets) with a
// capturing Responder sink; blocking work runs inline; timers are ManualTimers on a FakeClock that
// also drives the booking flow's wall clock; a real TicketDb in a TempDir, a real strategy
// (conditional, or dlock over an in-process memory:// backend) and SimulatedPayments without
// latency.

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sd/base/clock.hpp"
#include "sd/base/ids.hpp"
#include "sd/dlock/backend.hpp"
#include "sd/metrics/metrics.hpp"
#include "sd/net/router.hpp"
#include "sd/net/sse.hpp"
#include "sd/testing/captured_reply.hpp"
#include "sd/testing/manual_timers.hpp"
#include "sd/testing/sse_events.hpp"
#include "sd/testing/testing.hpp"
#include "sd/ticketing/booking.hpp"
#include "sd/ticketing/db.hpp"
#include "sd/ticketing/idempotency.hpp"
#include "sd/ticketing/payments.hpp"
#include "sd/ticketing/service.hpp"
#include "sd/ticketing/strategy.hpp"

namespace service_test {

using nlohmann::json;
using sd::net::Method;
using namespace std::chrono_literals;
namespace tk = sd::ticketing;

using Reply = sd::testing::CapturedReply;
using sd::testing::CaptureSink;
using sd::testing::ManualTimers;

constexpr const char* kCard = "4242424242424242";
constexpr const char* kDeclinedCard = "4000000000000002";
constexpr const char* kTimeoutAfterSuccessCard = "4000000000009995";

struct Options {
  tk::StrategyKind strategy = tk::StrategyKind::kConditional;
  tk::BookingOptions booking;
  tk::ServiceOptions service;
  bool start = true;  // arm the periodic jobs
};

using sd::testing::parse_sse;
using sd::testing::SseEvent;

struct Fixture {
  static constexpr int64_t kWallBase = 1'700'000'000'000;  // the FakeClock's epoch as wall time

  sd::testing::TempDir dir{"ticketing-svc"};
  sd::FakeClock clock;
  ManualTimers timers{clock};
  sd::metrics::Registry metrics;
  sd::SeededIdGenerator ids{7};
  tk::NowMs now = [this] {
    return kWallBase +
           std::chrono::duration_cast<std::chrono::milliseconds>(clock.now().time_since_epoch())
               .count();
  };
  std::unique_ptr<tk::TicketDb> db;
  std::unique_ptr<tk::SimulatedPayments> payments;
  std::shared_ptr<sd::dlock::Backend> backend;
  std::unique_ptr<tk::SeatStrategy> strategy;
  std::unique_ptr<tk::BookingService> booking;
  std::unique_ptr<tk::IdempotencyStore> idempotency;
  std::unique_ptr<tk::TicketingService> service;
  sd::net::Router router;
  tk::EventId concert = 0;  // a plain event: 2 floor rows of 5 (50.00) + 1 balcony row of 5 (25.00)
  tk::EventId flash = 0;    // the same venue behind a waiting room
  std::vector<tk::SeatId> seats;  // the venue's seat ids, ascending

  explicit Fixture(Options o = {}) {
    auto d = tk::TicketDb::open({.path = dir.file("ticketing.db")});
    REQUIRE(d.is_ok());
    db = std::move(*d);
    auto venue = db->add_venue(
        {"Test Hall", {{"Floor", "floor", 5'000, 2, 5}, {"Balcony", "balcony", 2'500, 1, 5}}});
    REQUIRE(venue.is_ok());
    auto e1 = db->add_event(*venue, "Concert", now() + 86'400'000, false);
    REQUIRE(e1.is_ok());
    concert = *e1;
    auto e2 = db->add_event(*venue, "Flash Sale", now() + 86'400'000, true);
    REQUIRE(e2.is_ok());
    flash = *e2;
    auto s = db->seats(concert, now());
    REQUIRE(s.is_ok());
    for (const auto& seat : *s) seats.push_back(seat.id);
    REQUIRE(seats.size() == 15);

    tk::PaymentOptions po;
    po.ledger_path = dir.file("payments.db");
    auto p = tk::SimulatedPayments::open(po, now);
    REQUIRE(p.is_ok());
    payments = std::move(*p);
    if (o.strategy == tk::StrategyKind::kDlock) {
      auto b = sd::dlock::open_backend("memory://");
      REQUIRE(b.is_ok());
      backend = *b;
    }
    auto st = tk::make_strategy(o.strategy, *db, backend);
    REQUIRE(st.is_ok());
    strategy = std::move(*st);
    booking = std::make_unique<tk::BookingService>(*db, *strategy, *payments, ids, now, o.booking);
    idempotency = std::make_unique<tk::IdempotencyStore>(*db);
    service = std::make_unique<tk::TicketingService>(
        *booking, *idempotency, clock, ids, metrics,
        [](std::function<void()> fn) { fn(); },  // inline executor
        [this](std::chrono::milliseconds delay, std::function<void()> fn) {
          return timers.schedule(delay, std::move(fn));
        },
        o.service);
    service->add_routes(router);
    if (o.start) service->start();
  }
  ~Fixture() { service->shutdown(); }

  std::shared_ptr<Reply> call(Method m, const std::string& target, const std::string& body = "",
                              sd::net::Headers headers = {}) {
    auto reply = std::make_shared<Reply>();
    sd::net::Request req;
    req.method = m;
    req.target = target;
    req.body = body;
    req.headers = std::move(headers);
    router.dispatch(req, sd::net::Responder(std::make_shared<CaptureSink>(reply)));
    REQUIRE(reply->ready());  // the executor is inline: every answer is immediate
    return reply;
  }
  std::shared_ptr<Reply> get(const std::string& target) { return call(Method::kGet, target); }
  std::shared_ptr<Reply> post(const std::string& target, const json& body,
                              sd::net::Headers headers = {}) {
    return call(Method::kPost, target, body.dump(), std::move(headers));
  }

  std::string events_path(tk::EventId e, const std::string& rest = "") const {
    return "/v1/events/" + std::to_string(e) + rest;
  }
  std::shared_ptr<Reply> hold(tk::EventId e, const std::string& customer,
                              const std::vector<tk::SeatId>& ids_, sd::net::Headers headers = {}) {
    return post(events_path(e, "/holds"), {{"customer", customer}, {"seats", ids_}},
                std::move(headers));
  }
  // A hold that must succeed; returns its id.
  std::string hold_ok(tk::EventId e, const std::string& customer,
                      const std::vector<tk::SeatId>& ids_) {
    auto r = hold(e, customer, ids_);
    INFO(r->response.body);
    REQUIRE(r->status() == 201);
    return r->body()["hold_id"].get<std::string>();
  }
  std::shared_ptr<Reply> pay(const std::string& hold_id, const std::string& customer,
                             const std::string& card = kCard, sd::net::Headers headers = {}) {
    return post("/v1/holds/" + hold_id + "/pay", {{"customer", customer}, {"card", card}},
                std::move(headers));
  }
  // The state and version of one seat in GET .../seats.
  json seat(tk::EventId e, tk::SeatId id) {
    auto r = get(events_path(e, "/seats"));
    REQUIRE(r->status() == 200);
    json doc = r->body();
    for (const json& s : doc["seats"]) {
      if (s["id"] == id) return s;
    }
    FAIL("no seat " << id);
    return {};
  }
  // Opens an SSE stream route; returns the stream (the reply must be an event stream).
  std::shared_ptr<sd::net::EventStream> open_stream(const std::string& target) {
    auto r = get(target);
    INFO(r->response.body);
    REQUIRE(r->status() == 200);
    REQUIRE(r->response.content_type == "text/event-stream");
    REQUIRE(r->response.stream != nullptr);
    return r->response.stream;
  }
  // The value of one series in the Prometheus text, or -1 if absent.
  double metric(const std::string& series) const {
    std::string text = metrics.render();
    size_t pos = 0;
    while ((pos = text.find(series + " ", pos)) != std::string::npos) {
      if (pos == 0 || text[pos - 1] == '\n') {
        size_t end = text.find('\n', pos);
        return std::stod(text.substr(pos + series.size() + 1, end - pos - series.size() - 1));
      }
      pos += series.size();
    }
    return -1;
  }
};

inline void require_error(const std::shared_ptr<Reply>& r, int status, const std::string& code) {
  REQUIRE(r->ready());
  INFO(r->response.body);
  REQUIRE(r->status() == status);
  json b = r->body();
  REQUIRE(b["error"] == code);
  REQUIRE(b["message"].is_string());
}

}  // namespace service_test
