// The flash sale: thousands of buyers, each on its own thread, released at once against a venue
// of 300 seats, through the real BookingService, strategy and SimulatedPayments (declines,
// provider errors, ambiguous timeouts), with real short TTLs (300 ms), a sweeper (expire_due every
// 50 ms) and a monitor (every 10 ms). Afterwards the ticket database and the payment ledger are
// audited with plain SQL, independently of the service code: no seat sold twice, no money
// without a ticket, nothing held past its expiry.
//
// 2,000 buyer threads (one per buyer, one customer id each) start behind a latch and arrive over
// the first second. Their calls go through a FIFO pool of kWorkers places, as ticketd's requests
// go through its worker threads; the sweeper and the monitor run beside it, as in ticketd.
// (Without the pool, i.e. 2,000 threads inside the service at once, conditional and optimistic
// still pass; dlock on an embedded sqlite:// lock store then sees hundreds of lock-wait timeouts,
// some of them on cancel_hold, and sweeps over a second long: ticketd must bound its workers.)
// Buyers pick seats from a shared live seat map refreshed every 5 ms (as the browser's SSE-fed
// map would be), so many go for seats someone else just took.

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <latch>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "booking_test_util.hpp"
#include "sd/base/ids.hpp"
#include "sd/ticketing/booking.hpp"

using namespace sd::ticketing;
using namespace sd::ticketing::testutil;
using sd::Code;
using sd::Status;

namespace {

constexpr int kBuyers = 2'000;
constexpr int64_t kTtlMs = 300;
constexpr int64_t kHeldBoundMs = 1'000;  // a held row may outlive its expiry by at most this
constexpr int kAttempts = 6;             // holds tried per buyer on seat_unavailable
constexpr int kWorkers = 32;             // booking calls served at once (ticketd's worker pool)

constexpr const char* kGoodCard = "4242424242424242";
constexpr const char* kDeclinedCard = "4000000000000002";
constexpr const char* kErrorCard = "4000000000000119";
constexpr const char* kTimeoutCard = "4000000000009995";

struct Counters {
  std::atomic<int> holds{0}, conflicts{0}, unavailable{0}, paid{0}, declined{0}, pay_unavailable{0},
      pay_expired{0}, abandoned{0}, cancelled{0}, order_cancels{0}, sold_out{0};
  std::atomic<int> unexpected{0};
  std::mutex mu;
  std::vector<std::string> unexpected_messages;  // guarded by mu
  void note_unexpected(const std::string& what, const Status& s) {
    unexpected.fetch_add(1);
    std::lock_guard lock(mu);
    if (unexpected_messages.size() < 20) unexpected_messages.push_back(what + ": " + s.to_string());
  }
};

int64_t wall_now() {
  return static_cast<int64_t>(sd::wall_ms());
}

// Seats a buyer goes for: 1-4 seats, 70% of buyers in the hot front section when it has enough
// left, picked from the seat map they last saw (which may be stale: that is the contention).
std::vector<SeatId> pick_seats(std::mt19937_64& rng, const std::vector<Seat>& map) {
  std::vector<SeatId> front, all;
  for (const auto& s : map) {
    if (s.state != SeatState::kAvailable) continue;
    all.push_back(s.id);
    if (s.section == "Front") front.push_back(s.id);
  }
  static const int kWeights[] = {30, 40, 20, 10};  // 1, 2, 3, 4 seats
  std::discrete_distribution<int> count(std::begin(kWeights), std::end(kWeights));
  size_t k = static_cast<size_t>(count(rng) + 1);
  std::vector<SeatId>& pool =
      (std::uniform_int_distribution<int>(0, 99)(rng) < 70 && front.size() >= k) ? front : all;
  if (pool.size() < k) k = pool.size();
  std::shuffle(pool.begin(), pool.end(), rng);
  return {pool.begin(), pool.begin() + static_cast<std::ptrdiff_t>(k)};
}

const char* pick_card(std::mt19937_64& rng) {
  int r = std::uniform_int_distribution<int>(0, 99)(rng);
  if (r < 4) return kDeclinedCard;
  if (r < 7) return kTimeoutCard;
  if (r < 9) return kErrorCard;
  return kGoodCard;  // declined / failing at the provider's random rates
}

// The service's worker pool: ticketd runs booking calls on a bounded pool of worker threads, so
// 2,000 concurrent buyers mean 2,000 queued requests, not 2,000 threads inside the service. A
// FIFO gate with kWorkers places (each waiter woken alone, no thundering herd).
class WorkerPool {
 public:
  template <class F>
  auto serve(F&& fn) {
    enter();
    struct Leave {
      WorkerPool& p;
      ~Leave() { p.leave(); }
    } leave{*this};
    return fn();
  }

