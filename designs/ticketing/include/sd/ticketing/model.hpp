#pragma once
// Vocabulary of the ticketing design: venues and their seat maps, events, per-event seat states,
// holds and orders. Plain values; no I/O.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sd::ticketing {

using EventId = int64_t;
using SeatId = int64_t;  // a seat of a venue; the same seat id appears in every event at that venue

// Wall-clock milliseconds since the Unix epoch. Holds and orders persist, so their times are wall
// time (a steady clock does not survive a restart); injected so tests drive it.
using NowMs = std::function<int64_t()>;
NowMs system_now_ms();

enum class SeatState { kAvailable, kHeld, kSold };
std::string_view seat_state_name(SeatState s);  // "available" | "held" | "sold"

enum class HoldStatus { kActive, kPaid, kCancelled, kExpired };
std::string_view hold_status_name(HoldStatus s);  // "active" | "paid" | "cancelled" | "expired"

enum class OrderStatus { kConfirmed, kCancelled };
std::string_view order_status_name(OrderStatus s);  // "confirmed" | "cancelled"

struct PriceTier {
  std::string name;  // "floor", "balcony", ...
  int64_t price_cents = 0;
};

struct Venue {
  int64_t id = 0;
  std::string name;
  int64_t seat_count = 0;
};

struct Event {
  EventId id = 0;
  int64_t venue_id = 0;
  std::string name;
  std::string venue_name;
  int64_t starts_at_ms = 0;
  bool waiting_room = false;  // shoppers must be admitted through the waiting room to hold
  int64_t seat_count = 0;
  int64_t available = 0;  // seats neither held (unexpired) nor sold
};

// One seat of one event, as the seat map shows it.
struct Seat {
  SeatId id = 0;
  std::string section;  // "Floor", "Balcony"
  std::string row;      // "A"
  int number = 0;       // 1-based within the row
  std::string label;    // "Floor A-12"
  double x = 0, y = 0;  // position on the map (SVG user units)
  std::string tier;
  int64_t price_cents = 0;
  SeatState state = SeatState::kAvailable;  // an expired hold reads as available
  int64_t version = 0;  // bumped on every state change of this seat in this event
};

// A change pushed to live seat maps (after the write committed).
struct SeatChange {
  SeatId seat = 0;
  SeatState state = SeatState::kAvailable;
  int64_t version = 0;
};

struct Hold {
  std::string id;
  EventId event = 0;
  std::string customer;
  std::vector<SeatId> seats;  // sorted
  int64_t amount_cents = 0;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;
  HoldStatus status = HoldStatus::kActive;
  std::string order_id;  // once paid
};

struct Order {
  std::string id;
  std::string hold_id;
  EventId event = 0;
  std::string customer;
  std::vector<SeatId> seats;
  int64_t amount_cents = 0;
  OrderStatus status = OrderStatus::kConfirmed;
  std::string payment_id;  // the provider's authorization/charge id
  int64_t created_ms = 0;
};

}  // namespace sd::ticketing
