// ticketd killed with SIGKILL in the middle of a sale loses no confirmed order and leaves no money
// without a ticket: 32 buyers hold and pay over HTTP (payments with latency, some declined), the
// process is killed mid-load and restarted on the same state directory, and then
//   - every order a buyer was told about (201) is there and confirmed;
//   - read straight from the database files: no seat has two valid tickets, every sold seat has
//     exactly one confirmed order with a valid ticket for it, and every valid ticket's seat is
//     sold to its order;
//   - after the restart's reconcile the provider's ledger has no captured charge without a
//     confirmed order, no authorization left dangling, and every confirmed order's charge is
//     captured.

#include <signal.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "sd/storage/sqlite.hpp"
#include "ticketd_test_support.hpp"

using namespace ticketd_test;  // NOLINT(google-build-using-namespace)

namespace {

// Rows of a query (all columns as text; NULL as "").
std::vector<std::vector<std::string>> rows(sd::storage::Db& db, const std::string& sql) {
  auto st = db.prepare(sql);
  INFO(sql);
  REQUIRE(st.is_ok());
  std::vector<std::vector<std::string>> out;
  for (;;) {
    auto more = st->step();
    REQUIRE(more.is_ok());
    if (!*more) break;
    std::vector<std::string> row;
    for (int i = 0; i < st->column_count(); ++i) {
      row.push_back(st->column_is_null(i) ? "" : st->column_text(i));
    }
    out.push_back(std::move(row));
  }
  return out;
}

int64_t count(sd::storage::Db& db, const std::string& sql) {
  auto v = db.query_int64(sql);
  INFO(sql);
  REQUIRE(v.is_ok());
  return *v;
}

}  // namespace