 private:
  struct Waiter {
    std::condition_variable cv;
    bool granted = false;
  };
  void enter() {
    std::unique_lock lock(mu_);
    if (free_ > 0 && queue_.empty()) {
      --free_;
      return;
    }
    Waiter w;
    queue_.push_back(&w);
    w.cv.wait(lock, [&] { return w.granted; });
  }
  void leave() {
    std::lock_guard lock(mu_);
    if (queue_.empty()) {
      ++free_;
      return;
    }
    Waiter* next = queue_.front();
    queue_.pop_front();
    next->granted = true;  // the place passes straight to the next waiter
    next->cv.notify_one();
  }
  std::mutex mu_;
  int free_ = kWorkers;
  std::deque<Waiter*> queue_;  // guarded by mu_
};

// The seat map the buyers look at: like the live map in the browser (SSE), one feed refreshed
// every few ms and shared by all; slightly stale, which is where the contention comes from.
class LiveMap {
 public:
  std::shared_ptr<const std::vector<Seat>> get() {
    std::lock_guard lock(mu_);
    return map_;
  }
  void set(std::vector<Seat> m) {
    auto p = std::make_shared<const std::vector<Seat>>(std::move(m));
    std::lock_guard lock(mu_);
    map_ = std::move(p);
  }

 private:
  std::mutex mu_;
  std::shared_ptr<const std::vector<Seat>> map_ = std::make_shared<std::vector<Seat>>();
};

void buyer(int i, BookingService& booking, LiveMap& live, EventId event, Counters& c,
           std::latch& start, WorkerPool& pool) {
  std::mt19937_64 rng(0x5eed0000u + static_cast<uint64_t>(i));
  const std::string customer = "buyer" + std::to_string(i);
  auto roll = [&] { return std::uniform_int_distribution<int>(0, 99)(rng); };
  auto think = [&](int lo, int hi) {
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(lo, hi)(rng)));
  };
  start.arrive_and_wait();
  think(0, 1'000);  // arrivals spread over the first second of the sale
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    std::vector<SeatId> seats = pick_seats(rng, *live.get());
    if (seats.empty()) {
      c.sold_out.fetch_add(1);
      return;
    }
    HoldRequest req;
    req.event = event;
    req.customer = customer;
    req.seats = seats;
    req.ttl_ms = kTtlMs;
    auto hold = pool.serve([&] { return booking.hold(req); });
    if (!hold) {
      const Status& s = hold.status();
      if (s.code() == Code::kConflict && error_code(s) == "seat_unavailable") {
        c.conflicts.fetch_add(1);
      } else if (s.code() == Code::kUnavailable) {
        c.unavailable.fetch_add(1);
      } else {
        c.note_unexpected("hold", s);
        return;
      }
      think(10, 60);
      continue;
    }
    c.holds.fetch_add(1);
    const int action = roll();
    if (action < 20) {  // abandon: the hold expires
      c.abandoned.fetch_add(1);
      return;
    }
    if (action < 32) {  // change of mind
      think(0, 100);
      // kUnavailable (a seat lock busy, e.g. with a sweep batch: "retry") is the API's 503: the
      // shopper retries, as with hold and pay; if it stays busy the hold expires by itself.
      for (int cancel_try = 0; cancel_try < 3; ++cancel_try) {
        Status s = pool.serve([&] { return booking.cancel_hold(hold->id, customer); });
        if (s) {
          c.cancelled.fetch_add(1);
        } else if (s.code() == Code::kUnavailable) {
          c.unavailable.fetch_add(1);
          think(10, 60);
          continue;
        } else if (error_code(s) != "hold_not_active") {
          c.note_unexpected("cancel_hold", s);
        }
        break;
      }
      return;
    }
    // Pay, sometimes too late (the TTL is short), retrying once after a decline or an outage.
    roll() < 10 ? think(250, 400) : think(0, 150);
    const char* card = pick_card(rng);
    for (int pay_try = 0; pay_try < 2; ++pay_try) {
      auto order = pool.serve([&] { return booking.pay({hold->id, customer, card}); });
      if (order) {
        c.paid.fetch_add(1);
        if (roll() < 3) {  // regret: cancel the order (refund, seats back on sale)
          auto cancelled = pool.serve([&] { return booking.cancel_order(order->id, customer); });
          if (cancelled) {
            c.order_cancels.fetch_add(1);
          } else if (cancelled.status().code() != Code::kUnavailable) {
            c.note_unexpected("cancel_order", cancelled.status());
          }
        }
        return;
      }
      const Status& s = order.status();
      const std::string code = error_code(s);
      if (code == "card_declined") {
        c.declined.fetch_add(1);
      } else if (code == "payment_unavailable") {
        c.pay_unavailable.fetch_add(1);
        // Half give up: an ambiguous authorization is then left for reconcile() to void.
        if (roll() < 50) return;
      } else if (code == "hold_expired" || code == "hold_not_active") {
        c.pay_expired.fetch_add(1);
        return;
      } else if (s.code() == Code::kUnavailable) {
        c.pay_unavailable.fetch_add(1);  // lock lost / busy: retry
      } else {
        c.note_unexpected("pay", s);
        return;
      }
      card = roll() < 50 ? kGoodCard : card;
    }
    return;
  }
}

