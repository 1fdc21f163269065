#pragma once
// Shared by strategy_test, booking_test and flash_sale_test: a ticket DB with a small venue, the
// strategies under test (dlock on memory:// and sqlite://, conditional, optimistic), an injected
// clock, raw SQL probes of the database, and a PaymentProvider decorator that fails on demand.

#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/strategy_common.hpp"
#include "sd/dlock/backend.hpp"
#include "sd/storage/sqlite.hpp"
#include "sd/testing/testing.hpp"
#include "sd/ticketing/db.hpp"
#include "sd/ticketing/payments.hpp"
#include "sd/ticketing/strategy.hpp"

namespace sd::ticketing::testutil {

// Wall-clock milliseconds the test moves by hand.
struct FakeNow {
  std::atomic<int64_t> ms{1'700'000'000'000};
  NowMs fn() {
    return [this] { return ms.load(); };
  }
  void advance(int64_t d) { ms.fetch_add(d); }
};

struct TestVenue {
  std::unique_ptr<TicketDb> db;
  int64_t venue = 0;
  EventId event = 0;
  std::vector<SeatId> seats;  // the event's seat ids, ascending
};

// A venue with a "Front" section (gold, 10000 cents) and a "Back" section (std, 5000 cents), and
// one event at it.
inline TestVenue make_venue(const sd::testing::TempDir& dir, int front_rows = 2, int back_rows = 2,
                            int seats_per_row = 5, bool durable_orders = false) {
  TestVenue v;
  DbConfig cfg;
  cfg.path = dir.file("tickets.db");
  cfg.durable_orders = durable_orders;
  auto db = TicketDb::open(cfg);
  REQUIRE(db);
  v.db = std::move(*db);
  auto venue = v.db->add_venue({"Test Hall",
                                {{"Front", "gold", 10'000, front_rows, seats_per_row},
                                 {"Back", "std", 5'000, back_rows, seats_per_row}}});
  REQUIRE(venue);
  v.venue = *venue;
  auto ev = v.db->add_event(v.venue, "Test Night", 2'000'000'000'000, false);
  REQUIRE(ev);
  v.event = *ev;
  auto seats = v.db->seats(v.event, 0);
  REQUIRE(seats);
  for (const auto& s : *seats) v.seats.push_back(s.id);
  return v;
}

// One strategy configuration under test.
struct StrategyCase {
  std::string name;  // "dlock/memory", "dlock/sqlite", "conditional", "optimistic"
  StrategyKind kind = StrategyKind::kConditional;
  std::string lock_file;  // dlock on sqlite://: the lock DB's file name in the test's dir
};

inline std::vector<StrategyCase> strategy_cases() {
  return {{"dlock/memory", StrategyKind::kDlock, ""},
          {"dlock/sqlite", StrategyKind::kDlock, "locks.db"},
          {"conditional", StrategyKind::kConditional, ""},
          {"optimistic", StrategyKind::kOptimistic, ""}};
}

inline std::shared_ptr<dlock::Backend> open_locks(const sd::testing::TempDir& dir,
                                                  const std::string& lock_file) {
  auto b = dlock::open_backend(lock_file.empty() ? "memory://" : "sqlite://" + dir.file(lock_file));
  REQUIRE(b);
  return *b;
}

// The strategy of a case; `backend` receives the dlock backend (kept alive by the caller).
inline std::unique_ptr<SeatStrategy> make_case(const StrategyCase& c,
                                               const sd::testing::TempDir& dir, TicketDb& db,
                                               std::shared_ptr<dlock::Backend>& backend,
                                               StrategyOptions options = {}) {
  if (c.kind == StrategyKind::kDlock) backend = open_locks(dir, c.lock_file);
  auto s = make_strategy(c.kind, db, backend, options);
  REQUIRE(s);
  return std::move(*s);
}

// A raw view of one event_seats row.
struct RawSeat {
  std::string state;
  std::string hold_id;
  std::string order_id;
  int64_t fence = 0;
  int64_t version = 0;
};

inline RawSeat raw_seat(TicketDb& db, EventId event, SeatId seat) {
  RawSeat r;
  REQUIRE(db.read([&](storage::Db& d) -> Status {
    auto q = d.prepare(
        "SELECT state, hold_id, order_id, fence, version FROM event_seats "
        "WHERE event_id = ? AND seat_id = ?");
    REQUIRE(q);
    REQUIRE(q->bind_int64(1, event));
    REQUIRE(q->bind_int64(2, seat));
    auto row = q->step();
    REQUIRE(row);
    REQUIRE(*row);
    r.state = q->column_text(0);
    if (!q->column_is_null(1)) r.hold_id = q->column_text(1);
    if (!q->column_is_null(2)) r.order_id = q->column_text(2);
    r.fence = q->column_int64(3);
    r.version = q->column_int64(4);
    return Status::ok();
  }));
  return r;
}

// The first column of the first row of a query (a COUNT(*) etc.).
inline int64_t query_int(TicketDb& db, const std::string& sql) {
  int64_t v = 0;
  REQUIRE(db.read([&](storage::Db& d) -> Status {
    auto r = d.query_int64(sql);
    REQUIRE(r);
    v = *r;
    return Status::ok();
  }));
  return v;
}

inline int64_t query_int(storage::Db& d, const std::string& sql) {
  auto r = d.query_int64(sql);
  INFO(sql);
  REQUIRE(r);
  return *r;
}

inline std::string hold_status(TicketDb& db, const std::string& hold_id) {
  auto h = db.hold(hold_id);
  REQUIRE(h);
  return std::string(hold_status_name(h->status));
}

inline bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// The machine code of a status message ("seat_unavailable: ..." -> "seat_unavailable").
inline std::string error_code(const Status& s) {
  auto i = s.message().find(": ");
  return i == std::string::npos ? s.message() : s.message().substr(0, i);
}

// Forwards to a real provider; each call can be made to fail with kUnavailable (nothing done),
// and before_authorize runs before an authorization (e.g. to move the clock).
class FlakyPayments final : public PaymentProvider {
 public:
  explicit FlakyPayments(PaymentProvider& inner) : inner_(inner) {}
  std::atomic<int> fail_captures{0}, fail_voids{0}, fail_refunds{0};
  std::function<void()> before_authorize;

  Result<Charge> authorize(const std::string& reference, int64_t amount_cents,
                           const std::string& card) override {
    if (before_authorize) before_authorize();
    return inner_.authorize(reference, amount_cents, card);
  }
  Status capture(const std::string& id) override {
    if (take(fail_captures)) return unavailable("payment_unavailable: injected capture failure");
    return inner_.capture(id);
  }
  Status void_authorization(const std::string& id) override {
    if (take(fail_voids)) return unavailable("payment_unavailable: injected void failure");
    return inner_.void_authorization(id);
  }
  Status refund(const std::string& id) override {
    if (take(fail_refunds)) return unavailable("payment_unavailable: injected refund failure");
    return inner_.refund(id);
  }
  Result<std::vector<Charge>> charges() override { return inner_.charges(); }

 private:
  static bool take(std::atomic<int>& n) {
    int v = n.load();
    while (v > 0) {
      if (n.compare_exchange_weak(v, v - 1)) return true;
    }
    return false;
  }
  PaymentProvider& inner_;
};

}  // namespace sd::ticketing::testutil
