#include "schema.hpp"

namespace sd::ticketing::detail {

const std::vector<std::string>& schema_migrations() {
  static const std::vector<std::string> kSteps = {
      // v1: catalog, per-event seat states, holds, orders, tickets, idempotency keys.
      R"sql(
CREATE TABLE venues(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE seats(id INTEGER PRIMARY KEY, venue_id INTEGER NOT NULL REFERENCES venues(id),
  section TEXT NOT NULL, row_label TEXT NOT NULL, number INTEGER NOT NULL, x REAL NOT NULL,
  y REAL NOT NULL, tier TEXT NOT NULL, price_cents INTEGER NOT NULL CHECK(price_cents >= 0),
  UNIQUE(venue_id, section, row_label, number));
CREATE INDEX seats_by_venue ON seats(venue_id);
CREATE TABLE events(id INTEGER PRIMARY KEY, venue_id INTEGER NOT NULL REFERENCES venues(id),
  name TEXT NOT NULL, starts_at_ms INTEGER NOT NULL, waiting_room INTEGER NOT NULL DEFAULT 0);
CREATE TABLE event_seats(event_id INTEGER NOT NULL REFERENCES events(id),
  seat_id INTEGER NOT NULL REFERENCES seats(id),
  state TEXT NOT NULL CHECK(state IN ('available','held','sold')),
  hold_id TEXT, hold_expires_ms INTEGER, order_id TEXT,
  fence INTEGER NOT NULL DEFAULT 0,
  version INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(event_id, seat_id),
  CHECK((state = 'available' AND hold_id IS NULL AND order_id IS NULL) OR
        (state = 'held' AND hold_id IS NOT NULL AND hold_expires_ms IS NOT NULL
         AND order_id IS NULL) OR
        (state = 'sold' AND order_id IS NOT NULL))) WITHOUT ROWID;
-- Release / expiry / order cancellation find an event's rows by hold or order.
CREATE INDEX event_seats_by_hold ON event_seats(hold_id) WHERE hold_id IS NOT NULL;
CREATE INDEX event_seats_by_order ON event_seats(order_id) WHERE order_id IS NOT NULL;
CREATE TABLE holds(id TEXT PRIMARY KEY, event_id INTEGER NOT NULL REFERENCES events(id),
  customer TEXT NOT NULL, amount_cents INTEGER NOT NULL, created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  status TEXT NOT NULL CHECK(status IN ('active','paid','cancelled','expired')), order_id TEXT);
CREATE INDEX holds_by_status_expiry ON holds(status, expires_ms);
CREATE INDEX holds_by_customer ON holds(event_id, customer, status);
CREATE TABLE hold_seats(hold_id TEXT NOT NULL REFERENCES holds(id), seat_id INTEGER NOT NULL,
  PRIMARY KEY(hold_id, seat_id)) WITHOUT ROWID;
CREATE TABLE orders(id TEXT PRIMARY KEY, hold_id TEXT NOT NULL UNIQUE REFERENCES holds(id),
  event_id INTEGER NOT NULL, customer TEXT NOT NULL, amount_cents INTEGER NOT NULL,
  status TEXT NOT NULL CHECK(status IN ('confirmed','cancelled')),
  payment_id TEXT NOT NULL UNIQUE,
  payment_state TEXT NOT NULL CHECK(payment_state IN ('authorized','captured','refunded')),
  created_ms INTEGER NOT NULL, cancelled_ms INTEGER);
CREATE INDEX orders_by_event ON orders(event_id);
CREATE TABLE tickets(order_id TEXT NOT NULL REFERENCES orders(id), event_id INTEGER NOT NULL,
  seat_id INTEGER NOT NULL, valid INTEGER NOT NULL DEFAULT 1, PRIMARY KEY(order_id, seat_id));
-- The last line of defence: one valid ticket per seat per event, whatever the strategy did.
CREATE UNIQUE INDEX tickets_one_valid_per_seat ON tickets(event_id, seat_id) WHERE valid = 1;
CREATE TABLE idempotency_keys(customer TEXT NOT NULL, key TEXT NOT NULL, request TEXT NOT NULL,
  state TEXT NOT NULL CHECK(state IN ('in_progress','done')), status INTEGER, body TEXT,
  created_ms INTEGER NOT NULL, PRIMARY KEY(customer, key)) WITHOUT ROWID;
CREATE INDEX idempotency_by_age ON idempotency_keys(created_ms);
)sql",
  };
  return kSteps;
}

}  // namespace sd::ticketing::detail
