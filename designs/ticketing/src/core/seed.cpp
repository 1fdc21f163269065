// The demo venue and events that `ticketd` seeds into an empty database.
#include "sd/ticketing/db.hpp"

namespace sd::ticketing {

VenueSpec demo_venue() {
  return {"Sd Arena",
          {
              {"Floor", "floor", 12'000, 10, 20},
              {"Lower", "lower", 8'000, 8, 24},
              {"Balcony", "balcony", 4'500, 5, 24},
          }};
}

Status TicketDb::seed_demo(int64_t now_ms) {
  int64_t venues = 0;
  SD_RETURN_IF_ERROR(read([&](storage::Db& db) -> Status {
    auto n = db.query_int64("SELECT COUNT(*) FROM venues");
    if (!n) return n.status();
    venues = *n;
    return Status::ok();
  }));
  if (venues > 0) return Status::ok();
  auto venue = add_venue(demo_venue());
  if (!venue) return venue.status();
  constexpr int64_t kDay = 24LL * 3600 * 1000;
  auto first = add_event(*venue, "Opening Night", now_ms + 30 * kDay, false);
  if (!first) return first.status();
  auto flash = add_event(*venue, "The Midnight Tour (flash sale)", now_ms + 45 * kDay, true);
  if (!flash) return flash.status();
  return Status::ok();
}

}  // namespace sd::ticketing
