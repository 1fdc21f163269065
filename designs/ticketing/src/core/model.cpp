#include "sd/ticketing/model.hpp"

#include "sd/base/clock.hpp"

namespace sd::ticketing {

NowMs system_now_ms() {
  return [] { return static_cast<int64_t>(wall_ms()); };
}

std::string_view seat_state_name(SeatState s) {
  switch (s) {
    case SeatState::kAvailable:
      return "available";
    case SeatState::kHeld:
      return "held";
    case SeatState::kSold:
      return "sold";
  }
  return "available";
}

std::string_view hold_status_name(HoldStatus s) {
  switch (s) {
    case HoldStatus::kActive:
      return "active";
    case HoldStatus::kPaid:
      return "paid";
    case HoldStatus::kCancelled:
      return "cancelled";
    case HoldStatus::kExpired:
      return "expired";
  }
  return "active";
}

std::string_view order_status_name(OrderStatus s) {
  return s == OrderStatus::kConfirmed ? "confirmed" : "cancelled";
}

}  // namespace sd::ticketing
