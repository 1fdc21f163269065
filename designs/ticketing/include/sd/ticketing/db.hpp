#pragma once
// TicketDb: the ticketing database (one SQLite file, WAL): schema migrations, the demo seed, the
// catalog reads, and serialized access for writers. Everything durable about seats, holds and
// orders lives here; the UNIQUE index on valid tickets per (event, seat) is the last line of
// defence against selling a seat twice, whatever strategy guards the writes.
//
// Threading: thread-safe. Writes go through one connection under a mutex (SQLite has one writer
// anyway); reads use a small pool of read-only connections, so reads never wait for a writer.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sd/base/status.hpp"
#include "sd/storage/sqlite.hpp"
#include "sd/ticketing/model.hpp"

namespace sd::ticketing {

struct DbConfig {
  std::string path;  // the SQLite file (parents created); required, ":memory:" is not supported
  int read_connections = 4;
  // Durable commits (synchronous=FULL) for confirmed orders: a kill -9 never loses one either way
  // (WAL); FULL also survives power loss.
  bool durable_orders = true;
};

// A venue generated from a compact description: sections of rows x seats, each section one tier.
struct SectionSpec {
  std::string name;
  std::string tier;
  int64_t price_cents = 0;
  int rows = 0;
  int seats_per_row = 0;
};
struct VenueSpec {
  std::string name;
  std::vector<SectionSpec> sections;
};
// The demo venue ("Sd Arena": Floor 10x20, Lower 8x24 (two wings), Balcony 6x30 — ~500 seats) and
// its events, one of them a flash sale behind the waiting room.
VenueSpec demo_venue();

class TicketDb {
 public:
  // Opens (creating) the database and migrates it to the current schema. Seeding is separate.
  static Result<std::unique_ptr<TicketDb>> open(const DbConfig& config);
  ~TicketDb();
  TicketDb(const TicketDb&) = delete;
  TicketDb& operator=(const TicketDb&) = delete;

  // Seeds the demo venue and its events if the database has no venue yet (idempotent).
  Status seed_demo(int64_t now_ms);
  // Adds a venue with its generated seat map; returns its id.
  Result<int64_t> add_venue(const VenueSpec& spec);
  // Adds an event at a venue; all its seats start available. Returns its id.
  Result<EventId> add_event(int64_t venue_id, const std::string& name, int64_t starts_at_ms,
                            bool waiting_room);

  // Catalog reads (read connections). Seat states account for expiry: a hold past now_ms reads as
  // available.
  Result<std::vector<Event>> events(int64_t now_ms);
  Result<Event> event(EventId id, int64_t now_ms);  // kNotFound; counts the event's seats
  Status event_exists(EventId id);                  // kNotFound; cheap (the booking hot path)
  Result<std::vector<PriceTier>> tiers(EventId id);
  Result<std::vector<Seat>> seats(EventId id, int64_t now_ms);
  Result<Hold> hold(const std::string& id);       // kNotFound
  Result<Order> order(const std::string& id);     // kNotFound
  Result<std::vector<Order>> orders(EventId id);  // every order of an event (audits, tests)

  // Runs fn on the writer connection under the writer mutex (fn opens its own transaction).
  Status write(const std::function<Status(storage::Db&)>& fn);
  // Runs fn on a read connection (not inside a write transaction).
  Status read(const std::function<Status(storage::Db&)>& fn);

  const DbConfig& config() const { return config_; }
  static int schema_version();  // the number of migration steps

 private:
  struct ReadConn;
  TicketDb(DbConfig config, storage::Db writer, std::vector<std::unique_ptr<ReadConn>> readers);
  DbConfig config_;
  std::mutex write_mu_;
  storage::Db writer_;                              // guarded by write_mu_
  std::vector<std::unique_ptr<ReadConn>> readers_;  // each with its own mutex
};

}  // namespace sd::ticketing
