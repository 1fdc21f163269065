#pragma once
// BookingService: the booking flow on top of a TicketDb, a SeatStrategy and a PaymentProvider —
// hold seats (TTL), pay (authorize -> confirm order -> capture; void when the order cannot be
// confirmed), cancel a hold, cancel an order (refund, seats back on sale), expire holds, and
// reconcile with the provider after a crash. Sans-io apart from the DB and provider calls it
// makes; time comes from an injected NowMs. Thread-safe; calls block (the provider has latency),
// so the HTTP layer runs them on worker threads.
//
// Invariants it keeps (the flash-sale test checks them at the end of a run):
//   - no seat is sold twice: at most one valid ticket per (event, seat), one confirmed order each;
//   - no money without a ticket: every captured, unrefunded charge belongs to a confirmed order,
//     and every authorization whose order did not commit is voided (by pay() or by reconcile());
//   - no seat stays held past its hold's expiry by more than the sweep interval (expire_due), and
//     an expired hold can be taken over by a new hold at once (strategies treat it as available).

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sd/base/ids.hpp"
#include "sd/base/status.hpp"
#include "sd/ticketing/db.hpp"
#include "sd/ticketing/model.hpp"
#include "sd/ticketing/payments.hpp"
#include "sd/ticketing/strategy.hpp"

namespace sd::ticketing {

struct BookingOptions {
  int64_t hold_ttl_ms = 10 * 60 * 1000;  // default hold TTL
  int64_t min_hold_ttl_ms = 1'000;       // a requested ttl outside [min, max] is kInvalidArgument
  int64_t max_hold_ttl_ms = 30 * 60 * 1000;
  size_t max_seats_per_hold = 10;
  size_t max_active_holds_per_customer = 4;  // per event; beyond: kResourceExhausted
  size_t max_customer_bytes = 128;           // customer ids: 1..128 bytes of [A-Za-z0-9._@-]
  // reconcile(): authorizations without a confirmed order older than this are voided.
  int64_t orphan_authorization_ms = 30'000;
};

struct HoldRequest {
  EventId event = 0;
  std::string customer;
  std::vector<SeatId> seats;
  int64_t ttl_ms = 0;  // 0: options.hold_ttl_ms
};

struct PayRequest {
  std::string hold_id;
  std::string customer;  // must be the hold's customer
  std::string card;
};

struct ReconcileReport {
  int captured = 0;  // confirmed orders whose charge was still only authorized
  int voided = 0;    // orphan authorizations (no confirmed order)
  int refunded = 0;  // captured charges of cancelled orders or with no order
};

// Published after each committed change (seat map live updates). Called outside locks, on the
// thread that made the change; must not block.
using SeatListener = std::function<void(EventId, const std::vector<SeatChange>&)>;

class BookingService {
 public:
  // Keeps references; all must outlive the service.
  BookingService(TicketDb& db, SeatStrategy& strategy, PaymentProvider& payments, IdGenerator& ids,
                 NowMs now, BookingOptions options = {});

  void set_listener(SeatListener listener);  // before use

  // kInvalidArgument (bad customer, no/too many/duplicate seats, ttl out of range, seat not in
  // the event), kNotFound (event), kConflict "seat_unavailable", kResourceExhausted (too many
  // active holds for this customer and event), kUnavailable.
  Result<Hold> hold(const HoldRequest& req);
  // kNotFound (hold), kPermissionDenied-like kFailedPrecondition "not_your_hold" when the customer
  // differs, kConflict "hold_not_active" / "hold_expired", kFailedPrecondition "card_declined"
  // (nothing charged), kUnavailable (provider down: nothing charged, the hold stays; retry).
  // A second pay() of the same hold after success: kConflict "hold_not_active" (idempotency keys
  // are how clients retry safely).
  Result<Order> pay(const PayRequest& req);
  // Releases an active hold's seats. kNotFound, "not_your_hold", kConflict "hold_not_active".
  Status cancel_hold(const std::string& hold_id, const std::string& customer);
  // Refunds and cancels a confirmed order; its seats go back on sale.
  Result<Order> cancel_order(const std::string& order_id, const std::string& customer);

  // Releases every active hold whose expiry has passed; returns how many. The service runs it
  // every sweep interval.
  Result<int> expire_due();
  // Settles the provider's ledger against the orders (run at startup and periodically).
  Result<ReconcileReport> reconcile();

  TicketDb& db() const { return db_; }
  SeatStrategy& strategy() const { return strategy_; }
  const BookingOptions& options() const { return options_; }
  // The injected wall clock, so callers (the HTTP service's catalog reads and idempotency keys)
  // see the same time as the booking flow.
  int64_t now_ms() const { return now_(); }

 private:
  TicketDb& db_;
  SeatStrategy& strategy_;
  PaymentProvider& payments_;
  IdGenerator& ids_;
  NowMs now_;
  BookingOptions options_;
  SeatListener listener_;
  // Serializes hold() per (event, customer) stripe, so the active-hold cap is exact in-process.
  std::array<std::mutex, 64> customer_mu_;
};

}  // namespace sd::ticketing
