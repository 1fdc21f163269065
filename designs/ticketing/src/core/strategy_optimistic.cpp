// The optimistic strategy: read the seats and their versions without any lock, decide, then write
// with "... WHERE version = <read version>" (plus the state precondition). A seat that changed in
// between fails the guard: the whole transaction rolls back and the call starts over from the
// read, at most options.optimistic_retries times, then answers seat_unavailable. A seat that is
// plainly taken answers seat_unavailable at once, without retrying.

#include "strategy_common.hpp"

#include <utility>

namespace sd::ticketing::detail {
namespace {

Guard versions_of(const std::vector<SeatRow>& rows) {
  Guard g;
  g.kind = GuardKind::kVersion;
  for (const SeatRow& r : rows) g.values[r.seat] = r.version;
  return g;
}

class OptimisticStrategy final : public SeatStrategy {
 public:
  OptimisticStrategy(TicketDb& db, StrategyOptions options, OptimisticHooks hooks)
      : db_(db), options_(options), hooks_(std::move(hooks)) {}

  StrategyKind kind() const override { return StrategyKind::kOptimistic; }

  Result<Hold> claim(const ClaimRequest& req, std::vector<SeatChange>& changes) override {
    auto r = claim_impl(req, changes);
    stats_.count_claim(r.status());
    return r;
  }

  Result<Order> confirm(const ConfirmRequest& req, std::vector<SeatChange>& changes) override {
    for (int attempt = 0;; ++attempt) {
      Guard guard;
      Status read = db_.read([&](storage::Db& rdb) -> Status {
        auto hold = read_hold(rdb, req.hold_id);
        if (!hold) return hold.status();
        SD_RETURN_IF_ERROR(check_hold_active(*hold, req.now_ms));
        auto rows = read_seat_rows(rdb, hold->event, hold->seats);
        if (!rows) return rows.status();
        for (const SeatRow& row : *rows) {
          if (row.state != SeatState::kHeld || row.hold_id != hold->id) {
            return conflict("hold_not_active: hold " + hold->id + " no longer holds seat " +
                            std::to_string(row.seat) + " (" + row.label + ")");
          }
        }
        guard = versions_of(*rows);
        return Status::ok();
      });
      if (!read) return read;
      GuardFailure failure;
      auto r = write_confirm(db_, req, guard, changes, failure);
      if (r || !is_guard_failure(r.status())) return r;
      if (attempt >= options_.optimistic_retries) return lost_races(failure, attempt);
      stats_.optimistic_retries.fetch_add(1);
    }
  }

  Status release(const std::string& hold_id, HoldStatus to, int64_t now_ms,
                 std::vector<SeatChange>& changes) override {
    for (int attempt = 0;; ++attempt) {
      Guard guard;
      Status read = db_.read([&](storage::Db& rdb) -> Status {
        auto hold = read_hold(rdb, hold_id);
        if (!hold) return hold.status();
        if (hold->status != HoldStatus::kActive) {
          return conflict("hold_not_active: hold " + hold_id + " is " +
                          std::string(hold_status_name(hold->status)));
        }
        auto rows = read_seat_rows(rdb, hold->event, hold->seats);
        if (!rows) return rows.status();
        guard = versions_of(*rows);
        return Status::ok();
      });
      if (!read) return read;
      GuardFailure failure;
      Status s = write_release(db_, hold_id, to, now_ms, guard, changes, failure);
      if (s || !is_guard_failure(s)) return s;
      if (attempt >= options_.optimistic_retries) return lost_races(failure, attempt);
      stats_.optimistic_retries.fetch_add(1);
    }
  }

  Result<std::vector<std::string>> release_all(const std::vector<std::string>& hold_ids,
                                               HoldStatus to, int64_t now_ms,
                                               std::vector<SeatChange>& changes) override {
    for (int attempt = 0; attempt <= options_.optimistic_retries; ++attempt) {
      auto held = read_held_seats(db_, hold_ids);
      if (!held) return held.status();
      if (held->active.empty()) return std::vector<std::string>{};
      GuardFailure failure;
      std::vector<std::string> released;
      Status s = write_release_all(db_, held->active, to, versions_of(held->rows), changes, failure,
                                   released);
      if (s) return released;
      if (!is_guard_failure(s)) return s;
      stats_.optimistic_retries.fetch_add(1);
    }
    // Still racing: one hold at a time.
    return SeatStrategy::release_all(hold_ids, to, now_ms, changes);
  }

  StrategyStats stats() const override { return stats_.snapshot(); }

 private:
  Result<Hold> claim_impl(const ClaimRequest& req, std::vector<SeatChange>& changes) {
    const std::vector<SeatId> seats = sorted_seats(req.seats);
    for (int attempt = 0;; ++attempt) {
      Guard guard;
      Status read = db_.read([&](storage::Db& rdb) -> Status {
        auto rows = read_seat_rows(rdb, req.event, seats);
        if (!rows) return rows.status();
        for (const SeatRow& row : *rows) {
          if (!claimable(row, req.now_ms)) return seat_unavailable(row);
        }
        guard = versions_of(*rows);
        return Status::ok();
      });
      if (!read) return read;
      if (hooks_.after_read) hooks_.after_read(seats);
      GuardFailure failure;
      auto r = write_claim(db_, req, guard, changes, failure);
      if (r || !is_guard_failure(r.status())) return r;
      if (attempt >= options_.optimistic_retries) {
        return conflict("seat_unavailable: seat " + std::to_string(failure.seat) +
                        " kept changing (lost " + std::to_string(attempt + 1) +
                        " optimistic races)");
      }
      stats_.optimistic_retries.fetch_add(1);
    }
  }

  static Status lost_races(const GuardFailure& failure, int attempt) {
    return unavailable("unavailable: seat " + std::to_string(failure.seat) +
                       " kept changing (lost " + std::to_string(attempt + 1) +
                       " optimistic races); retry");
  }

  TicketDb& db_;
  StrategyOptions options_;
  OptimisticHooks hooks_;
  StatsCounters stats_;
};

}  // namespace

std::unique_ptr<SeatStrategy> make_optimistic_strategy(TicketDb& db, StrategyOptions options,
                                                       OptimisticHooks hooks) {
  return std::make_unique<OptimisticStrategy>(db, options, std::move(hooks));
}

}  // namespace sd::ticketing::detail
