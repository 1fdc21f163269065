// BookingService: validation and the booking flow around a SeatStrategy and a PaymentProvider.
//
// Money and seats are kept consistent by ordering, not by a distributed transaction:
//   pay          authorize -> confirm (order + tickets, one durable transaction) -> capture.
//                The order never exists without an authorization; an authorization whose order
//                cannot be confirmed any more is voided at once, else (void failed, answer lost,
//                confirm only temporarily unavailable) by reconcile() once it is older than
//                orphan_authorization_ms; a retried pay() of the same hold reuses it.
//   cancel_order order cancelled + tickets invalid (seats stay sold to it) -> refund/void ->
//                payment_state refunded + seats available. Seats never go back on sale before the
//                money went back; a refund that fails is retried by the next cancel_order call or
//                by reconcile().
//   reconcile    walks the provider's ledger against the orders: captures what confirmed orders
//                left authorized, voids orphan authorizations, refunds captured charges whose
//                order is cancelled or missing, and finishes cancelled orders' seat releases.

#include "sd/ticketing/booking.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <utility>

#include "sd/base/log.hpp"
#include "strategy_common.hpp"

namespace sd::ticketing {

using storage::Db;
using storage::Statement;

namespace {

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// True if the message already starts with a machine code ("word: ...").
bool has_code(const std::string& msg) {
  size_t i = 0;
  while (i < msg.size() && ((msg[i] >= 'a' && msg[i] <= 'z') || msg[i] == '_')) ++i;
  return i > 0 && i + 1 < msg.size() && msg[i] == ':' && msg[i + 1] == ' ';
}

Status with_code(const Status& s, const std::string& code) {
  if (has_code(s.message())) return s;
  return Status(s.code(), code + ": " + s.message());
}

bool valid_customer(const std::string& c, size_t max_bytes) {
  if (c.empty() || c.size() > max_bytes) return false;
  for (char ch : c) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '@' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

Status not_your(const std::string& what, const std::string& id) {
  return Status(Code::kFailedPrecondition,
                "not_your_hold: " + what + " " + id + " belongs to another customer");
}

Status hold_expired(const Hold& h) {
  return conflict("hold_expired: hold " + h.id + " expired at " + std::to_string(h.expires_ms));
}

// An order's payment columns (not part of the public Order).
struct OrderRow {
  std::string id;
  EventId event = 0;
  bool confirmed = false;
  std::string payment_id;
  std::string payment_state;  // authorized | captured | refunded
};

Result<std::vector<OrderRow>> read_order_rows(TicketDb& db, const std::string& where,
                                              const std::string& arg) {
  std::vector<OrderRow> out;
  Status st = db.read([&](Db& rdb) -> Status {
    auto q =
        rdb.prepare("SELECT id, event_id, status, payment_id, payment_state FROM orders" + where);
    if (!q) return q.status();
    if (!arg.empty()) SD_RETURN_IF_ERROR(q->bind_text(1, arg));
    for (;;) {
      auto row = q->step();
      if (!row) return row.status();
      if (!*row) return Status::ok();
      OrderRow o;
      o.id = q->column_text(0);
      o.event = q->column_int64(1);
      o.confirmed = q->column_text_view(2) == "confirmed";
      o.payment_id = q->column_text(3);
      o.payment_state = q->column_text(4);
      out.push_back(std::move(o));
    }
  });
  if (!st) return st;
  return out;
}

Status set_payment_state(TicketDb& db, const std::string& order_id, const std::string& from,
                         const std::string& to) {
  return db.write([&](Db& w) -> Status {
    auto q = w.cached("UPDATE orders SET payment_state = ? WHERE id = ? AND payment_state = ?");
    if (!q) return q.status();
    SD_RETURN_IF_ERROR((*q)->bind_text(1, to));
    SD_RETURN_IF_ERROR((*q)->bind_text(2, order_id));
    SD_RETURN_IF_ERROR((*q)->bind_text(3, from));
    return (*q)->run();
  });
}

// Money back for a cancelled order: a captured charge is refunded, an authorized one voided (the
// ledger decides which; the DB's payment_state may lag it).
Status return_money(PaymentProvider& payments, const OrderRow& o) {
  const bool authorized = o.payment_state == "authorized";
  Status s = authorized ? payments.void_authorization(o.payment_id) : payments.refund(o.payment_id);
  if (s.code() == Code::kConflict) {
    s = authorized ? payments.refund(o.payment_id) : payments.void_authorization(o.payment_id);
  }
  return s;
}

}  // namespace

BookingService::BookingService(TicketDb& db, SeatStrategy& strategy, PaymentProvider& payments,
                               IdGenerator& ids, NowMs now, BookingOptions options)
    : db_(db),
      strategy_(strategy),
      payments_(payments),
      ids_(ids),
      now_(std::move(now)),
      options_(options) {}

void BookingService::set_listener(SeatListener listener) {
  listener_ = std::move(listener);
}

Result<Hold> BookingService::hold(const HoldRequest& req) {
  const int64_t now = now_();
  if (!valid_customer(req.customer, options_.max_customer_bytes)) {
    return invalid_argument("invalid_argument: customer must be 1.." +
                            std::to_string(options_.max_customer_bytes) +
                            " bytes of [A-Za-z0-9._@-]");
  }
  if (req.seats.empty()) return invalid_argument("invalid_argument: no seats requested");
  if (req.seats.size() > options_.max_seats_per_hold) {
    return invalid_argument("invalid_argument: at most " +
                            std::to_string(options_.max_seats_per_hold) + " seats per hold");
  }
  std::vector<SeatId> seats = req.seats;
  std::sort(seats.begin(), seats.end());
  for (size_t i = 0; i < seats.size(); ++i) {
    if (seats[i] <= 0) {
      return invalid_argument("invalid_argument: seat " + std::to_string(seats[i]) +
                              " is not a seat id");
    }
    if (i > 0 && seats[i] == seats[i - 1]) {
      return invalid_argument("invalid_argument: seat " + std::to_string(seats[i]) +
                              " is requested twice");
    }
  }
  const int64_t ttl = req.ttl_ms == 0 ? options_.hold_ttl_ms : req.ttl_ms;
  if (ttl < options_.min_hold_ttl_ms || ttl > options_.max_hold_ttl_ms) {
    return invalid_argument("invalid_argument: ttl_ms must be within [" +
                            std::to_string(options_.min_hold_ttl_ms) + ", " +
                            std::to_string(options_.max_hold_ttl_ms) + "]");
  }
  SD_RETURN_IF_ERROR(db_.event_exists(req.event));

  std::vector<SeatChange> changes;
  Result<Hold> held = Status(Code::kInternal, "internal: unset");
  {
    const size_t stripe = std::hash<std::string>{}(std::to_string(req.event) + "/" + req.customer) %
                          customer_mu_.size();
    std::lock_guard lock(customer_mu_[stripe]);
    int64_t active = 0;
    SD_RETURN_IF_ERROR(db_.read([&](Db& rdb) -> Status {
      auto q = rdb.cached(
          "SELECT COUNT(*) FROM holds WHERE event_id = ? AND customer = ? AND status = 'active' "
          "AND expires_ms > ?");
      if (!q) return q.status();
      SD_RETURN_IF_ERROR((*q)->bind_int64(1, req.event));
      SD_RETURN_IF_ERROR((*q)->bind_text(2, req.customer));
      SD_RETURN_IF_ERROR((*q)->bind_int64(3, now));
      auto row = (*q)->step();
      if (!row) return row.status();
      active = *row ? (*q)->column_int64(0) : 0;
      return Status::ok();
    }));
    if (active >= static_cast<int64_t>(options_.max_active_holds_per_customer)) {
      return resource_exhausted("too_many_holds: customer " + req.customer + " already has " +
                                std::to_string(active) + " active holds for event " +
                                std::to_string(req.event) + " (max " +
                                std::to_string(options_.max_active_holds_per_customer) + ")");
    }
    ClaimRequest claim;
    claim.hold_id = "h_" + ids_.next();
    claim.event = req.event;
    claim.customer = req.customer;
    claim.seats = std::move(seats);
    claim.now_ms = now;
    claim.expires_ms = now + ttl;
    held = strategy_.claim(claim, changes);
  }
  if (listener_ && !changes.empty()) listener_(req.event, changes);
  return held;
}

Result<Order> BookingService::pay(const PayRequest& req) {
  auto hold = db_.hold(req.hold_id);
  if (!hold) return hold.status();
  if (hold->customer != req.customer) return not_your("hold", hold->id);
  if (hold->status == HoldStatus::kExpired) return hold_expired(*hold);
  if (hold->status != HoldStatus::kActive) {
    return conflict("hold_not_active: hold " + hold->id + " is " +
                    std::string(hold_status_name(hold->status)));
  }
  if (now_() >= hold->expires_ms) return hold_expired(*hold);
  Status card = validate_card(req.card);
  if (!card) return with_code(card, "invalid_argument");

  auto charge = payments_.authorize(hold->id, hold->amount_cents, req.card);
  if (!charge) {
    const Status& s = charge.status();
    switch (s.code()) {
      case Code::kFailedPrecondition:
        return with_code(s, "card_declined");
      case Code::kInvalidArgument:
        return with_code(s, "invalid_argument");
      case Code::kConflict:
        return with_code(s, "hold_not_active");
      default:
        // Possibly ambiguous: an authorization may exist. A retried pay() finds it (the provider
        // returns the live authorization of this hold), else reconcile() voids it.
        return Status(Code::kUnavailable,
                      has_code(s.message()) ? s.message() : "payment_unavailable: " + s.message());
    }
  }

  std::vector<SeatChange> changes;
  ConfirmRequest confirm;
  confirm.hold_id = hold->id;
  confirm.order_id = "o_" + ids_.next();
  confirm.payment_id = charge->id;
  confirm.now_ms = now_();
  auto order = strategy_.confirm(confirm, changes);
  if (!order) {
    // Void the authorization unless a concurrent pay() of the same hold (which got the same live
    // authorization back from the provider) confirmed an order with it. That is only certain
    // when the confirm failed for good (the hold is over); after kUnavailable (a seat lock busy
    // or lost) another pay() may be confirming with it right now: leave the authorization to a
    // retried pay() (which reuses it) or to reconcile() (orphan_authorization_ms).
    bool void_now = order.status().code() != Code::kUnavailable;
    if (void_now) {
      auto owners = read_order_rows(db_, " WHERE payment_id = ?", charge->id);
      void_now = owners && owners->empty();
    }
    if (void_now) {
      Status v = payments_.void_authorization(charge->id);
      if (!v) {
        SD_LOG(kWarn) << "ticketing: void " << charge->id << " of hold " << hold->id << ": "
                      << v.to_string() << " (reconcile will retry)";
      }
    }
    const Status& s = order.status();
    if (s.code() == Code::kConflict && starts_with(s.message(), "hold_not_active")) {
      auto now_hold = db_.hold(hold->id);
      if (now_hold &&
          (now_hold->status == HoldStatus::kExpired ||
           (now_hold->status == HoldStatus::kActive && confirm.now_ms >= now_hold->expires_ms))) {
        return hold_expired(*now_hold);
      }
    }
    return s;
  }
  if (listener_ && !changes.empty()) listener_(order->event, changes);

  Status cap = payments_.capture(charge->id);
  if (cap) {
    Status mark = set_payment_state(db_, order->id, "authorized", "captured");
    if (!mark) SD_LOG(kWarn) << "ticketing: order " << order->id << ": " << mark.to_string();
  } else {
    // The order stands (the authorization guarantees the money); reconcile() captures later.
    SD_LOG(kWarn) << "ticketing: capture " << charge->id << " of order " << order->id << ": "
                  << cap.to_string() << " (reconcile will retry)";
  }
  return order;
}

Status BookingService::cancel_hold(const std::string& hold_id, const std::string& customer) {
  auto hold = db_.hold(hold_id);
  if (!hold) return hold.status();
  if (hold->customer != customer) return not_your("hold", hold_id);
  if (hold->status != HoldStatus::kActive) {
    return conflict("hold_not_active: hold " + hold_id + " is " +
                    std::string(hold_status_name(hold->status)));
  }
  std::vector<SeatChange> changes;
  Status s = strategy_.release(hold_id, HoldStatus::kCancelled, now_(), changes);
  if (listener_ && !changes.empty()) listener_(hold->event, changes);
  return s;
}

namespace {

// The last step of an order cancellation, once the money went back: payment_state refunded and
// the order's seats available again. Idempotent.
Status finish_cancellation(TicketDb& db, const OrderRow& o, std::vector<SeatChange>& changes) {
  std::vector<SeatChange> out;
  Status st = db.write([&](Db& w) {
    return storage::with_transaction(w, [&]() -> Status {
      out.clear();
      auto pay = w.cached(
          "UPDATE orders SET payment_state = 'refunded' WHERE id = ? AND status = 'cancelled'");
      if (!pay) return pay.status();
      SD_RETURN_IF_ERROR((*pay)->bind_text(1, o.id));
      SD_RETURN_IF_ERROR((*pay)->run());
      if (w.changes() != 1) {
        return internal_error("internal: order " + o.id + " is not cancelled");
      }
      auto seats = w.cached(
          "UPDATE event_seats SET state = 'available', order_id = NULL, hold_id = NULL, "
          "hold_expires_ms = NULL, version = version + 1 "
          "WHERE event_id = ? AND state = 'sold' AND order_id = ? RETURNING seat_id, version");
      if (!seats) return seats.status();
      SD_RETURN_IF_ERROR((*seats)->bind_int64(1, o.event));
      SD_RETURN_IF_ERROR((*seats)->bind_text(2, o.id));
      for (;;) {
        auto row = (*seats)->step();
        if (!row) return row.status();
        if (!*row) break;
        out.push_back(
            {(*seats)->column_int64(0), SeatState::kAvailable, (*seats)->column_int64(1)});
      }
      return Status::ok();
    });
  });
  if (!st) return st;
  changes.insert(changes.end(), out.begin(), out.end());
  return Status::ok();
}

}  // namespace

Result<Order> BookingService::cancel_order(const std::string& order_id,
                                           const std::string& customer) {
  auto order = db_.order(order_id);
  if (!order) return order.status();
  if (order->customer != customer) return not_your("order", order_id);
  auto rows = read_order_rows(db_, " WHERE id = ?", order_id);
  if (!rows) return rows.status();
  if (rows->empty()) return not_found("not_found: order " + order_id);
  OrderRow o = rows->front();
  if (o.confirmed) {
    // 1. The order stops being valid; its seats stay sold to it until the money is back.
    const int64_t now = now_();
    SD_RETURN_IF_ERROR(db_.write([&](Db& w) {
      return storage::with_transaction(w, [&]() -> Status {
        auto up = w.cached(
            "UPDATE orders SET status = 'cancelled', cancelled_ms = ? WHERE id = ? AND "
            "status = 'confirmed'");
        if (!up) return up.status();
        SD_RETURN_IF_ERROR((*up)->bind_int64(1, now));
        SD_RETURN_IF_ERROR((*up)->bind_text(2, order_id));
        SD_RETURN_IF_ERROR((*up)->run());
        auto tk = w.cached("UPDATE tickets SET valid = 0 WHERE order_id = ?");
        if (!tk) return tk.status();
        SD_RETURN_IF_ERROR((*tk)->bind_text(1, order_id));
        return (*tk)->run();
      });
    }));
  }
  if (o.payment_state != "refunded") {
    // 2. Money back (a retried cancel_order or reconcile() repeats this until it succeeds).
    Status money = return_money(payments_, o);
    if (!money) {
      return Status(Code::kUnavailable,
                    "payment_unavailable: order " + order_id +
                        " is cancelled but its refund failed (" + money.message() +
                        "); the refund is retried and the seats go back on sale after it");
    }
    // 3. Seats back on sale.
    std::vector<SeatChange> changes;
    SD_RETURN_IF_ERROR(finish_cancellation(db_, o, changes));
    if (listener_ && !changes.empty()) listener_(o.event, changes);
  }
  return db_.order(order_id);
}

Result<int> BookingService::expire_due() {
  const int64_t now = now_();
  std::vector<std::pair<std::string, EventId>> due;
  SD_RETURN_IF_ERROR(db_.read([&](Db& rdb) -> Status {
    auto q = rdb.cached(
        "SELECT id, event_id FROM holds WHERE status = 'active' AND expires_ms <= ? "
        "ORDER BY expires_ms LIMIT 1000");
    if (!q) return q.status();
    SD_RETURN_IF_ERROR((*q)->bind_int64(1, now));
    for (;;) {
      auto row = (*q)->step();
      if (!row) return row.status();
      if (!*row) return Status::ok();
      due.emplace_back((*q)->column_text(0), (*q)->column_int64(1));
    }
  }));
  // One bulk release per event and chunk: one writer transaction (and one round of seat locks)
  // per chunk instead of one per hold, so the sweep keeps up under load.
  constexpr size_t kChunk = 100;
  std::map<EventId, std::vector<std::string>> by_event;
  for (auto& [id, event] : due) by_event[event].push_back(std::move(id));
  int released = 0;
  Status first_error;
  for (const auto& [event, ids] : by_event) {
    for (size_t i = 0; i < ids.size(); i += kChunk) {
      std::vector<std::string> chunk(
          ids.begin() + static_cast<std::ptrdiff_t>(i),
          ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), i + kChunk)));
      std::vector<SeatChange> changes;
      auto r = strategy_.release_all(chunk, HoldStatus::kExpired, now, changes);
      if (listener_ && !changes.empty()) listener_(event, changes);
      if (r) {
        released += static_cast<int>(r->size());
      } else if (first_error.is_ok()) {
        first_error = r.status();  // retried by the next sweep
      }
    }
  }
  if (released == 0 && !first_error.is_ok()) return first_error;
  return released;
}

