#include <catch2/catch.hpp>

#include <map>
#include <mutex>

#include "booking_test_util.hpp"
#include "sd/base/ids.hpp"
#include "sd/dlock/client.hpp"
#include "sd/ticketing/booking.hpp"

using namespace sd::ticketing;
using namespace sd::ticketing::testutil;
using sd::Code;
using sd::Result;

namespace {

constexpr const char* kCard = "4242424242424242";
constexpr const char* kDeclined = "4000000000000002";
constexpr const char* kProviderError = "4000000000000119";
constexpr const char* kTimeoutAfterSuccess = "4000000000009995";

// A booking service over a small venue, a strategy, the simulated provider (no latency, no random
// failures) behind FlakyPayments, seeded ids and a hand-moved clock. Seat changes are recorded.
struct Fixture {
  explicit Fixture(StrategyKind kind = StrategyKind::kConditional, BookingOptions options = {})
      : venue(make_venue(dir)), ids(42) {
    if (kind == StrategyKind::kDlock) backend = open_locks(dir, "locks.db");
    auto s = make_strategy(kind, *venue.db, backend);
    REQUIRE(s);
    strategy = std::move(*s);
    PaymentOptions po;
    po.ledger_path = dir.file("ledger.db");
    auto p = SimulatedPayments::open(po, now.fn());
    REQUIRE(p);
    ledger = std::move(*p);
    payments = std::make_unique<FlakyPayments>(*ledger);
    booking =
        std::make_unique<BookingService>(*venue.db, *strategy, *payments, ids, now.fn(), options);
    booking->set_listener([this](EventId ev, const std::vector<SeatChange>& changes) {
      std::lock_guard lock(mu);
      for (const auto& c : changes) {
        CHECK(ev == venue.event);
        published[c.seat] = c;
      }
      ++publications;
    });
  }

  Result<Hold> hold(std::vector<SeatId> seats, const std::string& customer = "alice",
                    int64_t ttl_ms = 0) {
    HoldRequest r;
    r.event = venue.event;
    r.customer = customer;
    r.seats = std::move(seats);
    r.ttl_ms = ttl_ms;
    return booking->hold(r);
  }
  Result<Order> pay(const std::string& hold_id, const std::string& card = kCard,
                    const std::string& customer = "alice") {
    return booking->pay({hold_id, customer, card});
  }
  std::vector<Charge> charges() {
    auto c = ledger->charges();
    REQUIRE(c);
    return *c;
  }
  int charges_in(ChargeState s) {
    int n = 0;
    for (const auto& c : charges()) n += c.state == s ? 1 : 0;
    return n;
  }
  SeatChange last_change(SeatId seat) {
    std::lock_guard lock(mu);
    REQUIRE(published.count(seat));
    return published[seat];
  }
  std::string payment_state(const std::string& order_id) {
    std::string out;
    REQUIRE(venue.db->read([&](sd::storage::Db& d) -> sd::Status {
      auto q = d.prepare("SELECT payment_state FROM orders WHERE id = ?");
      REQUIRE(q);
      REQUIRE(q->bind_text(1, order_id));
      auto row = q->step();
      REQUIRE(row);
      REQUIRE(*row);
      out = q->column_text(0);
      return sd::Status::ok();
    }));
    return out;
  }

  sd::testing::TempDir dir;
  FakeNow now;
  TestVenue venue;
  sd::SeededIdGenerator ids;
  std::shared_ptr<sd::dlock::Backend> backend;
  std::unique_ptr<SeatStrategy> strategy;
  std::unique_ptr<SimulatedPayments> ledger;
  std::unique_ptr<FlakyPayments> payments;
  std::unique_ptr<BookingService> booking;
  std::mutex mu;
  std::map<SeatId, SeatChange> published;  // last change per seat
  int publications = 0;
};

}  // namespace

