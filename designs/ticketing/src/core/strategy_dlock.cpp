// The dlock strategy: per-seat locks ("ticketing/<event>/<seat>") through sd::dlock's client API,
// on any backend URI, taken in ascending seat order (no deadlock between multi-seat requests) and
// held only while the seat rows are checked and written. Every write carries the seat's fencing
// token: "... SET fence = :token WHERE fence < :token AND <state precondition>", so a holder whose
// lock was lost (lease expired while it was paused or partitioned) and who wakes up to write finds
// a newer token on the row and is refused (fence_rejections) instead of overwriting the newer
// holder.
//
// One dlock Session (lease) serves the strategy: created lazily, replaced when lost. A lease that
// already holds a name gets the same grant again when it re-acquires it (dlock's acquire is
// idempotent per lease), so the lease alone cannot keep two threads of this process apart: an
// in-process lock table does (LocalSeatLocks), and the dlock locks keep processes apart (several
// ticketd instances on one lock backend).
//
// Tokens must never go backwards for a seat row: a backend that forgets its token counter on
// restart (memory://) hands out tokens below the fences already written, and every write to those
// seats is then refused until the counter catches up. Use a persistent backend (sqlite://,
// dlockd://, etcd://) with a persistent ticket database; memory:// suits tests and throwaway runs.

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "sd/base/log.hpp"
#include "sd/dlock/client.hpp"
#include "strategy_common.hpp"

