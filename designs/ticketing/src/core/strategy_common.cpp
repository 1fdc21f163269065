#include "strategy_common.hpp"

#include <algorithm>
#include <set>
#include <string_view>
#include <utility>

namespace sd::ticketing::detail {

using storage::Db;
using storage::Statement;

namespace {

Status guard_failed(const SeatRow& row, GuardFailure& failure, const Guard& guard) {
  failure.failed = true;
  failure.seat = row.seat;
  auto it = guard.values.find(row.seat);
  failure.expected = it == guard.values.end() ? 0 : it->second;
  failure.actual = guard.kind == GuardKind::kFence ? row.fence : row.version;
  return conflict("guard_failed: seat " + std::to_string(row.seat));
}

// The guard clause appended to a transition's WHERE and the SET part it adds, parameter ?N.
std::string guard_set(GuardKind kind, int param) {
  return kind == GuardKind::kFence ? ", fence = ?" + std::to_string(param) : "";
}
std::string guard_where(GuardKind kind, int param) {
  switch (kind) {
    case GuardKind::kFence:
      return " AND fence < ?" + std::to_string(param);
    case GuardKind::kVersion:
      return " AND version = ?" + std::to_string(param);
    case GuardKind::kNone:
      break;
  }
  return "";
}

Status bind_guard(Statement& st, const Guard& guard, SeatId seat, int param) {
  if (guard.kind == GuardKind::kNone) return Status::ok();
  auto it = guard.values.find(seat);
  if (it == guard.values.end()) {
    return internal_error("internal: no guard value for seat " + std::to_string(seat));
  }
  return st.bind_int64(param, it->second);
}

// Steps an UPDATE ... RETURNING version: the new version, or nullopt when no row matched.
Result<std::optional<int64_t>> run_returning(Statement& st) {
  std::optional<int64_t> version;
  for (;;) {
    auto row = st.step();
    if (!row) return row.status();
    if (!*row) break;
    version = st.column_int64(0);
  }
  return version;
}

// Whether the row is in the state the transition requires, so that a refused UPDATE can only
// mean its guard failed.
bool held_by(const SeatRow& row, const std::string& hold_id) {
  return row.state == SeatState::kHeld && row.hold_id == hold_id;
}

Status no_row_changed(const SeatRow& row) {
  return internal_error("internal: seat " + std::to_string(row.seat) +
                        " met its precondition and guard but was not updated");
}

bool guard_holds(const SeatRow& row, const Guard& guard) {
  auto it = guard.values.find(row.seat);
  switch (guard.kind) {
    case GuardKind::kNone:
      return true;
    case GuardKind::kFence:
      return it != guard.values.end() && row.fence < it->second;
    case GuardKind::kVersion:
      return it != guard.values.end() && row.version == it->second;
  }
  return true;
}

}  // namespace

bool claimable(const SeatRow& row, int64_t now_ms) {
  return row.state == SeatState::kAvailable ||
         (row.state == SeatState::kHeld && row.hold_expires_ms <= now_ms);
}

Status seat_unavailable(const SeatRow& row) {
  return conflict("seat_unavailable: seat " + std::to_string(row.seat) + " (" + row.label +
                  ") is " + std::string(seat_state_name(row.state)));
}

std::vector<SeatId> sorted_seats(std::vector<SeatId> seats) {
  std::sort(seats.begin(), seats.end());
  seats.erase(std::unique(seats.begin(), seats.end()), seats.end());
  return seats;
}

Status precheck_claim(TicketDb& db, EventId event, const std::vector<SeatId>& seats,
                      int64_t now_ms) {
  return db.read([&](Db& rdb) -> Status {
    auto rows = read_seat_rows(rdb, event, seats);
    if (!rows) return rows.status();
    for (const SeatRow& row : *rows) {
      if (!claimable(row, now_ms)) return seat_unavailable(row);
    }
    return Status::ok();
  });
}

Result<std::vector<SeatRow>> read_seat_rows(Db& db, EventId event,
                                            const std::vector<SeatId>& seats) {
  auto q = db.cached(
      "SELECT s.section, s.row_label, s.number, s.price_cents, es.state, es.hold_id, "
      "es.hold_expires_ms, es.order_id, es.fence, es.version FROM event_seats es "
      "JOIN seats s ON s.id = es.seat_id WHERE es.event_id = ? AND es.seat_id = ?");
  if (!q) return q.status();
  std::vector<SeatRow> out;
  out.reserve(seats.size());
  for (SeatId seat : seats) {
    Statement& st = **q;
    SD_RETURN_IF_ERROR(st.reset());
    SD_RETURN_IF_ERROR(st.bind_int64(1, event));
    SD_RETURN_IF_ERROR(st.bind_int64(2, seat));
    auto row = st.step();
    if (!row) return row.status();
    if (!*row) {
      return invalid_argument("invalid_argument: seat " + std::to_string(seat) +
                              " is not part of event " + std::to_string(event));
    }
    SeatRow r;
    r.seat = seat;
    r.label =
        st.column_text(0) + " " + st.column_text(1) + "-" + std::to_string(st.column_int64(2));
    r.price_cents = st.column_int64(3);
    r.state = parse_seat_state(st.column_text_view(4));
    if (!st.column_is_null(5)) r.hold_id = st.column_text(5);
    if (!st.column_is_null(6)) r.hold_expires_ms = st.column_int64(6);
    if (!st.column_is_null(7)) r.order_id = st.column_text(7);
    r.fence = st.column_int64(8);
    r.version = st.column_int64(9);
    out.push_back(std::move(r));
  }
  SD_RETURN_IF_ERROR((*q)->reset());
  return out;
}

Status check_hold_active(const Hold& hold, int64_t now_ms) {
  if (hold.status != HoldStatus::kActive) {
    return conflict("hold_not_active: hold " + hold.id + " is " +
                    std::string(hold_status_name(hold.status)));
  }
  if (now_ms >= hold.expires_ms) {
    return conflict("hold_not_active: hold " + hold.id + " expired at " +
                    std::to_string(hold.expires_ms));
  }
  return Status::ok();
}

bool is_guard_failure(const Status& s) {
  return s.code() == Code::kConflict && s.message().rfind("guard_failed:", 0) == 0;
}

Result<Hold> write_claim(TicketDb& db, const ClaimRequest& req, const Guard& guard,
                         std::vector<SeatChange>& changes, GuardFailure& failure) {
  const std::vector<SeatId> seats = sorted_seats(req.seats);
  if (seats.empty()) return invalid_argument("invalid_argument: no seats");
  Hold hold;
  std::vector<SeatChange> out;
  Status st = db.write([&](Db& w) {
    return storage::with_transaction(w, [&]() -> Status {
      out.clear();
      auto rows = read_seat_rows(w, req.event, seats);
      if (!rows) return rows.status();
      const std::string sql =
          "UPDATE event_seats SET state = 'held', hold_id = ?1, hold_expires_ms = ?2, "
          "order_id = NULL, version = version + 1" +
          guard_set(guard.kind, 6) +
          " WHERE event_id = ?3 AND seat_id = ?4 AND (state = 'available' OR "
          "(state = 'held' AND hold_expires_ms <= ?5))" +
          guard_where(guard.kind, 6) + " RETURNING version";
      auto up = w.cached(sql);
      if (!up) return up.status();
      int64_t amount = 0;
      std::set<std::string> taken_over;
      for (const SeatRow& row : *rows) {
        Statement& s = **up;
        SD_RETURN_IF_ERROR(s.reset());
        SD_RETURN_IF_ERROR(s.bind_text(1, req.hold_id));
        SD_RETURN_IF_ERROR(s.bind_int64(2, req.expires_ms));
        SD_RETURN_IF_ERROR(s.bind_int64(3, req.event));
        SD_RETURN_IF_ERROR(s.bind_int64(4, row.seat));
        SD_RETURN_IF_ERROR(s.bind_int64(5, req.now_ms));
        SD_RETURN_IF_ERROR(bind_guard(s, guard, row.seat, 6));
        auto v = run_returning(s);
        if (!v) return v.status();
        if (!*v) {
          if (!claimable(row, req.now_ms)) return seat_unavailable(row);
          if (!guard_holds(row, guard)) return guard_failed(row, failure, guard);
          return no_row_changed(row);
        }
        if (row.state == SeatState::kHeld) taken_over.insert(row.hold_id);
        amount += row.price_cents;
        out.push_back({row.seat, SeatState::kHeld, **v});
      }
      auto ins = w.cached(
          "INSERT INTO holds(id, event_id, customer, amount_cents, created_ms, expires_ms, "
          "status) VALUES (?, ?, ?, ?, ?, ?, 'active')");
      if (!ins) return ins.status();
      SD_RETURN_IF_ERROR((*ins)->bind_text(1, req.hold_id));
      SD_RETURN_IF_ERROR((*ins)->bind_int64(2, req.event));
      SD_RETURN_IF_ERROR((*ins)->bind_text(3, req.customer));
      SD_RETURN_IF_ERROR((*ins)->bind_int64(4, amount));
      SD_RETURN_IF_ERROR((*ins)->bind_int64(5, req.now_ms));
      SD_RETURN_IF_ERROR((*ins)->bind_int64(6, req.expires_ms));
      SD_RETURN_IF_ERROR((*ins)->run());
      auto hs = w.cached("INSERT INTO hold_seats(hold_id, seat_id) VALUES (?, ?)");
      if (!hs) return hs.status();
      for (SeatId seat : seats) {
        SD_RETURN_IF_ERROR((*hs)->reset());
        SD_RETURN_IF_ERROR((*hs)->bind_text(1, req.hold_id));
        SD_RETURN_IF_ERROR((*hs)->bind_int64(2, seat));
        SD_RETURN_IF_ERROR((*hs)->run());
      }
      // A hold whose seats have all been taken over is over: mark it expired. One that still
      // holds other seats stays active (past its expiry) until the sweeper releases the rest.
      if (!taken_over.empty()) {
        auto ex = w.cached(
            "UPDATE holds SET status = 'expired' WHERE id = ?1 AND status = 'active' AND "
            "expires_ms <= ?2 AND NOT EXISTS (SELECT 1 FROM event_seats WHERE event_id = ?3 AND "
            "state = 'held' AND hold_id = ?1)");
        if (!ex) return ex.status();
        for (const std::string& old : taken_over) {
          SD_RETURN_IF_ERROR((*ex)->reset());
          SD_RETURN_IF_ERROR((*ex)->bind_text(1, old));
          SD_RETURN_IF_ERROR((*ex)->bind_int64(2, req.now_ms));
          SD_RETURN_IF_ERROR((*ex)->bind_int64(3, req.event));
          SD_RETURN_IF_ERROR((*ex)->run());
        }
      }
      hold.id = req.hold_id;
      hold.event = req.event;
      hold.customer = req.customer;
      hold.seats = seats;
      hold.amount_cents = amount;
      hold.created_ms = req.now_ms;
      hold.expires_ms = req.expires_ms;
      hold.status = HoldStatus::kActive;
      return Status::ok();
    });
  });
  if (!st) return st;
  changes.insert(changes.end(), out.begin(), out.end());
  return hold;
}

Result<Order> write_confirm(TicketDb& db, const ConfirmRequest& req, const Guard& guard,
                            std::vector<SeatChange>& changes, GuardFailure& failure) {
  Order order;
  std::vector<SeatChange> out;
  storage::TxOptions tx;
  tx.durable = db.config().durable_orders;
  Status st = db.write([&](Db& w) {
    return storage::with_transaction(
        w,
        [&]() -> Status {
          out.clear();
          auto hold = read_hold(w, req.hold_id);
          if (!hold) return hold.status();
          SD_RETURN_IF_ERROR(check_hold_active(*hold, req.now_ms));
          auto rows = read_seat_rows(w, hold->event, hold->seats);
          if (!rows) return rows.status();
          const std::string sql =
              "UPDATE event_seats SET state = 'sold', order_id = ?1, hold_id = NULL, "
              "hold_expires_ms = NULL, version = version + 1" +
              guard_set(guard.kind, 5) +
              " WHERE event_id = ?2 AND seat_id = ?3 AND state = 'held' AND hold_id = ?4" +
              guard_where(guard.kind, 5) + " RETURNING version";
          auto up = w.cached(sql);
          if (!up) return up.status();
          for (const SeatRow& row : *rows) {
            Statement& s = **up;
            SD_RETURN_IF_ERROR(s.reset());
            SD_RETURN_IF_ERROR(s.bind_text(1, req.order_id));
            SD_RETURN_IF_ERROR(s.bind_int64(2, hold->event));
            SD_RETURN_IF_ERROR(s.bind_int64(3, row.seat));
            SD_RETURN_IF_ERROR(s.bind_text(4, hold->id));
            SD_RETURN_IF_ERROR(bind_guard(s, guard, row.seat, 5));
            auto v = run_returning(s);
            if (!v) return v.status();
            if (!*v) {
              if (!held_by(row, hold->id)) {
                return conflict("hold_not_active: hold " + hold->id + " no longer holds seat " +
                                std::to_string(row.seat) + " (" + row.label + ")");
              }
              if (!guard_holds(row, guard)) return guard_failed(row, failure, guard);
              return no_row_changed(row);
            }
            out.push_back({row.seat, SeatState::kSold, **v});
          }
          auto ins = w.cached(
              "INSERT INTO orders(id, hold_id, event_id, customer, amount_cents, status, "
              "payment_id, payment_state, created_ms) "
              "VALUES (?, ?, ?, ?, ?, 'confirmed', ?, 'authorized', ?)");
          if (!ins) return ins.status();
          SD_RETURN_IF_ERROR((*ins)->bind_text(1, req.order_id));
          SD_RETURN_IF_ERROR((*ins)->bind_text(2, hold->id));
          SD_RETURN_IF_ERROR((*ins)->bind_int64(3, hold->event));
          SD_RETURN_IF_ERROR((*ins)->bind_text(4, hold->customer));
          SD_RETURN_IF_ERROR((*ins)->bind_int64(5, hold->amount_cents));
          SD_RETURN_IF_ERROR((*ins)->bind_text(6, req.payment_id));
          SD_RETURN_IF_ERROR((*ins)->bind_int64(7, req.now_ms));
          SD_RETURN_IF_ERROR((*ins)->run());
          auto tk = w.cached(
              "INSERT INTO tickets(order_id, event_id, seat_id, valid) VALUES (?, ?, ?, 1)");
          if (!tk) return tk.status();
          for (const SeatRow& row : *rows) {
            SD_RETURN_IF_ERROR((*tk)->reset());
            SD_RETURN_IF_ERROR((*tk)->bind_text(1, req.order_id));
            SD_RETURN_IF_ERROR((*tk)->bind_int64(2, hold->event));
            SD_RETURN_IF_ERROR((*tk)->bind_int64(3, row.seat));
            Status ran = (*tk)->run();
            if (ran.code() == Code::kAlreadyExists) {
              // The unique index on valid tickets: the last line of defence held.
              return conflict("seat_unavailable: seat " + std::to_string(row.seat) + " (" +
                              row.label + ") already has a valid ticket");
            }
            SD_RETURN_IF_ERROR(ran);
          }
          auto paid = w.cached(
              "UPDATE holds SET status = 'paid', order_id = ? WHERE id = ? AND status = 'active'");
          if (!paid) return paid.status();
          SD_RETURN_IF_ERROR((*paid)->bind_text(1, req.order_id));
          SD_RETURN_IF_ERROR((*paid)->bind_text(2, hold->id));
          SD_RETURN_IF_ERROR((*paid)->run());
          if (w.changes() != 1) {
            return conflict("hold_not_active: hold " + hold->id + " is no longer active");
          }
          order.id = req.order_id;
          order.hold_id = hold->id;
          order.event = hold->event;
          order.customer = hold->customer;
          order.seats = hold->seats;
          order.amount_cents = hold->amount_cents;
          order.status = OrderStatus::kConfirmed;
          order.payment_id = req.payment_id;
          order.created_ms = req.now_ms;
          return Status::ok();
        },
        tx);
  });
  if (!st) return st;
  changes.insert(changes.end(), out.begin(), out.end());
  return order;
}

namespace {

// Releases the holds inside the caller's write transaction. strict: a hold that is not active is
// an error (single release); otherwise it is skipped (bulk release by the sweeper).
Status release_in_tx(Db& w, const std::vector<std::string>& hold_ids, HoldStatus to,
                     const Guard& guard, bool strict, std::vector<SeatChange>& out,
                     GuardFailure& failure, std::vector<std::string>& released) {
  const std::string sql =
      "UPDATE event_seats SET state = 'available', hold_id = NULL, hold_expires_ms = NULL, "
      "version = version + 1" +
      guard_set(guard.kind, 4) +
      " WHERE event_id = ?1 AND seat_id = ?2 AND state = 'held' AND hold_id = ?3" +
      guard_where(guard.kind, 4) + " RETURNING version";
  for (const std::string& hold_id : hold_ids) {
    auto hold = read_hold(w, hold_id);
    if (!hold && !strict && hold.status().code() == Code::kNotFound) continue;
    if (!hold) return hold.status();
    if (hold->status != HoldStatus::kActive) {
      if (!strict) continue;
      return conflict("hold_not_active: hold " + hold_id + " is " +
                      std::string(hold_status_name(hold->status)));
    }
    auto rows = read_seat_rows(w, hold->event, hold->seats);
    if (!rows) return rows.status();
    auto up = w.cached(sql);
    if (!up) return up.status();
    for (const SeatRow& row : *rows) {
      if (!held_by(row, hold_id)) continue;  // taken over after expiry: not ours any more
      Statement& s = **up;
      SD_RETURN_IF_ERROR(s.reset());
      SD_RETURN_IF_ERROR(s.bind_int64(1, hold->event));
      SD_RETURN_IF_ERROR(s.bind_int64(2, row.seat));
      SD_RETURN_IF_ERROR(s.bind_text(3, hold_id));
      SD_RETURN_IF_ERROR(bind_guard(s, guard, row.seat, 4));
      auto v = run_returning(s);
      if (!v) return v.status();
      if (!*v) {
        if (!guard_holds(row, guard)) return guard_failed(row, failure, guard);
        return no_row_changed(row);
      }
      out.push_back({row.seat, SeatState::kAvailable, **v});
    }
    auto up_hold = w.cached("UPDATE holds SET status = ? WHERE id = ? AND status = 'active'");
    if (!up_hold) return up_hold.status();
    SD_RETURN_IF_ERROR((*up_hold)->bind_text(1, hold_status_name(to)));
    SD_RETURN_IF_ERROR((*up_hold)->bind_text(2, hold_id));
    SD_RETURN_IF_ERROR((*up_hold)->run());
    if (w.changes() != 1) {
      return conflict("hold_not_active: hold " + hold_id + " is no longer active");
    }
    released.push_back(hold_id);
  }
  return Status::ok();
}

Status check_release_target(HoldStatus to) {
  if (to != HoldStatus::kCancelled && to != HoldStatus::kExpired) {
    return invalid_argument("invalid_argument: a hold is released as cancelled or expired");
  }
  return Status::ok();
}

}  // namespace

Status write_release(TicketDb& db, const std::string& hold_id, HoldStatus to, int64_t now_ms,
                     const Guard& guard, std::vector<SeatChange>& changes, GuardFailure& failure) {
  (void)now_ms;  // releases do not depend on time: an active hold is released whatever its expiry
  SD_RETURN_IF_ERROR(check_release_target(to));
  std::vector<SeatChange> out;
  std::vector<std::string> released;
  Status st = db.write([&](Db& w) {
    return storage::with_transaction(w, [&]() -> Status {
      out.clear();
      released.clear();
      return release_in_tx(w, {hold_id}, to, guard, true, out, failure, released);
    });
  });
  if (!st) return st;
  changes.insert(changes.end(), out.begin(), out.end());
  return Status::ok();
}

Status write_release_all(TicketDb& db, const std::vector<std::string>& hold_ids, HoldStatus to,
                         const Guard& guard, std::vector<SeatChange>& changes,
                         GuardFailure& failure, std::vector<std::string>& released) {
  SD_RETURN_IF_ERROR(check_release_target(to));
  std::vector<SeatChange> out;
  std::vector<std::string> done;
  Status st = db.write([&](Db& w) {
    return storage::with_transaction(w, [&]() -> Status {
      out.clear();
      done.clear();
      return release_in_tx(w, hold_ids, to, guard, false, out, failure, done);
    });
  });
  if (!st) return st;
  changes.insert(changes.end(), out.begin(), out.end());
  released.insert(released.end(), done.begin(), done.end());
  return Status::ok();
}

Result<HeldSeats> read_held_seats(TicketDb& db, const std::vector<std::string>& hold_ids) {
  HeldSeats out;
  Status st = db.read([&](Db& rdb) -> Status {
    for (const std::string& id : hold_ids) {
      auto hold = read_hold(rdb, id);
      if (!hold) {
        if (hold.status().code() == Code::kNotFound) continue;
        return hold.status();
      }
      if (hold->status != HoldStatus::kActive) continue;
      if (!out.active.empty() && hold->event != out.event) {
        return invalid_argument("invalid_argument: release_all takes holds of one event");
      }
      out.event = hold->event;
      out.active.push_back(id);
      auto rows = read_seat_rows(rdb, hold->event, hold->seats);
      if (!rows) return rows.status();
      for (SeatRow& row : *rows) {
        if (held_by(row, id)) out.rows.push_back(std::move(row));
      }
    }
    return Status::ok();
  });
  if (!st) return st;
  return out;
}

StrategyStats StatsCounters::snapshot() const {
  StrategyStats s;
  s.claims = claims.load();
  s.claim_conflicts = claim_conflicts.load();
  s.optimistic_retries = optimistic_retries.load();
  s.fence_rejections = fence_rejections.load();
  s.lock_failures = lock_failures.load();
  return s;
}

void StatsCounters::count_claim(const Status& s) {
  if (s.is_ok()) {
    claims.fetch_add(1);
  } else if (s.code() == Code::kConflict && s.message().rfind("seat_unavailable", 0) == 0) {
    claim_conflicts.fetch_add(1);
  }
}

}  // namespace sd::ticketing::detail