TEST_CASE("ticketd: kill -9 mid-sale loses no confirmed order and no money", "[integration]") {
  sd::testing::TempDir dir("ticketd-crash");
  const std::string state = dir.file("state");
  const std::vector<std::string> load_flags = {"--no-seed", "--bench-venue",
                                               "3000",      "--strategy",
                                               "dlock",     "--workers",
                                               "32",        "--threads",
                                               "2",         "--payment-latency-ms",
                                               "10,60",     "--payment-decline-rate",
                                               "0.2",       "--reconcile-ms",
                                               "3600000"};
  auto d = Ticketd::start(dir, state, load_flags, "run1");
  int64_t event = 0;
  std::vector<int64_t> seat_ids;
  {
    auto c = d.client();
    Reply events = get(c, "/v1/events");
    REQUIRE(events.status == 200);
    REQUIRE(events.body["events"].size() == 1);
    event = events.body["events"][0]["id"];
    Reply seats = get(c, "/v1/events/" + std::to_string(event) + "/seats");
    REQUIRE(seats.status == 200);
    for (const json& s : seats.body["seats"]) seat_ids.push_back(s["id"]);
    REQUIRE(seat_ids.size() == 3000);
  }
  const std::string holds = "/v1/events/" + std::to_string(event) + "/holds";

  std::mutex mu;
  std::vector<std::string> confirmed;  // guarded by mu: every order id a buyer got a 201 for
  std::atomic<int> declined{0}, conflicts{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> buyers;
  for (int b = 0; b < 32; ++b) {
    buyers.emplace_back([&, b] {
      sd::net::ClientOptions co;
      co.request_timeout = 5s;
      sd::net::HttpClient c("127.0.0.1", d.port, co);
      std::mt19937_64 rng(static_cast<uint64_t>(b) + 1);
      const std::string customer = "buyer" + std::to_string(b);
      while (!stop) {
        std::uniform_int_distribution<size_t> pick(0, seat_ids.size() - 1);
        size_t first = pick(rng);
        std::vector<int64_t> want = {seat_ids[first]};
        if (rng() % 2 == 0 && first + 1 < seat_ids.size()) want.push_back(seat_ids[first + 1]);
        Reply h = post(c, holds, {{"customer", customer}, {"seats", want}});
        if (h.status == 0) {
          std::this_thread::sleep_for(5ms);  // killed: the loop ends when the test says so
          continue;
        }
        if (h.status == 409) ++conflicts;
        if (h.status != 201) continue;
        const std::string hold_id = h.body["hold_id"];
        Reply p = post(c, "/v1/holds/" + hold_id + "/pay",
                       {{"customer", customer}, {"card", "4242424242424242"}});
        if (p.status == 201) {
          std::lock_guard lock(mu);
          confirmed.push_back(p.body["order_id"]);
        } else if (p.status == 402) {
          ++declined;
          (void)post(c, "/v1/holds/" + hold_id + "/cancel", {{"customer", customer}});
        }
      }
    });
  }
  auto orders_so_far = [&] {
    std::lock_guard lock(mu);
    return confirmed.size();
  };
  // Let the sale run: at least 50 orders and about 1.5 s of load, then kill it mid-flight.
  REQUIRE(sd::testing::eventually([&] { return orders_so_far() >= 50; }, 30s));
  std::this_thread::sleep_for(1'000ms);
  REQUIRE(d.proc->signal(SIGKILL).is_ok());
  auto killed = d.proc->wait_for(10s);
  REQUIRE(killed.has_value());
  CHECK(*killed == 128 + SIGKILL);
  std::this_thread::sleep_for(100ms);  // buyers see the refused connections
  stop = true;
  for (auto& t : buyers) t.join();
  const std::vector<std::string> told = [&] {
    std::lock_guard lock(mu);
    return confirmed;
  }();
  INFO("orders: " << told.size() << ", declined: " << declined << ", conflicts: " << conflicts);
  CHECK(declined > 0);

  // Restart on the same state: the startup reconcile voids every orphan authorization (the flag
  // makes any authorization without an order an orphan) and captures committed orders' charges.
  auto d2 = Ticketd::start(dir, state,
                           {"--no-seed", "--strategy", "dlock", "--orphan-authorization-ms", "1",
                            "--reconcile-ms", "3600000"},
                           "run2");
  {
    auto c = d2.client();
    for (const std::string& id : told) {
      Reply o = get(c, "/v1/orders/" + id);
      INFO(id << ": " << o.raw);
      REQUIRE(o.status == 200);
      CHECK(o.body["status"] == "confirmed");
    }
  }
  REQUIRE(d2.proc->stop(10s) == 0);  // quiesce before reading the files
  {
    // What the kill left for the restart to settle (for the record: how mid-flight it was).
    std::string log = sd::testing::read_file(d2.log_path);
    size_t at = log.find("startup reconcile");
    WARN(told.size() << " orders confirmed to buyers, " << declined << " declined, " << conflicts
                     << " seat conflicts; restart: "
                     << (at == std::string::npos ? "?" : log.substr(at, log.find('\n', at) - at)));
  }

  auto tdb = sd::storage::Db::open(state + "/ticketing.db");
  REQUIRE(tdb.is_ok());
  // No seat with two valid tickets.
  CHECK(count(*tdb,
              "SELECT COUNT(*) FROM (SELECT event_id, seat_id FROM tickets WHERE valid = 1 "
              "GROUP BY event_id, seat_id HAVING COUNT(*) > 1)") == 0);
  // Every sold seat has one confirmed order, with a valid ticket for that seat.
  CHECK(count(*tdb,
              "SELECT COUNT(*) FROM event_seats es LEFT JOIN orders o ON o.id = es.order_id "
              "WHERE es.state = 'sold' AND (o.id IS NULL OR o.status != 'confirmed')") == 0);
  CHECK(count(*tdb,
              "SELECT COUNT(*) FROM event_seats es WHERE es.state = 'sold' AND NOT EXISTS "
              "(SELECT 1 FROM tickets t WHERE t.event_id = es.event_id AND t.seat_id = es.seat_id "
              "AND t.valid = 1 AND t.order_id = es.order_id)") == 0);
  // And the converse: every valid ticket's seat is sold to its (confirmed) order.
  CHECK(count(*tdb,
              "SELECT COUNT(*) FROM tickets t JOIN orders o ON o.id = t.order_id "
              "LEFT JOIN event_seats es ON es.event_id = t.event_id AND es.seat_id = t.seat_id "
              "WHERE t.valid = 1 AND (o.status != 'confirmed' OR es.state IS NULL OR "
              "es.state != 'sold' OR es.order_id != t.order_id)") == 0);
  // Every order a buyer was told about is in the file, confirmed.
  std::map<std::string, std::string> order_status;     // id -> status
  std::map<std::string, std::string> order_of_charge;  // payment_id -> order id (confirmed)
  for (const auto& r : rows(*tdb, "SELECT id, status, payment_id FROM orders")) {
    order_status[r[0]] = r[1];
    if (r[1] == "confirmed") order_of_charge[r[2]] = r[0];
  }
  for (const std::string& id : told) {
    INFO(id);
    CHECK(order_status[id] == "confirmed");
  }
  CHECK(order_of_charge.size() >= told.size());

  // The provider's ledger after the restart's reconcile.
  auto pdb = sd::storage::Db::open(state + "/payments.db");
  REQUIRE(pdb.is_ok());
  std::map<std::string, std::string> charge_state;
  for (const auto& r : rows(*pdb, "SELECT id, state FROM charges")) charge_state[r[0]] = r[1];
  int captured = 0;
  for (const auto& [id, st] : charge_state) {
    INFO("charge " << id << " is " << st);
    CHECK(st != "authorized");  // nothing left dangling
    if (st == "captured") {
      ++captured;
      CHECK(order_of_charge.count(id) == 1);  // no money without a ticket
    }
  }
  for (const auto& [charge, order] : order_of_charge) {
    INFO("order " << order << " charge " << charge);
    REQUIRE(charge_state.count(charge) == 1);
    CHECK(charge_state[charge] == "captured");
  }
  CHECK(captured == static_cast<int>(order_of_charge.size()));
}