TEST_CASE("booking: hold, pay, capture, the seats are sold", "[unit][booking]") {
  auto kind = GENERATE(StrategyKind::kDlock, StrategyKind::kConditional, StrategyKind::kOptimistic);
  INFO(strategy_name(kind));
  Fixture f(kind);
  const SeatId a = f.venue.seats[0], b = f.venue.seats.back();
  auto h = f.hold({b, a});
  REQUIRE(h);
  CHECK(h->id.size() == 34);
  CHECK(h->id.rfind("h_", 0) == 0);
  CHECK(h->customer == "alice");
  CHECK(h->seats == std::vector<SeatId>{a, b});
  CHECK(h->amount_cents == 15'000);
  CHECK(h->expires_ms == f.now.ms + BookingOptions{}.hold_ttl_ms);
  CHECK(f.last_change(a).state == SeatState::kHeld);
  CHECK(f.last_change(b).version == 1);
  // Someone else cannot take them.
  auto taken = f.hold({a}, "bob");
  REQUIRE_FALSE(taken);
  CHECK(taken.status().code() == Code::kConflict);
  CHECK(error_code(taken.status()) == "seat_unavailable");

  f.now.advance(60'000);
  auto o = f.pay(h->id);
  REQUIRE(o);
  CHECK(o->id.rfind("o_", 0) == 0);
  CHECK(o->hold_id == h->id);
  CHECK(o->seats == h->seats);
  CHECK(o->amount_cents == 15'000);
  CHECK(o->status == OrderStatus::kConfirmed);
  CHECK(o->payment_id.rfind("pay_", 0) == 0);
  CHECK(f.last_change(a).state == SeatState::kSold);
  CHECK(f.last_change(b).version == 2);
  auto charges = f.charges();
  REQUIRE(charges.size() == 1);
  CHECK(charges[0].id == o->payment_id);
  CHECK(charges[0].reference == h->id);
  CHECK(charges[0].amount_cents == 15'000);
  CHECK(charges[0].state == ChargeState::kCaptured);
  CHECK(f.payment_state(o->id) == "captured");
  auto hold_now = f.venue.db->hold(h->id);
  REQUIRE(hold_now);
  CHECK(hold_now->status == HoldStatus::kPaid);
  CHECK(hold_now->order_id == o->id);
  CHECK(raw_seat(*f.venue.db, f.venue.event, a).state == "sold");

  // Paying again: the hold is no longer active; nothing more is charged.
  auto again = f.pay(h->id);
  REQUIRE_FALSE(again);
  CHECK(again.status().code() == Code::kConflict);
  CHECK(error_code(again.status()) == "hold_not_active");
  CHECK(f.charges().size() == 1);
  // Reconcile finds nothing to do.
  auto rec = f.booking->reconcile();
  REQUIRE(rec);
  CHECK(rec->captured + rec->voided + rec->refunded == 0);
}

TEST_CASE("booking: a hold expires, expire_due releases it", "[unit][booking]") {
  Fixture f;
  const SeatId a = f.venue.seats[0];
  auto h = f.hold({a}, "alice", 5'000);
  REQUIRE(h);
  CHECK(h->expires_ms == f.now.ms + 5'000);
  f.now.advance(4'999);
  auto none = f.booking->expire_due();
  REQUIRE(none);
  CHECK(*none == 0);
  f.now.advance(1);
  // Expired: paying fails before anything is charged.
  auto late = f.pay(h->id);
  REQUIRE_FALSE(late);
  CHECK(late.status().code() == Code::kConflict);
  CHECK(error_code(late.status()) == "hold_expired");
  CHECK(f.charges().empty());
  // The seat reads as available at once, before the sweep.
  auto seats = f.venue.db->seats(f.venue.event, f.now.ms);
  REQUIRE(seats);
  CHECK((*seats)[0].state == SeatState::kAvailable);
  auto n = f.booking->expire_due();
  REQUIRE(n);
  CHECK(*n == 1);
  CHECK(hold_status(*f.venue.db, h->id) == "expired");
  CHECK(raw_seat(*f.venue.db, f.venue.event, a).state == "available");
  CHECK(f.last_change(a).state == SeatState::kAvailable);
  CHECK(f.last_change(a).version == 2);
  auto again = f.booking->expire_due();
  REQUIRE(again);
  CHECK(*again == 0);
  auto after = f.pay(h->id);
  CHECK(error_code(after.status()) == "hold_expired");
  auto cancel = f.booking->cancel_hold(h->id, "alice");
  CHECK(error_code(cancel) == "hold_not_active");
}

TEST_CASE("booking: a declined card charges nothing and keeps the hold", "[unit][booking]") {
  Fixture f;
  auto h = f.hold({f.venue.seats[0]});
  REQUIRE(h);
  auto d = f.pay(h->id, kDeclined);
  REQUIRE_FALSE(d);
  CHECK(d.status().code() == Code::kFailedPrecondition);
  CHECK(error_code(d.status()) == "card_declined");
  CHECK(f.charges().empty());
  CHECK(hold_status(*f.venue.db, h->id) == "active");
  // Provider down: kUnavailable, nothing recorded, hold intact.
  auto e = f.pay(h->id, kProviderError);
  REQUIRE_FALSE(e);
  CHECK(e.status().code() == Code::kUnavailable);
  CHECK(error_code(e.status()) == "payment_unavailable");
  CHECK(f.charges().empty());
  // A bad card number never reaches the provider.
  auto bad = f.pay(h->id, "1234");
  REQUIRE_FALSE(bad);
  CHECK(bad.status().code() == Code::kInvalidArgument);
  // Another card works.
  auto ok = f.pay(h->id);
  REQUIRE(ok);
  CHECK(f.charges_in(ChargeState::kCaptured) == 1);
  CHECK(f.charges().size() == 1);
}

TEST_CASE("booking: an ambiguous provider timeout is voided by reconcile", "[unit][booking]") {
  BookingOptions opts;
  opts.orphan_authorization_ms = 30'000;
  Fixture f(StrategyKind::kConditional, opts);
  auto h = f.hold({f.venue.seats[0]});
  REQUIRE(h);
  auto t = f.pay(h->id, kTimeoutAfterSuccess);
  REQUIRE_FALSE(t);
  CHECK(t.status().code() == Code::kUnavailable);
  CHECK(error_code(t.status()) == "payment_unavailable");
  // The provider did record the authorization.
  REQUIRE(f.charges().size() == 1);
  CHECK(f.charges()[0].state == ChargeState::kAuthorized);
  CHECK(hold_status(*f.venue.db, h->id) == "active");

  // Too young to be called an orphan: a pay() may still be on its way.
  auto early = f.booking->reconcile();
  REQUIRE(early);
  CHECK(early->voided == 0);
  CHECK(f.charges()[0].state == ChargeState::kAuthorized);

  // The customer gives up; the hold expires and is swept; later reconcile voids the orphan.
  f.now.advance(BookingOptions{}.hold_ttl_ms);
  REQUIRE(f.booking->expire_due());
  auto rec = f.booking->reconcile();
  REQUIRE(rec);
  CHECK(rec->voided == 1);
  CHECK(rec->captured == 0);
  CHECK(rec->refunded == 0);
  CHECK(f.charges_in(ChargeState::kVoided) == 1);
  CHECK(f.charges().size() == 1);
  auto idle = f.booking->reconcile();
  REQUIRE(idle);
  CHECK(idle->voided == 0);
}

TEST_CASE("booking: a retried pay after an ambiguous timeout uses the same authorization",
          "[unit][booking]") {
  Fixture f;
  auto h = f.hold({f.venue.seats[0], f.venue.seats[1]});
  REQUIRE(h);
  REQUIRE_FALSE(f.pay(h->id, kTimeoutAfterSuccess));
  auto o = f.pay(h->id);
  REQUIRE(o);
  auto charges = f.charges();
  REQUIRE(charges.size() == 1);  // authorized once, captured once
  CHECK(charges[0].id == o->payment_id);
  CHECK(charges[0].state == ChargeState::kCaptured);
  f.now.advance(3'600'000);
  auto rec = f.booking->reconcile();
  REQUIRE(rec);
  CHECK(rec->voided + rec->captured + rec->refunded == 0);
}

TEST_CASE("booking: an authorization whose order cannot be confirmed is voided",
          "[unit][booking]") {
  Fixture f;
  auto h = f.hold({f.venue.seats[0]}, "alice", 10'000);
  REQUIRE(h);
  // The provider takes so long that the hold expires before the order is written.
  f.payments->before_authorize = [&] { f.now.advance(10'000); };
  auto o = f.pay(h->id);
  REQUIRE_FALSE(o);
  CHECK(o.status().code() == Code::kConflict);
  CHECK(error_code(o.status()) == "hold_expired");
  REQUIRE(f.charges().size() == 1);
  CHECK(f.charges()[0].state == ChargeState::kVoided);
  CHECK(query_int(*f.venue.db, "SELECT COUNT(*) FROM orders") == 0);

  // Same, with the void failing too: reconcile voids it later.
  f.payments->before_authorize = nullptr;
  auto h2 = f.hold({f.venue.seats[1]}, "alice", 10'000);
  REQUIRE(h2);
  f.payments->before_authorize = [&] { f.now.advance(10'000); };
  f.payments->fail_voids = 1;
  REQUIRE_FALSE(f.pay(h2->id));
  f.payments->before_authorize = nullptr;
  CHECK(f.charges_in(ChargeState::kAuthorized) == 1);
  f.now.advance(BookingOptions{}.orphan_authorization_ms);
  auto rec = f.booking->reconcile();
  REQUIRE(rec);
  CHECK(rec->voided == 1);
  CHECK(f.charges_in(ChargeState::kAuthorized) == 0);
  CHECK(f.charges_in(ChargeState::kVoided) == 2);
}

TEST_CASE("booking: a failed capture is completed by reconcile", "[unit][booking]") {
  Fixture f;
  auto h = f.hold({f.venue.seats[0]});
  REQUIRE(h);
  f.payments->fail_captures = 1;
  auto o = f.pay(h->id);
  REQUIRE(o);  // the order stands: the authorization guarantees the money
  CHECK(f.payment_state(o->id) == "authorized");
  CHECK(f.charges_in(ChargeState::kAuthorized) == 1);
  auto rec = f.booking->reconcile();
  REQUIRE(rec);
  CHECK(rec->captured == 1);
  CHECK(f.charges_in(ChargeState::kCaptured) == 1);
  CHECK(f.payment_state(o->id) == "captured");
}

TEST_CASE("booking: cancelling an order refunds it and frees its seats", "[unit][booking]") {
  auto kind = GENERATE(StrategyKind::kDlock, StrategyKind::kConditional, StrategyKind::kOptimistic);
  INFO(strategy_name(kind));
  Fixture f(kind);
  const SeatId a = f.venue.seats[0], b = f.venue.seats[1];
  auto h = f.hold({a, b});
  REQUIRE(h);
  auto o = f.pay(h->id);
  REQUIRE(o);
  auto wrong = f.booking->cancel_order(o->id, "mallory");
  REQUIRE_FALSE(wrong);
  CHECK(wrong.status().code() == Code::kFailedPrecondition);
  CHECK(error_code(wrong.status()) == "not_your_hold");
  CHECK(f.booking->cancel_order("o_nope", "alice").status().code() == Code::kNotFound);

  auto c = f.booking->cancel_order(o->id, "alice");
  REQUIRE(c);
  CHECK(c->status == OrderStatus::kCancelled);
  CHECK(f.charges_in(ChargeState::kRefunded) == 1);
  CHECK(f.payment_state(o->id) == "refunded");
  CHECK(query_int(*f.venue.db, "SELECT COUNT(*) FROM tickets WHERE valid = 1") == 0);
  CHECK(raw_seat(*f.venue.db, f.venue.event, a).state == "available");
  CHECK(raw_seat(*f.venue.db, f.venue.event, b).order_id.empty());
  CHECK(f.last_change(a).state == SeatState::kAvailable);
  CHECK(f.last_change(a).version == 3);
  // Cancelling again changes nothing.
  auto twice = f.booking->cancel_order(o->id, "alice");
  REQUIRE(twice);
  CHECK(twice->status == OrderStatus::kCancelled);
  CHECK(f.charges().size() == 1);
  // The seats are on sale again, and can be sold again.
  auto h2 = f.hold({a, b}, "bob");
  REQUIRE(h2);
  REQUIRE(f.pay(h2->id, kCard, "bob"));
  CHECK(query_int(*f.venue.db, "SELECT COUNT(*) FROM tickets WHERE valid = 1") == 2);
  auto rec = f.booking->reconcile();
  REQUIRE(rec);
  CHECK(rec->captured + rec->voided + rec->refunded == 0);
}

TEST_CASE("booking: seats go back on sale only after the refund succeeded", "[unit][booking]") {
  Fixture f;
  const SeatId a = f.venue.seats[0];
  auto h = f.hold({a});
  REQUIRE(h);
  auto o = f.pay(h->id);
  REQUIRE(o);
  f.payments->fail_refunds = 1;
  auto c = f.booking->cancel_order(o->id, "alice");
  REQUIRE_FALSE(c);
  CHECK(c.status().code() == Code::kUnavailable);
  CHECK(error_code(c.status()) == "payment_unavailable");
  // The order is cancelled (its tickets void), but the seat stays sold until the money is back.
  auto stored = f.venue.db->order(o->id);
  REQUIRE(stored);
  CHECK(stored->status == OrderStatus::kCancelled);
  CHECK(query_int(*f.venue.db, "SELECT COUNT(*) FROM tickets WHERE valid = 1") == 0);
  CHECK(raw_seat(*f.venue.db, f.venue.event, a).state == "sold");
  CHECK(error_code(f.hold({a}, "bob").status()) == "seat_unavailable");
  CHECK(f.charges_in(ChargeState::kCaptured) == 1);
  // reconcile() finishes it: refund, then the seat is released.
  auto rec = f.booking->reconcile();
  REQUIRE(rec);
  CHECK(rec->refunded == 1);
  CHECK(f.charges_in(ChargeState::kRefunded) == 1);
  CHECK(raw_seat(*f.venue.db, f.venue.event, a).state == "available");
  CHECK(f.payment_state(o->id) == "refunded");
  CHECK(f.last_change(a).state == SeatState::kAvailable);
}

TEST_CASE("booking: cancel a hold, only its customer may", "[unit][booking]") {
  Fixture f;
  const SeatId a = f.venue.seats[0];
  auto h = f.hold({a});
  REQUIRE(h);
  auto wrong = f.booking->cancel_hold(h->id, "bob");
  CHECK(wrong.code() == Code::kFailedPrecondition);
  CHECK(error_code(wrong) == "not_your_hold");
  auto wrong_pay = f.pay(h->id, kCard, "bob");
  REQUIRE_FALSE(wrong_pay);
  CHECK(wrong_pay.status().code() == Code::kFailedPrecondition);
  CHECK(error_code(wrong_pay.status()) == "not_your_hold");
  CHECK(f.charges().empty());
  REQUIRE(f.booking->cancel_hold(h->id, "alice"));
  CHECK(hold_status(*f.venue.db, h->id) == "cancelled");
  CHECK(raw_seat(*f.venue.db, f.venue.event, a).state == "available");
  CHECK(f.last_change(a).state == SeatState::kAvailable);
  CHECK(error_code(f.booking->cancel_hold(h->id, "alice")) == "hold_not_active");
  CHECK(error_code(f.pay(h->id).status()) == "hold_not_active");
  CHECK(f.booking->cancel_hold("h_nope", "alice").code() == Code::kNotFound);
  CHECK(f.pay("h_nope").status().code() == Code::kNotFound);
}

TEST_CASE("booking: validation errors", "[unit][booking]") {
  BookingOptions opts;
  opts.max_seats_per_hold = 3;
  Fixture f(StrategyKind::kConditional, opts);
  const auto& s = f.venue.seats;
  auto expect_invalid = [&](const Result<Hold>& r, const std::string& text) {
    REQUIRE_FALSE(r);
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(error_code(r.status()) == "invalid_argument");
    CHECK(r.status().message().find(text) != std::string::npos);
  };
  expect_invalid(f.hold({s[0]}, ""), "customer");
  expect_invalid(f.hold({s[0]}, "bad customer"), "customer");
  expect_invalid(f.hold({s[0]}, "eve<script>"), "customer");
  expect_invalid(f.hold({s[0]}, std::string(129, 'a')), "customer");
  CHECK(f.hold({s[0]}, std::string(128, 'a')));
  CHECK(f.hold({s[1]}, "Bob.Smith_2@example-mail.com"));
  expect_invalid(f.hold({}), "no seats");
  expect_invalid(f.hold({s[2], s[3], s[4], s[5]}), "at most 3 seats");
  expect_invalid(f.hold({s[2], s[3], s[2]}), "requested twice");
  expect_invalid(f.hold({s[2], 0}), "not a seat id");
  expect_invalid(f.hold({s[2]}, "alice", 999), "ttl_ms");
  expect_invalid(f.hold({s[2]}, "alice", -5), "ttl_ms");
  expect_invalid(f.hold({s[2]}, "alice", 30 * 60 * 1000 + 1), "ttl_ms");
  expect_invalid(f.hold({s[2], 999'999}), "not part of event");
  CHECK(raw_seat(*f.venue.db, f.venue.event, s[2]).state == "available");
  HoldRequest unknown;
  unknown.event = 12345;
  unknown.customer = "alice";
  unknown.seats = {s[2]};
  auto nf = f.booking->hold(unknown);
  REQUIRE_FALSE(nf);
  CHECK(nf.status().code() == Code::kNotFound);
  CHECK(error_code(nf.status()) == "not_found");
  // A seat of another venue is not part of this event.
  auto other = f.venue.db->add_venue({"Other", {{"Pit", "pit", 100, 1, 2}}});
  REQUIRE(other);
  auto other_ev = f.venue.db->add_event(*other, "Other Night", 1, false);
  REQUIRE(other_ev);
  auto other_seats = f.venue.db->seats(*other_ev, 0);
  REQUIRE(other_seats);
  expect_invalid(f.hold({(*other_seats)[0].id}), "not part of event");
  auto ok = f.hold({s[2]}, "alice", 1'000);
  REQUIRE(ok);
  auto badcard = f.pay(ok->id, "4242424242424241");
  REQUIRE_FALSE(badcard);
  CHECK(badcard.status().code() == Code::kInvalidArgument);
  CHECK(f.charges().empty());
}

TEST_CASE("booking: a customer's active holds per event are capped", "[unit][booking]") {
  BookingOptions opts;
  opts.max_active_holds_per_customer = 2;
  Fixture f(StrategyKind::kConditional, opts);
  const auto& s = f.venue.seats;
  REQUIRE(f.hold({s[0]}, "alice", 5'000));
  auto second = f.hold({s[1]}, "alice", 60'000);
  REQUIRE(second);
  auto third = f.hold({s[2]}, "alice");
  REQUIRE_FALSE(third);
  CHECK(third.status().code() == Code::kResourceExhausted);
  CHECK(error_code(third.status()) == "too_many_holds");
  CHECK(raw_seat(*f.venue.db, f.venue.event, s[2]).state == "available");
  CHECK(f.hold({s[2]}, "bob"));  // others are not affected
  // A paid hold and an expired one no longer count.
  REQUIRE(f.pay(second->id));
  CHECK(f.hold({s[3]}, "alice"));
  CHECK(error_code(f.hold({s[4]}, "alice").status()) == "too_many_holds");
  f.now.advance(5'000);
  CHECK(f.hold({s[4]}, "alice"));
}

TEST_CASE("booking: a confirm that is only temporarily unavailable keeps the authorization",
          "[unit][booking]") {
  Fixture f(StrategyKind::kDlock);
  const SeatId a = f.venue.seats[0];
  auto h = f.hold({a});
  REQUIRE(h);
  // Another process holds the seat's lock (e.g. its sweeper): the confirm cannot get it in time.
  auto session = sd::dlock::Session::create(f.backend);
  REQUIRE(session);
  sd::dlock::Mutex m(*session,
                     "ticketing/" + std::to_string(f.venue.event) + "/" + std::to_string(a));
  REQUIRE(m.try_lock());
  auto busy = f.pay(h->id);
  REQUIRE_FALSE(busy);
  CHECK(busy.status().code() == Code::kUnavailable);
  // Not voided: another pay() might be confirming with it; a retry reuses it.
  REQUIRE(f.charges().size() == 1);
  CHECK(f.charges()[0].state == ChargeState::kAuthorized);
  REQUIRE(m.unlock());
  auto o = f.pay(h->id);
  REQUIRE(o);
  auto charges = f.charges();
  REQUIRE(charges.size() == 1);
  CHECK(charges[0].id == o->payment_id);
  CHECK(charges[0].state == ChargeState::kCaptured);
}
