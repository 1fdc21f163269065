#include <catch2/catch.hpp>

#include <latch>
#include <mutex>
#include <thread>

#include "booking_test_util.hpp"
#include "sd/dlock/client.hpp"

using namespace sd::ticketing;
using namespace sd::ticketing::testutil;
using sd::Code;

namespace {

constexpr int64_t kNow = 1'700'000'000'000;

ClaimRequest claim_req(const TestVenue& v, const std::string& hold, std::vector<SeatId> seats,
                       int64_t now = kNow, int64_t ttl = 60'000, const std::string& who = "alice") {
  ClaimRequest r;
  r.hold_id = hold;
  r.event = v.event;
  r.customer = who;
  r.seats = std::move(seats);
  r.now_ms = now;
  r.expires_ms = now + ttl;
  return r;
}

ConfirmRequest confirm_req(const std::string& hold, const std::string& order, int64_t now = kNow) {
  return {hold, order, "pay_" + order, now};
}

}  // namespace

TEST_CASE("strategy: names parse and print", "[unit][strategy]") {
  for (auto k : {StrategyKind::kDlock, StrategyKind::kConditional, StrategyKind::kOptimistic}) {
    auto p = parse_strategy(strategy_name(k));
    REQUIRE(p);
    CHECK(*p == k);
  }
  auto bad = parse_strategy("pessimistic");
  REQUIRE_FALSE(bad);
  CHECK(bad.status().code() == Code::kInvalidArgument);
  CHECK(bad.status().message().find("dlock, conditional or optimistic") != std::string::npos);
  sd::testing::TempDir dir;
  auto v = make_venue(dir);
  auto no_backend = make_strategy(StrategyKind::kDlock, *v.db, nullptr);
  REQUIRE_FALSE(no_backend);
  CHECK(no_backend.status().code() == Code::kInvalidArgument);
}

