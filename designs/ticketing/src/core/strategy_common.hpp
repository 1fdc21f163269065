#pragma once
// What the three seat strategies share: the SQL of the seat transitions (held / sold / available),
// each with an optional per-seat guard (a dlock fencing token or an optimistic version), the hold /
// order bookkeeping, error messages and the stats counters. The strategies differ only in what
// happens before the write transaction (nothing, a version read, per-seat locks) and in the guard.
//
// Every transition is one UPDATE whose WHERE clause carries the state precondition and the guard,
// so the database decides; the row read just before (in the same BEGIN IMMEDIATE transaction)
// only explains a refusal: seat taken (kConflict "seat_unavailable") or guard failed (stale fence /
// changed version), which the caller handles (abort / retry).

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rows.hpp"
#include "sd/base/status.hpp"
#include "sd/storage/sqlite.hpp"
#include "sd/ticketing/db.hpp"
#include "sd/ticketing/model.hpp"
#include "sd/ticketing/strategy.hpp"

namespace sd::dlock {
class Session;
}

namespace sd::ticketing::detail {

// One event_seats row with its seat's catalog data.
struct SeatRow {
  SeatId seat = 0;
  std::string label;  // "Floor A-12"
  int64_t price_cents = 0;
  SeatState state = SeatState::kAvailable;
  std::string hold_id;          // "" unless held
  int64_t hold_expires_ms = 0;  // when held
  std::string order_id;         // "" unless sold
  int64_t fence = 0;
  int64_t version = 0;
};

// A new hold may take the seat: available, or held by a hold whose expiry has passed.
bool claimable(const SeatRow& row, int64_t now_ms);
// "seat_unavailable: seat 12 (Floor A-3) is held"
Status seat_unavailable(const SeatRow& row);

// Reads the rows of `seats` for an event (any connection). kInvalidArgument "invalid_argument: seat
// N is not part of event E" for an unknown seat.
Result<std::vector<SeatRow>> read_seat_rows(storage::Db& db, EventId event,
                                            const std::vector<SeatId>& seats);
// kConflict "hold_not_active: ..." unless the hold is active and unexpired at now_ms.
Status check_hold_active(const Hold& hold, int64_t now_ms);

std::vector<SeatId> sorted_seats(std::vector<SeatId> seats);

// The claim's fast path out: reads the seats on a read connection (no lock, no writer) and answers
// seat_unavailable (or invalid_argument) at once when a seat is plainly taken. In a flash sale
// most claims are for seats someone else got first; this keeps them away from the seat locks and
// the single writer. Only a hint: the guarded write decides.
Status precheck_claim(TicketDb& db, EventId event, const std::vector<SeatId>& seats,
                      int64_t now_ms);

// The per-seat guard a transition's UPDATE carries on top of its state precondition.
enum class GuardKind {
  kNone,     // conditional strategy: the state precondition alone
  kFence,    // dlock: "fence < token" and the row's fence becomes the token
  kVersion,  // optimistic: "version = <read version>"
};
struct Guard {
  GuardKind kind = GuardKind::kNone;
  std::map<SeatId, int64_t> values;  // token or version per seat (kFence, kVersion)
};

// Set when a transition was refused by its guard rather than by the seat's state: a stale fencing
// token (a newer lock holder wrote the row) or a version that changed since it was read.
struct GuardFailure {
  bool failed = false;
  SeatId seat = 0;
  int64_t expected = 0;  // our token / read version
  int64_t actual = 0;    // the row's fence / version
};

// available (or expired hold) -> held by a new hold; inserts the hold and its seats, and marks
// each hold whose seats were all taken over as expired. One write transaction, all or nothing.
// A guard refusal returns kConflict "guard_failed: ..." (is_guard_failure) with `failure` filled.
Result<Hold> write_claim(TicketDb& db, const ClaimRequest& req, const Guard& guard,
                         std::vector<SeatChange>& changes, GuardFailure& failure);
// held -> sold for an active, unexpired hold; inserts the order and its tickets and marks the hold
// paid, in one (durable, per DbConfig) transaction.
Result<Order> write_confirm(TicketDb& db, const ConfirmRequest& req, const Guard& guard,
                            std::vector<SeatChange>& changes, GuardFailure& failure);
// held -> available where the row still belongs to the hold (seats taken over after expiry are
// left alone); the hold's status becomes `to`.
Status write_release(TicketDb& db, const std::string& hold_id, HoldStatus to, int64_t now_ms,
                     const Guard& guard, std::vector<SeatChange>& changes, GuardFailure& failure);
// The same for several holds in one transaction; holds that are not active any more are skipped.
// `released` receives the ids released.
Status write_release_all(TicketDb& db, const std::vector<std::string>& hold_ids, HoldStatus to,
                         const Guard& guard, std::vector<SeatChange>& changes,
                         GuardFailure& failure, std::vector<std::string>& released);

// The seats each active hold of `hold_ids` still holds (read connection), for locking / guards.
struct HeldSeats {
  EventId event = 0;
  std::vector<SeatRow> rows;        // rows still held by one of the holds
  std::vector<std::string> active;  // the holds still active
};
Result<HeldSeats> read_held_seats(TicketDb& db, const std::vector<std::string>& hold_ids);

// The status write_* return with a GuardFailure (callers replace it with their own message).
bool is_guard_failure(const Status& s);

// Thread-safe counters behind SeatStrategy::stats().
struct StatsCounters {
  std::atomic<uint64_t> claims{0}, claim_conflicts{0}, optimistic_retries{0}, fence_rejections{0},
      lock_failures{0};
  StrategyStats snapshot() const;
  // Counts a claim's outcome (success / seat_unavailable).
  void count_claim(const Status& s);
};

// Test hooks of the dlock strategy (production passes none).
struct DlockHooks {
  // Runs with every seat's lock in hand, right before the write transaction: lets a test lose the
  // lock (revoke the session's lease) and have a newer holder write first, i.e. simulate a paused
  // or partitioned holder.
  std::function<void(dlock::Session&, const std::vector<SeatId>&)> before_write;
};

// Test hook of the optimistic strategy: runs between a claim's read and its write (a test changes
// a seat's version there to lose the race).
struct OptimisticHooks {
  std::function<void(const std::vector<SeatId>&)> after_read;
};

std::unique_ptr<SeatStrategy> make_conditional_strategy(TicketDb& db, StrategyOptions options);
std::unique_ptr<SeatStrategy> make_optimistic_strategy(TicketDb& db, StrategyOptions options,
                                                       OptimisticHooks hooks = {});
Result<std::unique_ptr<SeatStrategy>> make_dlock_strategy(TicketDb& db,
                                                          std::shared_ptr<dlock::Backend> backend,
                                                          StrategyOptions options,
                                                          DlockHooks hooks = {});

}  // namespace sd::ticketing::detail
