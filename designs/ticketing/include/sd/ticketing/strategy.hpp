#pragma once
// SeatStrategy: the double-booking guard, i.e. how a hold claims seats and how a payment turns
// held seats into sold ones. Three strategies, chosen by flag, so they can be measured side by
// side on the same schema:
//
//   dlock        per-seat locks through sd::dlock's client API (any backend URI; embedded
//                sqlite:// by default), taken in seat order; every seat write carries the lock's
//                fencing token and is conditional on `fence < token`, so a holder whose lock
//                expired (paused, partitioned) can never overwrite a newer holder, nor sell.
//   conditional  no locks: one conditional UPDATE per seat inside a transaction
//                ("... WHERE state is available or its hold expired"); all-or-nothing.
//   optimistic   read seats and their versions without locks, then write with
//                "... WHERE version = <read version>"; a lost race retries (bounded), then 409.
//
// Whatever the strategy, a sold seat also needs a valid-ticket row, UNIQUE per (event, seat).
//
// Thread-safe. Errors: kConflict "seat_unavailable" (some seat is held or sold), kConflict
// "hold_not_active" (confirm/release of a hold that expired, was paid or cancelled), kUnavailable
// (lock backend or database down), kInvalidArgument (unknown seat for the event).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sd/base/status.hpp"
#include "sd/ticketing/db.hpp"
#include "sd/ticketing/model.hpp"

namespace sd::dlock {
class Backend;
}

namespace sd::ticketing {

enum class StrategyKind { kDlock, kConditional, kOptimistic };
std::string_view strategy_name(StrategyKind k);              // "dlock" | ...
Result<StrategyKind> parse_strategy(std::string_view name);  // kInvalidArgument listing choices

struct ClaimRequest {
  std::string hold_id;  // new hold's id
  EventId event = 0;
  std::string customer;
  std::vector<SeatId> seats;  // non-empty, distinct (sorted by the callee)
  int64_t now_ms = 0;
  int64_t expires_ms = 0;
};

struct ConfirmRequest {
  std::string hold_id;
  std::string order_id;
  std::string payment_id;
  int64_t now_ms = 0;
};

struct StrategyStats {
  // claims: successful claims; claim_conflicts: claims answered seat_unavailable.
  uint64_t claims = 0, claim_conflicts = 0, optimistic_retries = 0, fence_rejections = 0;
  uint64_t lock_failures = 0;  // lock backend unavailable / lock not granted in time
};

class SeatStrategy {
 public:
  virtual ~SeatStrategy() = default;
  virtual StrategyKind kind() const = 0;
  // available -> held for a new active hold (rows in holds/hold_seats), all seats or none.
  // Returns the hold (amount = sum of seat prices) and the seat changes to publish.
  virtual Result<Hold> claim(const ClaimRequest& req, std::vector<SeatChange>& changes) = 0;
  // held -> sold for an active, unexpired hold: the order, its tickets and hold status paid, in
  // one durable transaction. kConflict "hold_not_active" if the hold is no longer active or has
  // expired at now_ms.
  virtual Result<Order> confirm(const ConfirmRequest& req, std::vector<SeatChange>& changes) = 0;
  // held -> available for an active hold, which becomes `to` (kCancelled or kExpired). kConflict
  // "hold_not_active" if it is not active any more.
  virtual Status release(const std::string& hold_id, HoldStatus to, int64_t now_ms,
                         std::vector<SeatChange>& changes) = 0;
  // The sweeper's bulk release(): releases those of `hold_ids` (holds of one event) that are still
  // active, as `to`, in one write transaction (and one round of seat locks) where the strategy
  // can; holds no longer active are skipped. Returns the ids released. The default calls
  // release() for each.
  virtual Result<std::vector<std::string>> release_all(const std::vector<std::string>& hold_ids,
                                                       HoldStatus to, int64_t now_ms,
                                                       std::vector<SeatChange>& changes);
  virtual StrategyStats stats() const = 0;
};

struct StrategyOptions {
  // dlock: how long a claim waits for a seat's lock (0: try once). Locks are held only while the
  // seat rows are checked and written, so a short wait suffices; a busy seat is usually a taken
  // seat. confirm and release (seats their hold owns) wait 4x as long.
  int64_t lock_wait_ms = 50;
  int64_t lock_session_ttl_ms = 10'000;
  // optimistic: retries after losing a version race before answering seat_unavailable.
  int optimistic_retries = 3;
};

// `lock_backend` is used (and required) by kDlock only; it must outlive the strategy.
Result<std::unique_ptr<SeatStrategy>> make_strategy(StrategyKind kind, TicketDb& db,
                                                    std::shared_ptr<dlock::Backend> lock_backend,
                                                    StrategyOptions options = {});

}  // namespace sd::ticketing