TEST_CASE("strategy: claim, confirm and release", "[unit][strategy]") {
  auto c = GENERATE(from_range(strategy_cases()));
  INFO(c.name);
  sd::testing::TempDir dir;
  auto v = make_venue(dir);
  std::shared_ptr<sd::dlock::Backend> backend;
  auto s = make_case(c, dir, *v.db, backend);
  CHECK(s->kind() == c.kind);
  const SeatId front1 = v.seats[0], front2 = v.seats[1], back1 = v.seats.back();

  // Claim two seats (given out of order): held, amount = sum of prices, changes published.
  std::vector<SeatChange> changes;
  auto h = s->claim(claim_req(v, "h_1", {back1, front1}), changes);
  REQUIRE(h);
  CHECK(h->seats == std::vector<SeatId>{front1, back1});
  CHECK(h->amount_cents == 15'000);
  CHECK(h->status == HoldStatus::kActive);
  CHECK(h->expires_ms == kNow + 60'000);
  REQUIRE(changes.size() == 2);
  for (const auto& ch : changes) CHECK(ch.state == SeatState::kHeld);
  CHECK(changes[0].version == 1);
  auto row = raw_seat(*v.db, v.event, front1);
  CHECK(row.state == "held");
  CHECK(row.hold_id == "h_1");
  CHECK(row.version == 1);
  CHECK((c.kind == StrategyKind::kDlock) == (row.fence > 0));
  auto stored = v.db->hold("h_1");
  REQUIRE(stored);
  CHECK(stored->seats == h->seats);
  CHECK(stored->amount_cents == 15'000);
  CHECK(stored->customer == "alice");

  // Confirm: order, tickets, seats sold, hold paid.
  changes.clear();
  auto o = s->confirm(confirm_req("h_1", "o_1", kNow + 1'000), changes);
  REQUIRE(o);
  CHECK(o->id == "o_1");
  CHECK(o->hold_id == "h_1");
  CHECK(o->amount_cents == 15'000);
  CHECK(o->status == OrderStatus::kConfirmed);
  CHECK(o->payment_id == "pay_o_1");
  REQUIRE(changes.size() == 2);
  for (const auto& ch : changes) CHECK(ch.state == SeatState::kSold);
  row = raw_seat(*v.db, v.event, back1);
  CHECK(row.state == "sold");
  CHECK(row.order_id == "o_1");
  CHECK(row.hold_id.empty());
  CHECK(row.version == 2);
  CHECK(hold_status(*v.db, "h_1") == "paid");
  CHECK(query_int(*v.db, "SELECT COUNT(*) FROM tickets WHERE order_id = 'o_1' AND valid = 1") == 2);
  auto stored_order = v.db->order("o_1");
  REQUIRE(stored_order);
  CHECK(stored_order->seats == h->seats);
  CHECK(query_int(*v.db,
                  "SELECT COUNT(*) FROM orders WHERE id = 'o_1' AND "
                  "payment_state = 'authorized'") == 1);

  // A paid hold can be neither confirmed again nor released; sold seats cannot be claimed.
  changes.clear();
  auto again = s->confirm(confirm_req("h_1", "o_2"), changes);
  REQUIRE_FALSE(again);
  CHECK(again.status().code() == Code::kConflict);
  CHECK(error_code(again.status()) == "hold_not_active");
  auto rel = s->release("h_1", HoldStatus::kCancelled, kNow, changes);
  CHECK(rel.code() == Code::kConflict);
  CHECK(error_code(rel) == "hold_not_active");
  auto sold = s->claim(claim_req(v, "h_2", {front1}), changes);
  REQUIRE_FALSE(sold);
  CHECK(sold.status().code() == Code::kConflict);
  CHECK(sold.status().message() ==
        "seat_unavailable: seat " + std::to_string(front1) + " (Front A-1) is sold");
  CHECK(changes.empty());

  // Release: seats available again, hold cancelled; only once.
  auto h3 = s->claim(claim_req(v, "h_3", {front2}), changes);
  REQUIRE(h3);
  changes.clear();
  REQUIRE(s->release("h_3", HoldStatus::kCancelled, kNow, changes));
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].state == SeatState::kAvailable);
  CHECK(changes[0].version == 2);
  row = raw_seat(*v.db, v.event, front2);
  CHECK(row.state == "available");
  CHECK(row.hold_id.empty());
  CHECK(hold_status(*v.db, "h_3") == "cancelled");
  auto twice = s->release("h_3", HoldStatus::kExpired, kNow, changes);
  CHECK(error_code(twice) == "hold_not_active");
  auto confirm_released = s->confirm(confirm_req("h_3", "o_3"), changes);
  CHECK(error_code(confirm_released.status()) == "hold_not_active");
  CHECK(s->release("nope", HoldStatus::kCancelled, kNow, changes).code() == Code::kNotFound);
  CHECK(s->confirm(confirm_req("nope", "o_4"), changes).status().code() == Code::kNotFound);

  auto st = s->stats();
  CHECK(st.claims == 2);
  CHECK(st.claim_conflicts == 1);
  CHECK(st.fence_rejections == 0);
}

TEST_CASE("strategy: a claim is all or nothing", "[unit][strategy]") {
  auto c = GENERATE(from_range(strategy_cases()));
  INFO(c.name);
  sd::testing::TempDir dir;
  auto v = make_venue(dir);
  std::shared_ptr<sd::dlock::Backend> backend;
  auto s = make_case(c, dir, *v.db, backend);
  std::vector<SeatChange> changes;
  REQUIRE(s->claim(claim_req(v, "h_a", {v.seats[2]}), changes));
  changes.clear();
  auto r = s->claim(claim_req(v, "h_b", {v.seats[1], v.seats[2], v.seats[3]}, kNow, 60'000, "bob"),
                    changes);
  REQUIRE_FALSE(r);
  CHECK(r.status().code() == Code::kConflict);
  CHECK(error_code(r.status()) == "seat_unavailable");
  CHECK(r.status().message().find("seat " + std::to_string(v.seats[2])) != std::string::npos);
  CHECK(changes.empty());
  CHECK(raw_seat(*v.db, v.event, v.seats[1]).state == "available");
  CHECK(raw_seat(*v.db, v.event, v.seats[3]).state == "available");
  CHECK(raw_seat(*v.db, v.event, v.seats[1]).version == 0);
  CHECK(query_int(*v.db, "SELECT COUNT(*) FROM holds WHERE id = 'h_b'") == 0);
  CHECK(query_int(*v.db, "SELECT COUNT(*) FROM hold_seats WHERE hold_id = 'h_b'") == 0);

  // A seat that is not part of the event: kInvalidArgument, nothing written.
  auto bad = s->claim(claim_req(v, "h_c", {v.seats[4], 999'999}), changes);
  REQUIRE_FALSE(bad);
  CHECK(bad.status().code() == Code::kInvalidArgument);
  CHECK(bad.status().message() ==
        "invalid_argument: seat 999999 is not part of event " + std::to_string(v.event));
  CHECK(raw_seat(*v.db, v.event, v.seats[4]).state == "available");
  CHECK(query_int(*v.db, "SELECT COUNT(*) FROM holds") == 1);
  CHECK(s->stats().claims == 1);
  CHECK(s->stats().claim_conflicts == 1);
}

TEST_CASE("strategy: an expired hold's seats are taken over", "[unit][strategy]") {
  auto c = GENERATE(from_range(strategy_cases()));
  INFO(c.name);
  sd::testing::TempDir dir;
  auto v = make_venue(dir);
  std::shared_ptr<sd::dlock::Backend> backend;
  auto s = make_case(c, dir, *v.db, backend);
  const SeatId a = v.seats[0], b = v.seats[1], d = v.seats[2];
  std::vector<SeatChange> changes;
  REQUIRE(s->claim(claim_req(v, "h_old", {a, b}, kNow, 1'000), changes));
  REQUIRE(s->claim(claim_req(v, "h_one", {d}, kNow, 1'000), changes));

  // Still unexpired one ms before expiry: a conflict.
  auto early = s->claim(claim_req(v, "h_x", {a}, kNow + 999, 60'000, "bob"), changes);
  CHECK(error_code(early.status()) == "seat_unavailable");

  // At expiry the seat is claimable; the old hold keeps its other seat (the sweeper releases it).
  changes.clear();
  auto took = s->claim(claim_req(v, "h_new", {a}, kNow + 1'000, 60'000, "bob"), changes);
  REQUIRE(took);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].version == 2);
  CHECK(raw_seat(*v.db, v.event, a).hold_id == "h_new");
  CHECK(raw_seat(*v.db, v.event, b).hold_id == "h_old");
  CHECK(hold_status(*v.db, "h_old") == "active");
  // The expired hold cannot be paid any more.
  auto pay_old = s->confirm(confirm_req("h_old", "o_old", kNow + 1'000), changes);
  CHECK(error_code(pay_old.status()) == "hold_not_active");
  CHECK(raw_seat(*v.db, v.event, b).state == "held");

  // The sweeper's release touches only the seat still held by the old hold.
  changes.clear();
  REQUIRE(s->release("h_old", HoldStatus::kExpired, kNow + 1'050, changes));
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].seat == b);
  CHECK(raw_seat(*v.db, v.event, b).state == "available");
  CHECK(raw_seat(*v.db, v.event, a).hold_id == "h_new");
  CHECK(hold_status(*v.db, "h_old") == "expired");

  // A hold whose seats are all taken over is marked expired by the claim itself.
  REQUIRE(s->claim(claim_req(v, "h_take", {d}, kNow + 2'000, 60'000, "carol"), changes));
  CHECK(hold_status(*v.db, "h_one") == "expired");
  auto confirm_new = s->confirm(confirm_req("h_new", "o_new", kNow + 2'000), changes);
  REQUIRE(confirm_new);
  CHECK(raw_seat(*v.db, v.event, a).state == "sold");
}

TEST_CASE("strategy: one of 16 concurrent claims of a seat wins", "[unit][strategy]") {
  auto c = GENERATE(from_range(strategy_cases()));
  INFO(c.name);
  sd::testing::TempDir dir;
  auto v = make_venue(dir, 4, 4, 10);
  std::shared_ptr<sd::dlock::Backend> backend;
  auto s = make_case(c, dir, *v.db, backend);
  constexpr int kThreads = 16;
  const SeatId hot = v.seats[0];
  std::latch start(kThreads);
  std::mutex mu;
  std::vector<std::string> winners;
  std::vector<sd::Status> losers;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      // Each also wants a seat nobody else wants: the losers must not keep it.
      auto req = claim_req(v, "h_" + std::to_string(i), {hot, v.seats[static_cast<size_t>(1 + i)]},
                           kNow, 60'000, "c" + std::to_string(i));
      start.arrive_and_wait();
      std::vector<SeatChange> changes;
      auto r = s->claim(req, changes);
      std::lock_guard lock(mu);
      if (r) {
        winners.push_back(r->id);
      } else {
        losers.push_back(r.status());
      }
    });
  }
  for (auto& t : threads) t.join();
  REQUIRE(winners.size() == 1);
  REQUIRE(losers.size() == kThreads - 1);
  for (const auto& l : losers) {
    CHECK(l.code() == Code::kConflict);
    CHECK(error_code(l) == "seat_unavailable");
  }
  CHECK(raw_seat(*v.db, v.event, hot).hold_id == winners[0]);
  CHECK(query_int(*v.db, "SELECT COUNT(*) FROM event_seats WHERE state = 'held'") == 2);
  CHECK(query_int(*v.db, "SELECT COUNT(*) FROM holds") == 1);
  auto st = s->stats();
  CHECK(st.claims == 1);
  CHECK(st.claim_conflicts == kThreads - 1);
  if (c.kind == StrategyKind::kDlock) {
    auto locks = backend->list(sd::dlock::Kind::kLock, "ticketing/");
    REQUIRE(locks);
    for (const auto& l : *locks) CHECK(l.holders.empty());  // every lock was given back
  }
}

TEST_CASE("strategy: dlock refuses a stale fencing token", "[unit][strategy]") {
  auto c = GENERATE(StrategyCase{"dlock/memory", StrategyKind::kDlock, ""},
                    StrategyCase{"dlock/sqlite", StrategyKind::kDlock, "locks.db"});
  INFO(c.name);
  sd::testing::TempDir dir;
  auto v = make_venue(dir);
  auto backend = open_locks(dir, c.lock_file);
  const SeatId seat = v.seats[0];
  // The newer holder: another strategy instance (another process, in effect) on the same backend.
  auto other = make_strategy(StrategyKind::kDlock, *v.db, backend);
  REQUIRE(other);

  std::atomic<int> calls{0};
  sd::dlock::Token stale = 0;
  sd::ticketing::detail::DlockHooks hooks;
  hooks.before_write = [&](sd::dlock::Session& session, const std::vector<SeatId>& seats) {
    if (calls.fetch_add(1) > 0) return;  // only the first write is paused
    auto info = backend->describe(sd::dlock::Kind::kLock, "ticketing/" + std::to_string(v.event) +
                                                              "/" + std::to_string(seats[0]));
    REQUIRE(info);
    REQUIRE(info->holders.size() == 1);
    stale = info->holders[0].token;
    // The pause: our lease ends (expired / revoked) while we hold the token...
    REQUIRE(backend->revoke(session.lease_id()));
    // ...and a newer holder locks the seat, claims it and gives it back (row: available, newer
    // fence), all before we wake up.
    std::vector<SeatChange> ch;
    ClaimRequest r = claim_req(v, "h_newer", {seat}, kNow, 60'000, "bob");
    REQUIRE((*other)->claim(r, ch));
    REQUIRE((*other)->release("h_newer", HoldStatus::kCancelled, kNow, ch));
  };
  auto s = sd::ticketing::detail::make_dlock_strategy(*v.db, backend, {}, hooks);
  REQUIRE(s);

  std::vector<SeatChange> changes;
  auto r = (*s)->claim(claim_req(v, "h_stale", {seat}), changes);
  REQUIRE_FALSE(r);
  CHECK(r.status().code() == Code::kUnavailable);
  CHECK(r.status().message().find("was lost (fencing token") != std::string::npos);
  CHECK(changes.empty());
  CHECK((*s)->stats().fence_rejections == 1);
  auto row = raw_seat(*v.db, v.event, seat);
  CHECK(row.state == "available");  // the newer holder's write stands
  CHECK(row.fence > static_cast<int64_t>(stale));
  CHECK(query_int(*v.db, "SELECT COUNT(*) FROM holds WHERE id = 'h_stale'") == 0);

  // The strategy recovers: a fresh session, a fresh (higher) token, a successful claim.
  auto ok = (*s)->claim(claim_req(v, "h_fresh", {seat}), changes);
  REQUIRE(ok);
  CHECK(raw_seat(*v.db, v.event, seat).fence > row.fence);
  CHECK((*s)->stats().fence_rejections == 1);

  // A stale confirm is refused the same way and sells nothing. Here the newer holder's write is
  // simulated by stamping its token on the row directly (state unchanged), so that only the fence
  // clause of the confirm's UPDATE can refuse the stale write.
  calls = 0;
  sd::ticketing::detail::DlockHooks stamp;
  stamp.before_write = [&](sd::dlock::Session& session, const std::vector<SeatId>&) {
    if (calls.fetch_add(1) > 0) return;
    REQUIRE(backend->revoke(session.lease_id()));
    auto newer = sd::dlock::Session::create(backend);
    REQUIRE(newer);
    sd::dlock::Mutex m(*newer, "ticketing/" + std::to_string(v.event) + "/" + std::to_string(seat));
    auto t = m.try_lock();
    REQUIRE(t);
    REQUIRE(v.db->write([&](sd::storage::Db& w) {
      return w.exec("UPDATE event_seats SET fence = " + std::to_string(*t) +
                    " WHERE seat_id = " + std::to_string(seat));
    }));
    REQUIRE(m.unlock());
  };
  auto again = sd::ticketing::detail::make_dlock_strategy(*v.db, backend, {}, stamp);
  REQUIRE(again);
  auto sell = (*again)->confirm(confirm_req("h_fresh", "o_stale"), changes);
  REQUIRE_FALSE(sell);
  CHECK(sell.status().code() == Code::kUnavailable);
  CHECK((*again)->stats().fence_rejections == 1);
  CHECK(raw_seat(*v.db, v.event, seat).state == "held");
  CHECK(query_int(*v.db, "SELECT COUNT(*) FROM orders") == 0);
  CHECK(query_int(*v.db, "SELECT COUNT(*) FROM tickets") == 0);
  // Retried with a fresh lock, the confirm goes through.
  auto sold = (*again)->confirm(confirm_req("h_fresh", "o_fresh"), changes);
  REQUIRE(sold);
  CHECK(raw_seat(*v.db, v.event, seat).state == "sold");
}

TEST_CASE("strategy: dlock tokens from sqlite:// survive a reopen, memory:// ones do not",
          "[unit][strategy]") {
  sd::testing::TempDir dir;
  auto v = make_venue(dir);
  std::vector<SeatChange> changes;
  for (const std::string scheme : {"sqlite", "memory"}) {
    INFO(scheme);
    const SeatId seat = scheme == "sqlite" ? v.seats[0] : v.seats[1];
    const std::string hold = "h_" + scheme;
    {
      auto backend = open_locks(dir, scheme == "sqlite" ? "locks.db" : "");
      auto s = make_strategy(StrategyKind::kDlock, *v.db, backend);
      REQUIRE(s);
      // Several writes push the row's fence up.
      for (int i = 0; i < 3; ++i) {
        const std::string h = hold + std::to_string(i);
        REQUIRE((*s)->claim(claim_req(v, h, {seat}), changes));
        REQUIRE((*s)->release(h, HoldStatus::kCancelled, kNow, changes));
      }
      REQUIRE((*s)->claim(claim_req(v, hold, {seat}), changes));
    }
    const int64_t fence = raw_seat(*v.db, v.event, seat).fence;
    CHECK(fence >= 7);
    // "Restart": a new backend on the same lock store, a new strategy.
    auto backend = open_locks(dir, scheme == "sqlite" ? "locks.db" : "");
    auto s = make_strategy(StrategyKind::kDlock, *v.db, backend);
    REQUIRE(s);
    auto rel = (*s)->release(hold, HoldStatus::kCancelled, kNow, changes);
    if (scheme == "sqlite") {
      REQUIRE(rel);
      CHECK(raw_seat(*v.db, v.event, seat).fence > fence);
      CHECK((*s)->stats().fence_rejections == 0);
    } else {
      // memory:// restarted its counter at 1: every write to this seat is refused (safe, stuck).
      CHECK(rel.code() == Code::kUnavailable);
      CHECK((*s)->stats().fence_rejections == 1);
      CHECK(raw_seat(*v.db, v.event, seat).state == "held");
    }
  }
}

TEST_CASE("strategy: dlock answers seat_unavailable while another holder keeps the lock",
          "[unit][strategy]") {
  sd::testing::TempDir dir;
  auto v = make_venue(dir);
  auto backend = open_locks(dir, "locks.db");
  StrategyOptions opts;
  opts.lock_wait_ms = 20;
  auto s = make_strategy(StrategyKind::kDlock, *v.db, backend, opts);
  REQUIRE(s);
  auto session = sd::dlock::Session::create(backend);
  REQUIRE(session);
  sd::dlock::Mutex m(*session,
                     "ticketing/" + std::to_string(v.event) + "/" + std::to_string(v.seats[1]));
  REQUIRE(m.try_lock());
  std::vector<SeatChange> changes;
  auto r = (*s)->claim(claim_req(v, "h_1", {v.seats[0], v.seats[1]}), changes);
  REQUIRE_FALSE(r);
  CHECK(r.status().code() == Code::kConflict);
  CHECK(error_code(r.status()) == "seat_unavailable");
  CHECK((*s)->stats().lock_failures == 1);
  CHECK(raw_seat(*v.db, v.event, v.seats[0]).state == "available");
  // The first seat's lock was given back when the second was not granted.
  auto first = backend->describe(sd::dlock::Kind::kLock, "ticketing/" + std::to_string(v.event) +
                                                             "/" + std::to_string(v.seats[0]));
  REQUIRE(first);
  CHECK(first->holders.empty());
  REQUIRE(m.unlock());
  REQUIRE((*s)->claim(claim_req(v, "h_1", {v.seats[0], v.seats[1]}), changes));
}

TEST_CASE("strategy: optimistic retries a lost version race, then gives up", "[unit][strategy]") {
  sd::testing::TempDir dir;
  auto v = make_venue(dir);
  const SeatId seat = v.seats[0];
  std::atomic<int> bumps_left{1};
  sd::ticketing::detail::OptimisticHooks hooks;
  // Between the read and the write, someone else changes the seat (and leaves it available).
  hooks.after_read = [&](const std::vector<SeatId>& seats) {
    if (bumps_left.load() <= 0) return;
    --bumps_left;
    REQUIRE(v.db->write([&](sd::storage::Db& w) {
      return w.exec("UPDATE event_seats SET version = version + 1 WHERE seat_id = " +
                    std::to_string(seats.back()));
    }));
  };
  StrategyOptions opts;
  opts.optimistic_retries = 3;
  auto s = sd::ticketing::detail::make_optimistic_strategy(*v.db, opts, hooks);
  std::vector<SeatChange> changes;
  auto r = s->claim(claim_req(v, "h_1", {seat}), changes);
  REQUIRE(r);
  CHECK(s->stats().optimistic_retries == 1);
  CHECK(raw_seat(*v.db, v.event, seat).version == 2);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].version == 2);

  // Losing every race: retries exhausted -> seat_unavailable, nothing written.
  bumps_left = 100;
  changes.clear();
  auto lost = s->claim(claim_req(v, "h_2", {v.seats[1]}), changes);
  REQUIRE_FALSE(lost);
  CHECK(lost.status().code() == Code::kConflict);
  CHECK(error_code(lost.status()) == "seat_unavailable");
  CHECK(s->stats().optimistic_retries == 4);
  CHECK(bumps_left == 96);  // 1 try + 3 retries
  CHECK(changes.empty());
  CHECK(query_int(*v.db, "SELECT COUNT(*) FROM holds WHERE id = 'h_2'") == 0);
}

TEST_CASE("strategy: release_all releases the active holds of a batch in one go",
          "[unit][strategy]") {
  auto c = GENERATE(from_range(strategy_cases()));
  INFO(c.name);
  sd::testing::TempDir dir;
  auto v = make_venue(dir);
  std::shared_ptr<sd::dlock::Backend> backend;
  auto s = make_case(c, dir, *v.db, backend);
  const auto& seat = v.seats;
  std::vector<SeatChange> changes;
  REQUIRE(s->claim(claim_req(v, "h_1", {seat[0], seat[1]}, kNow, 1'000), changes));
  REQUIRE(s->claim(claim_req(v, "h_2", {seat[2]}, kNow, 1'000), changes));
  REQUIRE(s->claim(claim_req(v, "h_3", {seat[3]}, kNow, 1'000), changes));
  REQUIRE(s->claim(claim_req(v, "h_4", {seat[4]}, kNow, 60'000), changes));
  REQUIRE(s->release("h_3", HoldStatus::kCancelled, kNow, changes));  // no longer active
  // seat[1] of h_1 is taken over after expiry.
  REQUIRE(s->claim(claim_req(v, "h_5", {seat[1]}, kNow + 1'000, 60'000, "bob"), changes));
  changes.clear();
  auto r = s->release_all({"h_1", "h_2", "h_3", "h_missing"}, HoldStatus::kExpired, kNow + 1'000,
                          changes);
  REQUIRE(r);
  CHECK(*r == std::vector<std::string>{"h_1", "h_2"});
  REQUIRE(changes.size() == 2);  // seat[0] and seat[2]; seat[1] belongs to h_5 now
  for (const auto& ch : changes) CHECK(ch.state == SeatState::kAvailable);
  CHECK(hold_status(*v.db, "h_1") == "expired");
  CHECK(hold_status(*v.db, "h_2") == "expired");
  CHECK(hold_status(*v.db, "h_3") == "cancelled");
  CHECK(raw_seat(*v.db, v.event, seat[0]).state == "available");
  CHECK(raw_seat(*v.db, v.event, seat[1]).hold_id == "h_5");
  CHECK(raw_seat(*v.db, v.event, seat[2]).state == "available");
  CHECK(raw_seat(*v.db, v.event, seat[4]).hold_id == "h_4");
  auto none = s->release_all({"h_1", "h_2"}, HoldStatus::kExpired, kNow + 2'000, changes);
  REQUIRE(none);
  CHECK(none->empty());
}

TEST_CASE("strategy: dlock release_all falls back to one hold at a time around a busy lock",
          "[unit][strategy]") {
  sd::testing::TempDir dir;
  auto v = make_venue(dir);
  auto backend = open_locks(dir, "locks.db");
  StrategyOptions opts;
  opts.lock_wait_ms = 5;
  auto s = make_strategy(StrategyKind::kDlock, *v.db, backend, opts);
  REQUIRE(s);
  std::vector<SeatChange> changes;
  REQUIRE((*s)->claim(claim_req(v, "h_1", {v.seats[0]}), changes));
  REQUIRE((*s)->claim(claim_req(v, "h_2", {v.seats[1]}), changes));
  auto session = sd::dlock::Session::create(backend);
  REQUIRE(session);
  sd::dlock::Mutex m(*session,
                     "ticketing/" + std::to_string(v.event) + "/" + std::to_string(v.seats[1]));
  REQUIRE(m.try_lock());
  changes.clear();
  auto r = (*s)->release_all({"h_1", "h_2"}, HoldStatus::kExpired, kNow, changes);
  REQUIRE(r);
  CHECK(*r == std::vector<std::string>{"h_1"});  // h_2's seat is locked elsewhere: next sweep
  CHECK(hold_status(*v.db, "h_2") == "active");
  CHECK(raw_seat(*v.db, v.event, v.seats[1]).state == "held");
  REQUIRE(m.unlock());
  auto again = (*s)->release_all({"h_1", "h_2"}, HoldStatus::kExpired, kNow, changes);
  REQUIRE(again);
  CHECK(*again == std::vector<std::string>{"h_2"});
  CHECK(raw_seat(*v.db, v.event, v.seats[1]).state == "available");
}

TEST_CASE("strategy: dlock release_all leaves a hold whose seat is being taken over",
          "[unit][strategy]") {
  sd::testing::TempDir dir;
  auto v = make_venue(dir);
  auto backend = open_locks(dir, "locks.db");
  std::unique_ptr<SeatStrategy> s;
  std::atomic<bool> in_hook{false};
  std::vector<std::string> swept_meanwhile = {"unset"};
  sd::ticketing::detail::DlockHooks hooks;
  // While a claim holds the lock of the expired hold's seat, the sweeper's batch skips that hold
  // instead of waiting for the seat.
  hooks.before_write = [&](sd::dlock::Session&, const std::vector<SeatId>&) {
    if (in_hook.exchange(true)) return;
    std::vector<SeatChange> ch;
    auto r = s->release_all({"h_old"}, HoldStatus::kExpired, kNow + 2'000, ch);
    REQUIRE(r);
    swept_meanwhile = *r;
  };
  std::vector<SeatChange> changes;
  {
    auto plain = make_strategy(StrategyKind::kDlock, *v.db, backend);
    REQUIRE(plain);
    REQUIRE((*plain)->claim(claim_req(v, "h_old", {v.seats[0]}, kNow, 1'000), changes));
  }
  auto made = sd::ticketing::detail::make_dlock_strategy(*v.db, backend, {}, hooks);
  REQUIRE(made);
  s = std::move(*made);
  REQUIRE(s->claim(claim_req(v, "h_new", {v.seats[0]}, kNow + 2'000, 60'000, "bob"), changes));
  CHECK(swept_meanwhile.empty());
  CHECK(raw_seat(*v.db, v.event, v.seats[0]).hold_id == "h_new");
  CHECK(hold_status(*v.db, "h_old") == "expired");  // all its seats were taken over
}
