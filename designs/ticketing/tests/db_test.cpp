#include <catch2/catch.hpp>

#include <set>

#include "sd/testing/testing.hpp"
#include "sd/ticketing/db.hpp"

using namespace sd::ticketing;

namespace {

std::unique_ptr<TicketDb> open_db(const sd::testing::TempDir& dir) {
  auto db = TicketDb::open({.path = dir.file("t.db")});
  REQUIRE(db);
  return std::move(*db);
}

}  // namespace

TEST_CASE("db: migrates, seeds the demo venue once, and reopens", "[unit][db]") {
  sd::testing::TempDir dir;
  {
    auto db = open_db(dir);
    REQUIRE(db->seed_demo(1'000));
    REQUIRE(db->seed_demo(2'000));  // idempotent
    auto events = db->events(1'000);
    REQUIRE(events);
    REQUIRE(events->size() == 2);
    CHECK((*events)[0].name == "Opening Night");
    CHECK_FALSE((*events)[0].waiting_room);
    CHECK((*events)[1].waiting_room);
    int64_t expected = 0;
    for (const auto& s : demo_venue().sections) expected += s.rows * s.seats_per_row;
    CHECK((*events)[0].seat_count == expected);
    CHECK((*events)[0].available == expected);
    CHECK((*events)[0].venue_name == "Sd Arena");
  }
  auto db = open_db(dir);
  auto events = db->events(1'000);
  REQUIRE(events);
  CHECK(events->size() == 2);
  auto version = db->read([](sd::storage::Db& d) -> sd::Status {
    auto v = sd::storage::schema_version(d);
    REQUIRE(v);
    CHECK(*v == TicketDb::schema_version());
    return sd::Status::ok();
  });
  CHECK(version);
}

TEST_CASE("db: seat map rows, labels, tiers and positions", "[unit][db]") {
  sd::testing::TempDir dir;
  auto db = open_db(dir);
  auto venue =
      db->add_venue({"Hall", {{"Front", "gold", 5'000, 2, 3}, {"Back", "std", 2'000, 1, 4}}});
  REQUIRE(venue);
  auto ev = db->add_event(*venue, "Gig", 10, false);
  REQUIRE(ev);
  auto seats = db->seats(*ev, 0);
  REQUIRE(seats);
  REQUIRE(seats->size() == 10);
  CHECK((*seats)[0].label == "Front A-1");
  CHECK((*seats)[5].label == "Front B-3");
  CHECK((*seats)[6].label == "Back A-1");
  CHECK((*seats)[6].price_cents == 2'000);
  CHECK((*seats)[0].tier == "gold");
  std::set<std::pair<double, double>> positions;
  for (const auto& s : *seats) {
    CHECK(s.state == SeatState::kAvailable);
    CHECK(s.version == 0);
    positions.insert({s.x, s.y});
  }
  CHECK(positions.size() == seats->size());  // no two seats drawn on top of each other
  CHECK((*seats)[0].y < (*seats)[3].y);      // row B below row A
  CHECK((*seats)[0].x < (*seats)[1].x);
  auto tiers = db->tiers(*ev);
  REQUIRE(tiers);
  REQUIRE(tiers->size() == 2);
  CHECK((*tiers)[0].name == "gold");
  CHECK((*tiers)[1].price_cents == 2'000);
}

TEST_CASE("db: an expired hold reads as available, unknown ids are not_found", "[unit][db]") {
  sd::testing::TempDir dir;
  auto db = open_db(dir);
  auto venue = db->add_venue({"Hall", {{"Front", "gold", 5'000, 1, 2}}});
  REQUIRE(venue);
  auto ev = db->add_event(*venue, "Gig", 10, false);
  REQUIRE(ev);
  auto seats = db->seats(*ev, 0);
  REQUIRE(seats);
  const SeatId seat = (*seats)[0].id;
  REQUIRE(db->write([&](sd::storage::Db& d) {
    return d.exec("INSERT INTO holds VALUES('h1', " + std::to_string(*ev) +
                  ", 'al', 5000, 0, 100, 'active', NULL);"
                  "INSERT INTO hold_seats VALUES('h1', " +
                  std::to_string(seat) +
                  ");"
                  "UPDATE event_seats SET state='held', hold_id='h1', hold_expires_ms=100, "
                  "version=1 WHERE seat_id=" +
                  std::to_string(seat));
  }));
  auto before = db->seats(*ev, 99);
  REQUIRE(before);
  CHECK((*before)[0].state == SeatState::kHeld);
  auto e99 = db->event(*ev, 99);
  REQUIRE(e99);
  CHECK(e99->available == 1);
  auto after = db->seats(*ev, 100);
  REQUIRE(after);
  CHECK((*after)[0].state == SeatState::kAvailable);
  auto e100 = db->event(*ev, 100);
  REQUIRE(e100);
  CHECK(e100->available == 2);
  auto h = db->hold("h1");
  REQUIRE(h);
  CHECK(h->seats == std::vector<SeatId>{seat});
  CHECK(h->status == HoldStatus::kActive);
  CHECK(db->hold("nope").status().code() == sd::Code::kNotFound);
  CHECK(db->order("nope").status().code() == sd::Code::kNotFound);
  CHECK(db->event(999, 0).status().code() == sd::Code::kNotFound);
  CHECK(db->seats(999, 0).status().code() == sd::Code::kNotFound);
  CHECK(db->add_event(999, "x", 0, false).status().code() == sd::Code::kNotFound);
}

TEST_CASE("db: the schema refuses a second valid ticket for a seat and bad seat states",
          "[unit][db]") {
  sd::testing::TempDir dir;
  auto db = open_db(dir);
  auto venue = db->add_venue({"Hall", {{"Front", "gold", 5'000, 1, 2}}});
  REQUIRE(venue);
  auto ev = db->add_event(*venue, "Gig", 10, false);
  REQUIRE(ev);
  const std::string e = std::to_string(*ev);
  REQUIRE(db->write([&](sd::storage::Db& d) {
    return d.exec(
        "INSERT INTO holds VALUES('h1'," + e + ",'a',1,0,1,'paid','o1');" +
        "INSERT INTO holds VALUES('h2'," + e + ",'b',1,0,1,'paid','o2');" +
        "INSERT INTO orders VALUES('o1','h1'," + e + ",'a',1,'confirmed','p1','captured',0,NULL);" +
        "INSERT INTO orders VALUES('o2','h2'," + e + ",'b',1,'confirmed','p2','captured',0,NULL);" +
        "INSERT INTO tickets VALUES('o1'," + e + ",1,1);");
  }));
  auto second = db->write(
      [&](sd::storage::Db& d) { return d.exec("INSERT INTO tickets VALUES('o2'," + e + ",1,1)"); });
  CHECK(second.code() == sd::Code::kAlreadyExists);
  // A voided ticket does not count: the seat can be sold again after a cancellation.
  CHECK(db->write([&](sd::storage::Db& d) {
    return d.exec(
        "UPDATE tickets SET valid=0 WHERE order_id='o1';"
        "INSERT INTO tickets VALUES('o2'," +
        e + ",1,1)");
  }));
  auto bad_state = db->write([&](sd::storage::Db& d) {
    return d.exec("UPDATE event_seats SET state='held' WHERE seat_id=1");  // no hold id
  });
  CHECK_FALSE(bad_state);
}