namespace sd::ticketing::detail {
namespace {

std::string lock_name(EventId event, SeatId seat) {
  return "ticketing/" + std::to_string(event) + "/" + std::to_string(seat);
}

// In-process exclusion per (event, seat): a call takes all its seats at once or waits (up to a
// deadline) until none of them is taken by another call of this process.
class LocalSeatLocks {
 public:
  bool lock(EventId event, const std::vector<SeatId>& seats, std::chrono::milliseconds wait) {
    std::unique_lock lock(mu_);
    auto free = [&] {
      for (SeatId s : seats) {
        if (held_.count({event, s})) return false;
      }
      return true;
    };
    if (!cv_.wait_for(lock, wait, free)) return false;
    for (SeatId s : seats) held_.insert({event, s});
    return true;
  }
  void unlock(EventId event, const std::vector<SeatId>& seats) {
    {
      std::lock_guard lock(mu_);
      for (SeatId s : seats) held_.erase({event, s});
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::pair<EventId, SeatId>> held_;  // guarded by mu_
};

// The locks of one call; unlocks (dlock, then local) when it goes away.
class CallLocks {
 public:
  CallLocks(LocalSeatLocks& local, EventId event) : local_(local), event_(event) {}
  ~CallLocks() {
    unlock_remote();
    if (local_held_) local_.unlock(event_, seats_);
  }
  CallLocks(const CallLocks&) = delete;
  CallLocks& operator=(const CallLocks&) = delete;

  bool lock_local(const std::vector<SeatId>& seats, std::chrono::milliseconds wait) {
    seats_ = seats;
    local_held_ = local_.lock(event_, seats_, wait);
    return local_held_;
  }
  // Adds `seats` to the local locks held, if none of them is busy right now (no wait).
  bool try_add_local(const std::vector<SeatId>& seats) {
    if (!local_.lock(event_, seats, std::chrono::milliseconds(0))) return false;
    seats_.insert(seats_.end(), seats.begin(), seats.end());
    local_held_ = true;
    return true;
  }
  void add(std::unique_ptr<dlock::Mutex> m) { remote_.push_back(std::move(m)); }
  void release_all() {
    unlock_remote();
    if (local_held_) local_.unlock(event_, seats_);
    local_held_ = false;
  }
  void unlock_remote() {
    for (auto& m : remote_) {
      Status s = m->unlock();
      // After a lost session the engine already dropped the lock; anything else leaves it to the
      // lease's expiry.
      if (!s && s.code() != Code::kNotFound && s.code() != Code::kConflict) {
        SD_LOG(kWarn) << "ticketing: unlock " << m->name() << ": " << s.to_string();
      }
    }
    remote_.clear();
  }

 private:
  LocalSeatLocks& local_;
  EventId event_;
  std::vector<SeatId> seats_;
  bool local_held_ = false;
  std::vector<std::unique_ptr<dlock::Mutex>> remote_;
};

enum class Op { kClaim, kConfirm, kRelease };

class DlockStrategy final : public SeatStrategy {
 public:
  DlockStrategy(TicketDb& db, std::shared_ptr<dlock::Backend> backend, StrategyOptions options,
                DlockHooks hooks)
      : db_(db), backend_(std::move(backend)), options_(options), hooks_(std::move(hooks)) {}

  ~DlockStrategy() override {
    std::shared_ptr<dlock::Session> s;
    {
      std::lock_guard lock(session_mu_);
      s.swap(session_);
    }
    if (s) (void)s->close();
  }

  StrategyKind kind() const override { return StrategyKind::kDlock; }

  Result<Hold> claim(const ClaimRequest& req, std::vector<SeatChange>& changes) override {
    auto r = claim_impl(req, changes);
    stats_.count_claim(r.status());
    return r;
  }

  Result<Order> confirm(const ConfirmRequest& req, std::vector<SeatChange>& changes) override {
    auto hold = read_hold_now(req.hold_id);
    if (!hold) return hold.status();
    SD_RETURN_IF_ERROR(check_hold_active(*hold, req.now_ms));
    CallLocks locks(local_, hold->event);
    Guard guard;
    std::shared_ptr<dlock::Session> session;
    SD_RETURN_IF_ERROR(lock_seats(Op::kConfirm, hold->event, hold->seats, locks, guard, session));
    if (hooks_.before_write) hooks_.before_write(*session, hold->seats);
    GuardFailure failure;
    auto r = write_confirm(db_, req, guard, changes, failure);
    if (!r && is_guard_failure(r.status())) return fenced_out(failure);
    return r;
  }

  Status release(const std::string& hold_id, HoldStatus to, int64_t now_ms,
                 std::vector<SeatChange>& changes) override {
    // Only the seats still held by this hold are locked and written (others were taken over).
    std::vector<SeatId> seats;
    EventId event = 0;
    Status read = db_.read([&](storage::Db& rdb) -> Status {
      auto hold = read_hold(rdb, hold_id);
      if (!hold) return hold.status();
      if (hold->status != HoldStatus::kActive) {
        return conflict("hold_not_active: hold " + hold_id + " is " +
                        std::string(hold_status_name(hold->status)));
      }
      event = hold->event;
      auto rows = read_seat_rows(rdb, hold->event, hold->seats);
      if (!rows) return rows.status();
      for (const SeatRow& row : *rows) {
        if (row.state == SeatState::kHeld && row.hold_id == hold_id) seats.push_back(row.seat);
      }
      return Status::ok();
    });
    if (!read) return read;
    CallLocks locks(local_, event);
    Guard guard;
    guard.kind = GuardKind::kFence;
    if (!seats.empty()) {
      std::shared_ptr<dlock::Session> session;
      SD_RETURN_IF_ERROR(lock_seats(Op::kRelease, event, seats, locks, guard, session));
      if (hooks_.before_write) hooks_.before_write(*session, seats);
    }
    GuardFailure failure;
    Status s = write_release(db_, hold_id, to, now_ms, guard, changes, failure);
    if (!s && is_guard_failure(s)) return fenced_out(failure);
    return s;
  }

  // The sweeper's batch: holds whose seats another call of this process has locked right now
  // (typically a claim taking an expired seat over) are left for the next sweep instead of
  // waited for; the others are locked in one round and released in one transaction.
  Result<std::vector<std::string>> release_all(const std::vector<std::string>& hold_ids,
                                               HoldStatus to, int64_t now_ms,
                                               std::vector<SeatChange>& changes) override {
    auto held = read_held_seats(db_, hold_ids);
    if (!held) return held.status();
    std::map<std::string, std::vector<SeatId>> seats_of;
    for (const SeatRow& row : held->rows) seats_of[row.hold_id].push_back(row.seat);
    CallLocks locks(local_, held->event);
    std::vector<std::string> ready;
    std::vector<SeatId> seats;
    for (const std::string& id : held->active) {
      const std::vector<SeatId>& own = seats_of[id];
      if (!own.empty() && !locks.try_add_local(own)) continue;
      ready.push_back(id);
      seats.insert(seats.end(), own.begin(), own.end());
    }
    if (ready.empty()) return std::vector<std::string>{};
    seats = sorted_seats(std::move(seats));
    Guard guard;
    guard.kind = GuardKind::kFence;
    if (!seats.empty()) {
      std::shared_ptr<dlock::Session> session;
      Status locked = lock_seats(Op::kRelease, held->event, seats, locks, guard, session,
                                 /*take_local=*/false);
      if (!locked) {
        locks.release_all();
        // Some seat's lock is held elsewhere: one hold at a time (each waits for its own seats).
        return SeatStrategy::release_all(ready, to, now_ms, changes);
      }
      if (hooks_.before_write) hooks_.before_write(*session, seats);
    }
    GuardFailure failure;
    std::vector<std::string> released;
    Status s = write_release_all(db_, ready, to, guard, changes, failure, released);
    if (!s && is_guard_failure(s)) return fenced_out(failure);
    if (!s) return s;
    return released;
  }

  StrategyStats stats() const override { return stats_.snapshot(); }

 private:
  Result<Hold> claim_impl(const ClaimRequest& req, std::vector<SeatChange>& changes) {
    const std::vector<SeatId> seats = sorted_seats(req.seats);
    if (seats.empty()) return invalid_argument("invalid_argument: no seats");
    // Seats already taken are not worth a lock (they would only delay their owner's confirm).
    SD_RETURN_IF_ERROR(precheck_claim(db_, req.event, seats, req.now_ms));
    CallLocks locks(local_, req.event);
    Guard guard;
    std::shared_ptr<dlock::Session> session;
    SD_RETURN_IF_ERROR(lock_seats(Op::kClaim, req.event, seats, locks, guard, session));
    if (hooks_.before_write) hooks_.before_write(*session, seats);
    GuardFailure failure;
    auto r = write_claim(db_, req, guard, changes, failure);
    if (!r && is_guard_failure(r.status())) return fenced_out(failure);
    return r;
  }

  Result<Hold> read_hold_now(const std::string& hold_id) {
    Hold hold;
    Status st = db_.read([&](storage::Db& rdb) -> Status {
      auto h = read_hold(rdb, hold_id);
      if (!h) return h.status();
      hold = std::move(*h);
      return Status::ok();
    });
    if (!st) return st;
    return hold;
  }

  // Takes the local locks (unless the caller has), then one dlock lock per seat in ascending
  // order; fills guard with the tokens. On failure everything taken so far is released (by
  // `locks`).
  Status lock_seats(Op op, EventId event, const std::vector<SeatId>& seats, CallLocks& locks,
                    Guard& guard, std::shared_ptr<dlock::Session>& used, bool take_local = true) {
    guard.kind = GuardKind::kFence;
    // A claim gives up soon (a busy seat is usually a taken seat); confirm and release work on
    // seats their hold owns, and a confirm that gives up costs a voided payment: they wait longer.
    const int64_t base = std::max<int64_t>(0, options_.lock_wait_ms);
    const std::chrono::milliseconds wait(op == Op::kClaim ? base : 4 * base);
    if (take_local && !locks.lock_local(seats, wait)) {
      stats_.lock_failures.fetch_add(1);
      return busy(op, seats.front(), "another request of this process");
    }
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto session = current_session();
      if (!session) {
        stats_.lock_failures.fetch_add(1);
        return session.status();
      }
      bool lost = false;
      for (SeatId seat : seats) {
        auto m = std::make_unique<dlock::Mutex>(*session, lock_name(event, seat));
        auto t = wait.count() > 0 ? m->lock(wait) : m->try_lock();
        if (t) {
          guard.values[seat] = static_cast<int64_t>(*t);
          locks.add(std::move(m));
          continue;
        }
        const Code c = t.status().code();
        if (c == Code::kFailedPrecondition || c == Code::kNotFound) {  // the lease is gone
          lost = true;
          break;
        }
        stats_.lock_failures.fetch_add(1);
        locks.unlock_remote();
        if (c == Code::kConflict) return busy(op, seat, "another holder");
        return unavailable("unavailable: lock backend " + backend_->uri() + ": " +
                           t.status().to_string());
      }
      if (!lost) {
        used = *session;
        return Status::ok();
      }
      locks.unlock_remote();
      guard.values.clear();
      drop_session(*session);
    }
    stats_.lock_failures.fetch_add(1);
    return unavailable("unavailable: the dlock session was lost twice in a row");
  }

  Status busy(Op op, SeatId seat, const char* by) {
    const int64_t waited = op == Op::kClaim ? options_.lock_wait_ms : 4 * options_.lock_wait_ms;
    std::string what = "seat " + std::to_string(seat) + " is locked by " + by + " (waited " +
                       std::to_string(waited) + " ms)";
    if (op == Op::kClaim) return conflict("seat_unavailable: " + what);
    return unavailable("unavailable: " + what + "; retry");
  }

  Status fenced_out(const GuardFailure& failure) {
    stats_.fence_rejections.fetch_add(1);
    SD_LOG(kWarn) << "ticketing: stale fencing token " << failure.expected << " for seat "
                  << failure.seat << " (row fenced at " << failure.actual
                  << "): the lock was lost and a newer holder wrote; write refused";
    return unavailable("unavailable: the lock on seat " + std::to_string(failure.seat) +
                       " was lost (fencing token " + std::to_string(failure.expected) +
                       " is older than the seat's " + std::to_string(failure.actual) +
                       "); nothing was written, retry");
  }

  Result<std::shared_ptr<dlock::Session>> current_session() {
    std::lock_guard lock(session_mu_);
    if (session_ && session_->alive()) return session_;
    dlock::SessionOptions so;
    so.ttl = Duration(options_.lock_session_ttl_ms);
    auto s = dlock::Session::create(backend_, so);
    if (!s) {
      return unavailable("unavailable: lock backend " + backend_->uri() + ": " +
                         s.status().to_string());
    }
    session_ = std::move(*s);
    return session_;
  }

  void drop_session(const std::shared_ptr<dlock::Session>& s) {
    std::lock_guard lock(session_mu_);
    if (session_ == s) session_.reset();
  }

  TicketDb& db_;
  std::shared_ptr<dlock::Backend> backend_;
  StrategyOptions options_;
  DlockHooks hooks_;
  StatsCounters stats_;
  LocalSeatLocks local_;
  std::mutex session_mu_;
  std::shared_ptr<dlock::Session> session_;  // guarded by session_mu_
};

}  // namespace

Result<std::unique_ptr<SeatStrategy>> make_dlock_strategy(TicketDb& db,
                                                          std::shared_ptr<dlock::Backend> backend,
                                                          StrategyOptions options,
                                                          DlockHooks hooks) {
  if (!backend)
    return invalid_argument("invalid_argument: the dlock strategy needs a lock backend");
  if (options.lock_session_ttl_ms <= 0) {
    return invalid_argument("invalid_argument: lock_session_ttl_ms must be positive");
  }
  static std::atomic<bool> warned{false};
  if (backend->uri().rfind("memory:", 0) == 0 && !warned.exchange(true)) {
    SD_LOG(kWarn) << "ticketing: dlock strategy on memory://: fencing tokens restart at 1 with the "
                     "process, below the fences already stored in the ticket database; use "
                     "sqlite:// (or another persistent backend) for a database that outlives it";
  }
  return std::unique_ptr<SeatStrategy>(
      std::make_unique<DlockStrategy>(db, std::move(backend), options, std::move(hooks)));
}

}  // namespace sd::ticketing::detail