// Reads a whole query into rows of strings (the audit does not use the service's code).
std::vector<std::vector<std::string>> rows_of(sd::storage::Db& db, const std::string& sql) {
  auto q = db.prepare(sql);
  INFO(sql);
  REQUIRE(q);
  std::vector<std::vector<std::string>> out;
  for (;;) {
    auto row = q->step();
    REQUIRE(row);
    if (!*row) break;
    std::vector<std::string> r;
    for (int col = 0; col < q->column_count(); ++col) {
      r.push_back(q->column_is_null(col) ? "" : q->column_text(col));
    }
    out.push_back(std::move(r));
  }
  return out;
}

sd::storage::Db open_ro(const std::string& path) {
  sd::storage::DbOptions o;
  o.create = false;
  o.read_only = true;
  o.wal = false;
  auto db = sd::storage::Db::open(path, o);
  REQUIRE(db);
  return std::move(*db);
}

void run_flash_sale(StrategyKind kind) {
  const std::string name(strategy_name(kind));
  INFO("strategy " << name);
  sd::testing::TempDir dir;
  // 300 seats: Front (the hot section) 3 x 20, Middle 6 x 20, Back 6 x 20.
  DbConfig cfg;
  cfg.path = dir.file("tickets.db");
  cfg.durable_orders = true;
  auto db_r = TicketDb::open(cfg);
  REQUIRE(db_r);
  TicketDb& db = **db_r;
  auto venue = db.add_venue({"Flash Arena",
                             {{"Front", "front", 15'000, 3, 20},
                              {"Middle", "middle", 8'000, 6, 20},
                              {"Back", "back", 4'500, 6, 20}}});
  REQUIRE(venue);
  auto event = db.add_event(*venue, "Flash Sale", 2'000'000'000'000, true);
  REQUIRE(event);

  std::shared_ptr<sd::dlock::Backend> locks;
  if (kind == StrategyKind::kDlock) locks = open_locks(dir, "locks.db");
  auto strategy = make_strategy(kind, db, locks);
  REQUIRE(strategy);

  PaymentOptions po;
  po.ledger_path = dir.file("ledger.db");
  po.min_latency_ms = 1;
  po.max_latency_ms = 5;
  po.decline_rate = 0.15;
  po.error_rate = 0.06;  // half of them ambiguous (recorded, then "timeout")
  po.seed = 7;
  auto payments = SimulatedPayments::open(po, system_now_ms());
  REQUIRE(payments);

  BookingOptions bo;
  bo.min_hold_ttl_ms = 100;
  bo.orphan_authorization_ms = 0;  // reconcile() runs only after every buyer is done
  sd::SeededIdGenerator ids(99);
  BookingService booking(db, **strategy, **payments, ids, system_now_ms(), bo);
  std::atomic<int64_t> published{0};
  booking.set_listener([&](EventId, const std::vector<SeatChange>& ch) {
    published.fetch_add(static_cast<int64_t>(ch.size()));
  });

  std::atomic<bool> stop{false};
  std::atomic<int> sweeps{0}, swept{0}, sweep_errors{0};
  std::atomic<int64_t> slowest_sweep{0};
  std::atomic<int64_t> last_sweep_start{0};  // wall ms when the last completed sweep started
  std::thread sweeper([&] {
    while (!stop.load()) {
      const auto s0 = std::chrono::steady_clock::now();
      const int64_t started = wall_now();
      auto n = booking.expire_due();
      last_sweep_start = started;
      const int64_t took = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - s0)
                               .count();
      if (took > slowest_sweep.load()) slowest_sweep = took;
      if (n) {
        swept.fetch_add(*n);
      } else {
        sweep_errors.fetch_add(1);
      }
      sweeps.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  // The monitor: every ~10 ms, is any seat still held more than kHeldBoundMs past its expiry?
  // Counted twice: against the wall clock (late_samples: the end-to-end bound) and against the
  // sweeper's own progress (violations: held although a sweep that started more than
  // kHeldBoundMs after its expiry has completed, i.e. the sweep logic missed it). Both must be 0;
  // if a machine too loaded to schedule the sweeper ever fails the first, the second tells a
  // starved sweeper from a wrong one.
  std::atomic<int> samples{0}, violations{0}, late_samples{0};
  std::atomic<int64_t> worst_overstay{0};
  std::thread monitor([&] {
    auto mdb = open_ro(cfg.path);
    while (!stop.load()) {
      const int64_t swept_before = last_sweep_start.load();  // a sweep completed since then
      const int64_t now = wall_now();
      auto q = mdb.prepare(
          "SELECT COALESCE(SUM(hold_expires_ms < ?1), 0), COALESCE(SUM(hold_expires_ms < ?2), 0), "
          "COALESCE(MIN(hold_expires_ms), 0) FROM event_seats WHERE state = 'held'");
      if (q && q->bind_int64(1, now - kHeldBoundMs) &&
          q->bind_int64(2, std::min(now, swept_before) - kHeldBoundMs)) {
        auto row = q->step();
        if (row && *row) {
          if (q->column_int64(0) > 0) {
            late_samples.fetch_add(1);
            const int64_t overstay = now - q->column_int64(2);
            if (overstay > worst_overstay.load()) worst_overstay = overstay;
          }
          if (q->column_int64(1) > 0) violations.fetch_add(1);
          samples.fetch_add(1);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });

  LiveMap live;
  auto first_map = db.seats(*event, wall_now());
  REQUIRE(first_map);
  live.set(std::move(*first_map));
  std::atomic<int> map_errors{0};
  std::thread feed([&] {
    while (!stop.load()) {
      auto m = db.seats(*event, wall_now());
      if (m) {
        live.set(std::move(*m));
      } else {
        map_errors.fetch_add(1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });

  Counters c;
  WorkerPool pool;
  const auto t0 = std::chrono::steady_clock::now();
  {
    std::latch start(kBuyers);
    std::vector<std::thread> buyers;
    buyers.reserve(kBuyers);
    for (int i = 0; i < kBuyers; ++i) {
      buyers.emplace_back([&, i] { buyer(i, booking, live, *event, c, start, pool); });
    }
    for (auto& t : buyers) t.join();
  }
  const auto buying_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  // Let every remaining hold expire and be swept (real TTLs: bounded wait, not a fixed sleep).
  CHECK(sd::testing::eventually(
      [&] {
        return query_int(db, "SELECT COUNT(*) FROM holds WHERE status = 'active'") == 0 &&
               query_int(db, "SELECT COUNT(*) FROM event_seats WHERE state = 'held'") == 0;
      },
      std::chrono::seconds(10)));
  stop = true;
  sweeper.join();
  monitor.join();
  feed.join();
  CHECK(map_errors == 0);
  // Settle the ledger: capture/void/refund until nothing is left to do.
  ReconcileReport total;
  for (int pass = 0; pass < 5; ++pass) {
    auto rec = booking.reconcile();
    REQUIRE(rec);
    total.captured += rec->captured;
    total.voided += rec->voided;
    total.refunded += rec->refunded;
    if (rec->captured + rec->voided + rec->refunded == 0) break;
  }
  const auto elapsed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();

  {
    std::lock_guard lock(c.mu);
    for (const auto& m : c.unexpected_messages) UNSCOPED_INFO("unexpected: " << m);
  }
  CHECK(c.unexpected == 0);

  // ---- Audit: plain SQL on both files.
  auto tdb = open_ro(cfg.path);
  auto ldb = open_ro(po.ledger_path);
  // No seat has two valid tickets.
  CHECK(query_int(tdb,
                  "SELECT COUNT(*) FROM (SELECT event_id, seat_id FROM tickets WHERE valid = 1 "
                  "GROUP BY event_id, seat_id HAVING COUNT(*) > 1)") == 0);
  // Every sold seat: exactly one valid ticket, of a confirmed order, the order the seat names.
  CHECK(query_int(tdb,
                  "SELECT COUNT(*) FROM event_seats es WHERE es.state = 'sold' AND ("
                  "SELECT COUNT(*) FROM tickets t JOIN orders o ON o.id = t.order_id "
                  "WHERE t.event_id = es.event_id AND t.seat_id = es.seat_id AND t.valid = 1 "
                  "AND o.status = 'confirmed' AND o.id = es.order_id) <> 1") == 0);
  // Every confirmed order: all its tickets valid and their seats sold to it; as many tickets as
  // its hold had seats; its amount = the sum of its seats' prices.
  CHECK(query_int(tdb,
                  "SELECT COUNT(*) FROM tickets t JOIN orders o ON o.id = t.order_id "
                  "WHERE o.status = 'confirmed' AND (t.valid = 0 OR NOT EXISTS (SELECT 1 FROM "
                  "event_seats es WHERE es.event_id = t.event_id AND es.seat_id = t.seat_id AND "
                  "es.state = 'sold' AND es.order_id = o.id))") == 0);
  CHECK(query_int(tdb,
                  "SELECT COUNT(*) FROM orders o WHERE (SELECT COUNT(*) FROM tickets t WHERE "
                  "t.order_id = o.id) <> (SELECT COUNT(*) FROM hold_seats hs WHERE hs.hold_id = "
                  "o.hold_id) OR o.amount_cents <> (SELECT COALESCE(SUM(s.price_cents), -1) FROM "
                  "tickets t JOIN seats s ON s.id = t.seat_id WHERE t.order_id = o.id)") == 0);
  // No seat that is not sold has a valid ticket; nothing is left held; cancelled orders' tickets
  // are void and their seats released.
  CHECK(query_int(tdb,
                  "SELECT COUNT(*) FROM event_seats es JOIN tickets t ON t.event_id = es.event_id "
                  "AND t.seat_id = es.seat_id AND t.valid = 1 WHERE es.state <> 'sold'") == 0);
  CHECK(query_int(tdb, "SELECT COUNT(*) FROM event_seats WHERE state = 'held'") == 0);
  CHECK(query_int(tdb,
                  "SELECT COUNT(*) FROM orders o WHERE o.status = 'cancelled' AND (EXISTS (SELECT "
                  "1 FROM tickets t WHERE t.order_id = o.id AND t.valid = 1) OR EXISTS (SELECT 1 "
                  "FROM event_seats es WHERE es.order_id = o.id) OR o.payment_state <> "
                  "'refunded')") == 0);
  // Paid holds are exactly the orders' holds.
  CHECK(query_int(tdb,
                  "SELECT COUNT(*) FROM holds h WHERE (h.status = 'paid') <> EXISTS (SELECT 1 "
                  "FROM orders o WHERE o.hold_id = h.id)") == 0);

  // Money: compare the ledger with the orders.
  struct OrderRow {
    std::string status, payment_state;
    int64_t amount = 0;
  };
  std::map<std::string, OrderRow> order_by_payment;
  for (const auto& r :
       rows_of(tdb, "SELECT payment_id, status, payment_state, amount_cents FROM orders")) {
    CHECK(order_by_payment.count(r[0]) == 0);  // one order per charge
    order_by_payment[r[0]] = {r[1], r[2], std::stoll(r[3])};
  }
  int captured = 0, voided = 0, refunded = 0, authorized = 0;
  int64_t captured_cents = 0, confirmed_cents = 0;
  std::set<std::string> charge_ids;
  for (const auto& r : rows_of(ldb, "SELECT id, reference, amount_cents, state FROM charges")) {
    charge_ids.insert(r[0]);
    const std::string& state = r[3];
    auto it = order_by_payment.find(r[0]);
    INFO("charge " << r[0] << " " << state);
    if (state == "captured") {
      ++captured;
      captured_cents += std::stoll(r[2]);
      // No money without a ticket: a captured charge is a confirmed order's, same amount.
      REQUIRE(it != order_by_payment.end());
      CHECK(it->second.status == "confirmed");
      CHECK(it->second.amount == std::stoll(r[2]));
      CHECK(it->second.payment_state == "captured");
    } else if (state == "authorized") {
      ++authorized;  // every authorization was captured or voided by now
    } else if (state == "voided") {
      ++voided;
      if (it != order_by_payment.end()) CHECK(it->second.status == "cancelled");
    } else if (state == "refunded") {
      ++refunded;
      REQUIRE(it != order_by_payment.end());
      CHECK(it->second.status == "cancelled");
    }
  }
  CHECK(authorized == 0);
  for (const auto& [payment, o] : order_by_payment) {
    INFO("order with charge " << payment);
    CHECK(charge_ids.count(payment) == 1);
    if (o.status == "confirmed") confirmed_cents += o.amount;
  }
  CHECK(captured_cents == confirmed_cents);
  CHECK(violations == 0);
  CHECK(late_samples == 0);

  // The run exercised what it is meant to.
  const int64_t sold = query_int(tdb, "SELECT COUNT(*) FROM event_seats WHERE state = 'sold'");
  const int64_t expired = query_int(tdb, "SELECT COUNT(*) FROM holds WHERE status = 'expired'");
  const int64_t orders_confirmed =
      query_int(tdb, "SELECT COUNT(*) FROM orders WHERE status = 'confirmed'");
  const auto stats = (*strategy)->stats();
  CHECK(sold > 0);
  CHECK(orders_confirmed == c.paid - c.order_cancels);
  CHECK(captured == orders_confirmed);
  CHECK(c.declined > 0);
  CHECK(c.conflicts > 0);
  CHECK(c.pay_unavailable > 0);
  CHECK(expired > 0);
  CHECK(voided > 0);
  CHECK(samples > 50);
  CHECK(sweeps > 5);
  CHECK(static_cast<int64_t>(stats.claims) == query_int(tdb, "SELECT COUNT(*) FROM holds"));
  CHECK(stats.claims == static_cast<uint64_t>(c.holds.load()));
  CHECK(stats.fence_rejections == 0);  // no lock was lost in this run
  CHECK(published > 0);

  WARN("flash sale [" << name << "] " << kBuyers << " buyers / 300 seats: sold " << sold
                      << " seats in " << orders_confirmed << " orders, holds " << c.holds
                      << ", conflicts " << c.conflicts << " (strategy " << stats.claim_conflicts
                      << ", lock failures " << stats.lock_failures << ", optimistic retries "
                      << stats.optimistic_retries << "), declined " << c.declined
                      << ", pay unavailable " << c.pay_unavailable << ", paid too late "
                      << c.pay_expired << ", expired holds " << expired << ", cancelled holds "
                      << c.cancelled << ", cancelled orders " << c.order_cancels << ", sold out "
                      << c.sold_out << "; reconcile captured " << total.captured << " voided "
                      << total.voided << " refunded " << total.refunded << "; monitor " << samples
                      << " samples, " << violations << " violations, " << late_samples
                      << " late by the wall clock (worst overstay " << worst_overstay << " ms); "
                      << sweeps << " sweeps released " << swept << " holds (slowest "
                      << slowest_sweep << " ms); buying " << buying_ms << " ms, total "
                      << elapsed_ms << " ms");
}

}  // namespace

TEST_CASE(
    "flash sale: dlock (sqlite:// embedded) sells no seat twice and takes no money "
    "without a ticket",
    "[unit][flash_sale]") {
  run_flash_sale(StrategyKind::kDlock);
}

TEST_CASE(
    "flash sale: conditional update sells no seat twice and takes no money without a "
    "ticket",
    "[unit][flash_sale]") {
  run_flash_sale(StrategyKind::kConditional);
}

TEST_CASE(
    "flash sale: optimistic versions sell no seat twice and take no money without a "
    "ticket",
    "[unit][flash_sale]") {
  run_flash_sale(StrategyKind::kOptimistic);
}