Result<ReconcileReport> BookingService::reconcile() {
  ReconcileReport report;
  // The ledger first, then the orders: an order committed in between is seen with its charge
  // (read the other way round, its fresh authorization would look like an orphan).
  auto charges = payments_.charges();
  if (!charges) {
    return Status(Code::kUnavailable, "payment_unavailable: " + charges.status().message());
  }
  auto orders = read_order_rows(db_, "", "");
  if (!orders) return orders.status();
  std::map<std::string, OrderRow> by_payment;
  for (auto& o : *orders) by_payment.emplace(o.payment_id, o);
  const int64_t now = now_();
  Status first_error;
  auto note = [&](const Status& s, const std::string& what) {
    if (s) return true;
    SD_LOG(kWarn) << "ticketing: reconcile: " << what << ": " << s.to_string();
    if (first_error.is_ok()) first_error = s;
    return false;
  };
  for (const Charge& c : *charges) {
    auto it = by_payment.find(c.id);
    const OrderRow* o = it == by_payment.end() ? nullptr : &it->second;
    std::vector<SeatChange> changes;
    switch (c.state) {
      case ChargeState::kAuthorized:
        if (o && o->confirmed) {
          if (note(payments_.capture(c.id), "capture " + c.id)) {
            ++report.captured;
            note(set_payment_state(db_, o->id, "authorized", "captured"), "order " + o->id);
          }
        } else if (o) {  // cancelled order, money not returned yet
          if (note(payments_.void_authorization(c.id), "void " + c.id)) {
            ++report.voided;
            note(finish_cancellation(db_, *o, changes), "order " + o->id);
          }
        } else if (now - c.created_ms >= options_.orphan_authorization_ms) {
          if (note(payments_.void_authorization(c.id), "void " + c.id)) ++report.voided;
        }
        break;
      case ChargeState::kCaptured:
        if (o && o->confirmed) {
          if (o->payment_state == "authorized") {
            note(set_payment_state(db_, o->id, "authorized", "captured"), "order " + o->id);
          }
        } else {
          if (note(payments_.refund(c.id), "refund " + c.id)) {
            ++report.refunded;
            if (o) note(finish_cancellation(db_, *o, changes), "order " + o->id);
          }
        }
        break;
      case ChargeState::kVoided:
      case ChargeState::kRefunded:
        if (o && !o->confirmed && o->payment_state != "refunded") {
          note(finish_cancellation(db_, *o, changes), "order " + o->id);
        } else if (o && o->confirmed) {
          SD_LOG(kError) << "ticketing: reconcile: confirmed order " << o->id << " has charge "
                         << c.id << " " << charge_state_name(c.state);
        }
        break;
    }
    if (listener_ && !changes.empty() && o) listener_(o->event, changes);
  }
  if (!first_error.is_ok() && report.captured + report.voided + report.refunded == 0) {
    return first_error;
  }
  return report;
}

}  // namespace sd::ticketing
