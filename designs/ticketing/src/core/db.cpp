#include "sd/ticketing/db.hpp"

#include <atomic>
#include <utility>

#include "rows.hpp"
#include "schema.hpp"

namespace sd::ticketing {

using storage::Db;
using storage::Statement;

struct TicketDb::ReadConn {
  std::mutex mu;
  Db db;  // guarded by mu
  explicit ReadConn(Db d) : db(std::move(d)) {}
};

namespace {

// A seat row counts as available when free, or held by a hold whose expiry has passed.
constexpr const char* kAvailableSql =
    "(es.state = 'available' OR (es.state = 'held' AND es.hold_expires_ms <= ?))";

Event read_event(const Statement& st) {
  Event e;
  e.id = st.column_int64(0);
  e.venue_id = st.column_int64(1);
  e.name = st.column_text(2);
  e.venue_name = st.column_text(3);
  e.starts_at_ms = st.column_int64(4);
  e.waiting_room = st.column_int64(5) != 0;
  e.seat_count = st.column_int64(6);
  e.available = st.column_int64(7);
  return e;
}

std::string events_sql(bool one) {
  std::string sql =
      "SELECT e.id, e.venue_id, e.name, v.name, e.starts_at_ms, e.waiting_room, "
      "(SELECT COUNT(*) FROM event_seats es WHERE es.event_id = e.id), "
      "(SELECT COUNT(*) FROM event_seats es WHERE es.event_id = e.id AND ";
  sql += kAvailableSql;
  sql += ") FROM events e JOIN venues v ON v.id = e.venue_id";
  sql += one ? " WHERE e.id = ?" : " ORDER BY e.starts_at_ms, e.id";
  return sql;
}

// kNotFound "not_found: event N" unless the event exists.
Status require_event(Db& db, EventId id) {
  auto q = db.cached("SELECT 1 FROM events WHERE id = ?");
  if (!q) return q.status();
  SD_RETURN_IF_ERROR((*q)->bind_int64(1, id));
  auto row = (*q)->step();
  if (!row) return row.status();
  if (!*row) return not_found("not_found: event " + std::to_string(id));
  return Status::ok();
}

Result<std::vector<SeatId>> ids_of(Db& db, const char* sql, const std::string& key) {
  auto st = db.cached(sql);
  if (!st) return st.status();
  SD_RETURN_IF_ERROR((*st)->bind_text(1, key));
  std::vector<SeatId> out;
  for (;;) {
    auto row = (*st)->step();
    if (!row) return row.status();
    if (!*row) break;
    out.push_back((*st)->column_int64(0));
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<TicketDb>> TicketDb::open(const DbConfig& config) {
  if (config.path.empty() || config.path == ":memory:") {
    return invalid_argument("ticketing db: a file path is required");
  }
  storage::DbOptions wopts;
  auto writer = Db::open(config.path, wopts);
  if (!writer) return writer.status();
  SD_RETURN_IF_ERROR(writer->exec("PRAGMA foreign_keys = ON"));
  SD_RETURN_IF_ERROR(storage::migrate(*writer, detail::schema_migrations()));
  std::vector<std::unique_ptr<ReadConn>> readers;
  storage::DbOptions ropts;
  ropts.create = false;
  ropts.read_only = true;
  ropts.wal = false;  // the file is in WAL mode already (persistent); readers cannot set it
  for (int i = 0; i < std::max(1, config.read_connections); ++i) {
    auto r = Db::open(config.path, ropts);
    if (!r) return r.status();
    readers.push_back(std::make_unique<ReadConn>(std::move(*r)));
  }
  return std::unique_ptr<TicketDb>(new TicketDb(config, std::move(*writer), std::move(readers)));
}

TicketDb::TicketDb(DbConfig config, Db writer, std::vector<std::unique_ptr<ReadConn>> readers)
    : config_(std::move(config)), writer_(std::move(writer)), readers_(std::move(readers)) {}

TicketDb::~TicketDb() = default;

int TicketDb::schema_version() {
  return static_cast<int>(detail::schema_migrations().size());
}

Status TicketDb::write(const std::function<Status(Db&)>& fn) {
  std::lock_guard lock(write_mu_);
  return fn(writer_);
}

Status TicketDb::read(const std::function<Status(Db&)>& fn) {
  // Any free reader; if all are busy, queue on one picked round-robin.
  for (auto& r : readers_) {
    std::unique_lock lock(r->mu, std::try_to_lock);
    if (lock.owns_lock()) return fn(r->db);
  }
  static std::atomic<size_t> next{0};
  auto& r = *readers_[next.fetch_add(1, std::memory_order_relaxed) % readers_.size()];
  std::lock_guard lock(r.mu);
  return fn(r.db);
}

Result<int64_t> TicketDb::add_venue(const VenueSpec& spec) {
  if (spec.name.empty() || spec.sections.empty()) {
    return invalid_argument("invalid_venue: a venue needs a name and sections");
  }
  int64_t venue_id = 0;
  Status st = write([&](Db& db) {
    return storage::with_transaction(db, [&]() -> Status {
      auto ins = db.cached("INSERT INTO venues(name) VALUES (?)");
      if (!ins) return ins.status();
      SD_RETURN_IF_ERROR((*ins)->bind_text(1, spec.name));
      SD_RETURN_IF_ERROR((*ins)->run());
      venue_id = db.last_insert_rowid();
      auto seat = db.cached(
          "INSERT INTO seats(venue_id, section, row_label, number, x, y, tier, price_cents) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
      if (!seat) return seat.status();
      // Sections stacked below the stage, each centred; rows lettered A, B, ... per section.
      constexpr double kSeatGap = 22, kRowGap = 22, kSectionGap = 44, kWidth = 1000;
      double y = 80;
      for (const auto& sec : spec.sections) {
        if (sec.rows <= 0 || sec.seats_per_row <= 0 || sec.rows > 26 * 26 ||
            sec.seats_per_row > 1000 || sec.price_cents < 0) {
          return invalid_argument("invalid_venue: section " + sec.name + " has a bad shape");
        }
        const double row_width = (sec.seats_per_row - 1) * kSeatGap;
        const double x0 = (kWidth - row_width) / 2;
        for (int r = 0; r < sec.rows; ++r) {
          std::string row_label;
          if (r >= 26) row_label += static_cast<char>('A' + r / 26 - 1);
          row_label += static_cast<char>('A' + r % 26);
          for (int n = 1; n <= sec.seats_per_row; ++n) {
            SD_RETURN_IF_ERROR((*seat)->bind_int64(1, venue_id));
            SD_RETURN_IF_ERROR((*seat)->bind_text(2, sec.name));
            SD_RETURN_IF_ERROR((*seat)->bind_text(3, row_label));
            SD_RETURN_IF_ERROR((*seat)->bind_int64(4, n));
            SD_RETURN_IF_ERROR((*seat)->bind_double(5, x0 + (n - 1) * kSeatGap));
            SD_RETURN_IF_ERROR((*seat)->bind_double(6, y));
            SD_RETURN_IF_ERROR((*seat)->bind_text(7, sec.tier));
            SD_RETURN_IF_ERROR((*seat)->bind_int64(8, sec.price_cents));
            SD_RETURN_IF_ERROR((*seat)->run());
          }
          y += kRowGap;
        }
        y += kSectionGap;
      }
      return Status::ok();
    });
  });
  if (!st) return st;
  return venue_id;
}

Result<EventId> TicketDb::add_event(int64_t venue_id, const std::string& name, int64_t starts_at_ms,
                                    bool waiting_room) {
  if (name.empty()) return invalid_argument("invalid_event: an event needs a name");
  EventId id = 0;
  Status st = write([&](Db& db) {
    return storage::with_transaction(db, [&]() -> Status {
      auto venue = db.cached("SELECT 1 FROM venues WHERE id = ?");
      if (!venue) return venue.status();
      SD_RETURN_IF_ERROR((*venue)->bind_int64(1, venue_id));
      auto found = (*venue)->step();
      if (!found) return found.status();
      if (!*found) return not_found("not_found: venue " + std::to_string(venue_id));
      auto ins = db.cached(
          "INSERT INTO events(venue_id, name, starts_at_ms, waiting_room) VALUES (?, ?, ?, ?)");
      if (!ins) return ins.status();
      SD_RETURN_IF_ERROR((*ins)->bind_int64(1, venue_id));
      SD_RETURN_IF_ERROR((*ins)->bind_text(2, name));
      SD_RETURN_IF_ERROR((*ins)->bind_int64(3, starts_at_ms));
      SD_RETURN_IF_ERROR((*ins)->bind_int64(4, waiting_room ? 1 : 0));
      SD_RETURN_IF_ERROR((*ins)->run());
      id = db.last_insert_rowid();
      auto seats = db.cached(
          "INSERT INTO event_seats(event_id, seat_id, state) "
          "SELECT ?, id, 'available' FROM seats WHERE venue_id = ?");
      if (!seats) return seats.status();
      SD_RETURN_IF_ERROR((*seats)->bind_int64(1, id));
      SD_RETURN_IF_ERROR((*seats)->bind_int64(2, venue_id));
      return (*seats)->run();
    });
  });
  if (!st) return st;
  return id;
}

Result<std::vector<Event>> TicketDb::events(int64_t now_ms) {
  std::vector<Event> out;
  Status st = read([&](Db& db) -> Status {
    auto q = db.cached(events_sql(false));
    if (!q) return q.status();
    SD_RETURN_IF_ERROR((*q)->bind_int64(1, now_ms));
    for (;;) {
      auto row = (*q)->step();
      if (!row) return row.status();
      if (!*row) return Status::ok();
      out.push_back(read_event(**q));
    }
  });
  if (!st) return st;
  return out;
}

Result<Event> TicketDb::event(EventId id, int64_t now_ms) {
  Event e;
  Status st = read([&](Db& db) -> Status {
    auto q = db.cached(events_sql(true));
    if (!q) return q.status();
    SD_RETURN_IF_ERROR((*q)->bind_int64(1, now_ms));
    SD_RETURN_IF_ERROR((*q)->bind_int64(2, id));
    auto row = (*q)->step();
    if (!row) return row.status();
    if (!*row) return not_found("not_found: event " + std::to_string(id));
    e = read_event(**q);
    return Status::ok();
  });
  if (!st) return st;
  return e;
}

Status TicketDb::event_exists(EventId id) {
  return read([&](Db& db) { return require_event(db, id); });
}

Result<std::vector<PriceTier>> TicketDb::tiers(EventId id) {
  std::vector<PriceTier> out;
  Status st = read([&](Db& db) -> Status {
    auto q = db.cached(
        "SELECT s.tier, MIN(s.price_cents) FROM events e JOIN seats s ON s.venue_id = e.venue_id "
        "WHERE e.id = ? GROUP BY s.tier ORDER BY MIN(s.price_cents) DESC, s.tier");
    if (!q) return q.status();
    SD_RETURN_IF_ERROR((*q)->bind_int64(1, id));
    for (;;) {
      auto row = (*q)->step();
      if (!row) return row.status();
      if (!*row) return Status::ok();
      out.push_back({(*q)->column_text(0), (*q)->column_int64(1)});
    }
  });
  if (!st) return st;
  return out;
}

Result<std::vector<Seat>> TicketDb::seats(EventId id, int64_t now_ms) {
  std::vector<Seat> out;
  Status st = read([&](Db& db) -> Status {
    SD_RETURN_IF_ERROR(require_event(db, id));
    auto q = db.cached(
        "SELECT s.id, s.section, s.row_label, s.number, s.x, s.y, s.tier, s.price_cents, "
        "es.state, es.hold_expires_ms, es.version FROM event_seats es "
        "JOIN seats s ON s.id = es.seat_id WHERE es.event_id = ? ORDER BY s.id");
    if (!q) return q.status();
    SD_RETURN_IF_ERROR((*q)->bind_int64(1, id));
    for (;;) {
      auto row = (*q)->step();
      if (!row) return row.status();
      if (!*row) return Status::ok();
      const Statement& r = **q;
      Seat s;
      s.id = r.column_int64(0);
      s.section = r.column_text(1);
      s.row = r.column_text(2);
      s.number = static_cast<int>(r.column_int64(3));
      s.label = s.section + " " + s.row + "-" + std::to_string(s.number);
      s.x = r.column_double(4);
      s.y = r.column_double(5);
      s.tier = r.column_text(6);
      s.price_cents = r.column_int64(7);
      s.state = detail::parse_seat_state(r.column_text_view(8));
      if (s.state == SeatState::kHeld && !r.column_is_null(9) && r.column_int64(9) <= now_ms) {
        s.state = SeatState::kAvailable;  // expired, not yet swept
      }
      s.version = r.column_int64(10);
      out.push_back(std::move(s));
    }
  });
  if (!st) return st;
  return out;
}

Result<Hold> TicketDb::hold(const std::string& id) {
  std::optional<Hold> h;
  Status st = read([&](Db& db) -> Status {
    auto r = detail::read_hold(db, id);
    if (!r) return r.status();
    h = std::move(*r);
    return Status::ok();
  });
  if (!st) return st;
  return std::move(*h);
}

namespace {

constexpr const char* kOrderColumns =
    "SELECT id, hold_id, event_id, customer, amount_cents, status, payment_id, created_ms "
    "FROM orders ";

Result<Order> read_order(Db& db, const Statement& r) {
  Order o;
  o.id = r.column_text(0);
  o.hold_id = r.column_text(1);
  o.event = r.column_int64(2);
  o.customer = r.column_text(3);
  o.amount_cents = r.column_int64(4);
  o.status =
      r.column_text_view(5) == "cancelled" ? OrderStatus::kCancelled : OrderStatus::kConfirmed;
  o.payment_id = r.column_text(6);
  o.created_ms = r.column_int64(7);
  auto seats = ids_of(db, "SELECT seat_id FROM tickets WHERE order_id = ? ORDER BY seat_id", o.id);
  if (!seats) return seats.status();
  o.seats = std::move(*seats);
  return o;
}

}  // namespace

Result<Order> TicketDb::order(const std::string& id) {
  std::optional<Order> o;
  Status st = read([&](Db& db) -> Status {
    auto q = db.cached(std::string(kOrderColumns) + "WHERE id = ?");
    if (!q) return q.status();
    SD_RETURN_IF_ERROR((*q)->bind_text(1, id));
    auto row = (*q)->step();
    if (!row) return row.status();
    if (!*row) return not_found("not_found: order " + id);
    auto r = read_order(db, **q);
    if (!r) return r.status();
    o = std::move(*r);
    return Status::ok();
  });
  if (!st) return st;
  return std::move(*o);
}

Result<std::vector<Order>> TicketDb::orders(EventId id) {
  std::vector<Order> out;
  Status st = read([&](Db& db) -> Status {
    auto q = db.prepare(std::string(kOrderColumns) + "WHERE event_id = ? ORDER BY created_ms, id");
    if (!q) return q.status();
    SD_RETURN_IF_ERROR(q->bind_int64(1, id));
    for (;;) {
      auto row = q->step();
      if (!row) return row.status();
      if (!*row) return Status::ok();
      auto o = read_order(db, *q);
      if (!o) return o.status();
      out.push_back(std::move(*o));
    }
  });
  if (!st) return st;
  return out;
}

}  // namespace sd::ticketing
