#include "rows.hpp"

namespace sd::ticketing::detail {

using storage::Db;
using storage::Statement;

SeatState parse_seat_state(std::string_view s) {
  if (s == "held") return SeatState::kHeld;
  if (s == "sold") return SeatState::kSold;
  return SeatState::kAvailable;
}

HoldStatus parse_hold_status(std::string_view s) {
  if (s == "paid") return HoldStatus::kPaid;
  if (s == "cancelled") return HoldStatus::kCancelled;
  if (s == "expired") return HoldStatus::kExpired;
  return HoldStatus::kActive;
}

Result<Hold> read_hold(Db& db, const std::string& hold_id) {
  Hold h;
  {
    auto q = db.cached(
        "SELECT event_id, customer, amount_cents, created_ms, expires_ms, status, order_id "
        "FROM holds WHERE id = ?");
    if (!q) return q.status();
    SD_RETURN_IF_ERROR((*q)->bind_text(1, hold_id));
    auto row = (*q)->step();
    if (!row) return row.status();
    if (!*row) return not_found("not_found: hold " + hold_id);
    const Statement& r = **q;
    h.id = hold_id;
    h.event = r.column_int64(0);
    h.customer = r.column_text(1);
    h.amount_cents = r.column_int64(2);
    h.created_ms = r.column_int64(3);
    h.expires_ms = r.column_int64(4);
    h.status = parse_hold_status(r.column_text_view(5));
    if (!r.column_is_null(6)) h.order_id = r.column_text(6);
  }
  auto q = db.cached("SELECT seat_id FROM hold_seats WHERE hold_id = ? ORDER BY seat_id");
  if (!q) return q.status();
  SD_RETURN_IF_ERROR((*q)->bind_text(1, hold_id));
  for (;;) {
    auto row = (*q)->step();
    if (!row) return row.status();
    if (!*row) break;
    h.seats.push_back((*q)->column_int64(0));
  }
  return h;
}

}  // namespace sd::ticketing::detail
