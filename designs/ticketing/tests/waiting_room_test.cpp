// WaitingRoom: FIFO admission, the active cap, the admission rate and burst (token bucket on a
// FakeClock), positions and ETAs, abandonment and expiry, leave/rejoin, the queue limit, a
// million-entry queue, and a randomized comparison with a naive model.

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "sd/base/clock.hpp"
#include "sd/base/ids.hpp"
#include "sd/ticketing/waiting_room.hpp"

using namespace sd;
using namespace sd::ticketing;
using namespace std::chrono_literals;

namespace {

WaitingRoomOptions opts(size_t max_active, double rate, double burst) {
  WaitingRoomOptions o;
  o.max_active = max_active;
  o.admit_per_second = rate;
  o.admit_burst = burst;
  o.active_ttl = Duration(10 * 60 * 1000);
  o.abandon_after = Duration(3600 * 1000);  // nobody is abandoned unless a test wants it
  return o;
}

QueueStatus join_ok(WaitingRoom& room, const std::string& customer) {
  auto r = room.join(customer);
  INFO(r.status().to_string());
  REQUIRE(r.is_ok());
  return *r;
}

QueueStatus status_ok(WaitingRoom& room, const std::string& ticket) {
  auto r = room.status(ticket);
  INFO(r.status().to_string());
  REQUIRE(r.is_ok());
  return *r;
}

}  // namespace

TEST_CASE("waiting room admits in FIFO order", "[unit][waiting_room]") {
  FakeClock clock;
  SeededIdGenerator ids(1);
  WaitingRoom room(clock, ids, opts(100, 10, 2));
  std::vector<std::string> tickets;
  for (int i = 0; i < 10; ++i) {
    auto st = join_ok(room, "c" + std::to_string(i));
    CHECK(st.state == QueueState::kWaiting);
    CHECK(st.position == static_cast<uint64_t>(i + 1));
    CHECK(st.ticket.rfind("q_", 0) == 0);
    tickets.push_back(st.ticket);
  }
  std::vector<std::string> admitted;
  for (int t = 0; t < 20 && admitted.size() < tickets.size(); ++t) {
    for (auto& a : room.tick()) admitted.push_back(a);
    clock.advance(100ms);
  }
  CHECK(admitted == tickets);
  for (size_t i = 0; i < tickets.size(); ++i) {
    CHECK(room.is_active(tickets[i], "c" + std::to_string(i)));
  }
}

TEST_CASE("waiting room never exceeds max_active", "[unit][waiting_room]") {
  FakeClock clock;
  SeededIdGenerator ids(2);
  WaitingRoom room(clock, ids, opts(3, 1000, 1000));
  std::vector<std::string> tickets;
  for (int i = 0; i < 10; ++i) tickets.push_back(join_ok(room, "c" + std::to_string(i)).ticket);
  CHECK(room.tick().size() == 3);
  clock.advance(1s);
  CHECK(room.tick().empty());
  auto s = room.stats();
  CHECK(s.active == 3);
  CHECK(s.waiting == 7);
  CHECK(s.joined == 10);
  CHECK(s.admitted == 3);
  REQUIRE(room.leave(tickets[1]).is_ok());
  auto next = room.tick();
  REQUIRE(next.size() == 1);
  CHECK(next[0] == tickets[3]);
  CHECK(room.stats().active == 3);
}

TEST_CASE("waiting room admission rate over a simulated minute", "[unit][waiting_room]") {
  SECTION("5 per second, ticks every 100 ms") {
    FakeClock clock;
    SeededIdGenerator ids(3);
    WaitingRoom room(clock, ids, opts(1'000'000, 5, 5));
    for (int i = 0; i < 1000; ++i) join_ok(room, "c" + std::to_string(i));
    size_t admitted = room.tick().size();  // t = 0: the full bucket
    CHECK(admitted == 5);
    for (int t = 1; t <= 600; ++t) {
      clock.advance(100ms);
      admitted += room.tick().size();
    }
    // 5 at t = 0, then one every 200 ms for 60 s.
    CHECK(admitted == 5 + 300);
    CHECK(room.stats().admitted == 305);
    CHECK(room.stats().waiting == 1000 - 305);
  }
  SECTION("3 per second, ticks every 70 ms") {
    FakeClock clock;
    SeededIdGenerator ids(4);
    WaitingRoom room(clock, ids, opts(1'000'000, 3, 2));
    for (int i = 0; i < 1000; ++i) join_ok(room, "c" + std::to_string(i));
    size_t admitted = room.tick().size();
    // Ticks at k * 70 ms up to 60 s: the last one at 59.99 s. The bucket is drained at every tick,
    // so admissions by time t are burst + floor(3 t).
    int64_t last_ms = 0;
    for (int64_t t = 70; t <= 60'000; t += 70) {
      clock.advance(70ms);
      admitted += room.tick().size();
      last_ms = t;
    }
    CHECK(last_ms == 59'990);
    CHECK(admitted == 2 + 179);
  }
}

TEST_CASE("waiting room burst after an idle period", "[unit][waiting_room]") {
  FakeClock clock;
  SeededIdGenerator ids(5);
  WaitingRoom room(clock, ids, opts(1000, 1, 5));
  CHECK(room.tick().empty());
  clock.advance(10s);  // the bucket fills up to the burst, not beyond
  CHECK(room.tick().empty());
  for (int i = 0; i < 20; ++i) join_ok(room, "c" + std::to_string(i));
  CHECK(room.tick().size() == 5);
  CHECK(room.tick().empty());
  clock.advance(999ms);
  CHECK(room.tick().empty());
  clock.advance(1ms);
  CHECK(room.tick().size() == 1);
}

TEST_CASE("waiting room ETA is monotone in position and sane", "[unit][waiting_room]") {
  SECTION("room with free slots: position / rate") {
    FakeClock clock;
    SeededIdGenerator ids(6);
    WaitingRoom room(clock, ids, opts(1000, 10, 10));
    std::vector<std::string> tickets;
    for (int i = 0; i < 100; ++i) tickets.push_back(join_ok(room, "c" + std::to_string(i)).ticket);
    int64_t prev = -1;
    for (size_t i = 0; i < tickets.size(); ++i) {
      auto st = status_ok(room, tickets[i]);
      CHECK(st.position == i + 1);
      CHECK(st.eta_ms == static_cast<int64_t>((i + 1) * 100));  // p / 10 per second
      CHECK(st.eta_ms >= prev);
      prev = st.eta_ms;
    }
    // A waiter's ETA only goes down as the queue drains.
    const std::string& last = tickets.back();
    int64_t last_eta = status_ok(room, last).eta_ms;
    for (int t = 0; t < 50; ++t) {
      room.tick();
      clock.advance(100ms);
      auto st = status_ok(room, last);
      if (st.state != QueueState::kWaiting) break;
      CHECK(st.eta_ms <= last_eta);
      last_eta = st.eta_ms;
    }
  }
  SECTION("full room: limited by the exit rate, floored at max_active / ttl") {
    FakeClock clock;
    SeededIdGenerator ids(7);
    auto o = opts(10, 10, 10);
    o.active_ttl = Duration(60'000);
    WaitingRoom room(clock, ids, o);
    std::vector<std::string> shoppers;
    for (int i = 0; i < 10; ++i) shoppers.push_back(join_ok(room, "s" + std::to_string(i)).ticket);
    REQUIRE(room.tick().size() == 10);
    std::vector<std::string> waiters;
    for (int i = 0; i < 20; ++i) waiters.push_back(join_ok(room, "w" + std::to_string(i)).ticket);
    // Nobody has left yet: the room turns over at least every TTL: 10 / 60 s.
    CHECK(status_ok(room, waiters[0]).eta_ms == 6000);
    CHECK(status_ok(room, waiters[19]).eta_ms == 120'000);
    // Half the shoppers leave after 5 s: 5 exits over the 5 s the room has run -> 1 per second.
    clock.advance(5s);
    for (int i = 0; i < 5; ++i) REQUIRE(room.leave(shoppers[static_cast<size_t>(i)]).is_ok());
    // 5 slots are free now: the first 5 waiters at 10/s, the rest at min(10, 5 exits / 5 s = 1).
    auto w0 = status_ok(room, waiters[0]);
    CHECK(w0.eta_ms == 100);
    auto w9 = status_ok(room, waiters[9]);
    // 5 / 10 + 5 / max(1, 10 / 60) = 0.5 + 5 = 5.5 s
    CHECK(w9.eta_ms == 5500);
    CHECK(w9.eta_ms >= w0.eta_ms);
  }
  SECTION("no admission at all: a capped, finite ETA") {
    FakeClock clock;
    SeededIdGenerator ids(8);
    WaitingRoom room(clock, ids, opts(0, 10, 10));
    auto st = join_ok(room, "a");
    CHECK(st.eta_ms > 24LL * 3600 * 1000);
    CHECK(room.tick().empty());
  }
}

TEST_CASE("waiting room positions after departures", "[unit][waiting_room]") {
  FakeClock clock;
  SeededIdGenerator ids(9);
  WaitingRoom room(clock, ids, opts(100, 10, 2));
  std::vector<std::string> t;
  for (int i = 0; i < 10; ++i) t.push_back(join_ok(room, "c" + std::to_string(i)).ticket);
  REQUIRE(room.leave(t[2]).is_ok());
  REQUIRE(room.leave(t[6]).is_ok());
  CHECK(status_ok(room, t[9]).position == 8);
  CHECK(status_ok(room, t[3]).position == 3);
  CHECK(status_ok(room, t[2]).state == QueueState::kLeft);
  CHECK(status_ok(room, t[2]).position == 0);
  CHECK(room.tick().size() == 2);  // t[0], t[1]
  CHECK(status_ok(room, t[3]).position == 1);
  CHECK(status_ok(room, t[9]).position == 6);
  auto active = status_ok(room, t[0]);
  CHECK(active.state == QueueState::kActive);
  CHECK(active.position == 0);
  CHECK(active.eta_ms == 0);
  CHECK(active.active_left_ms == 10 * 60 * 1000);
  CHECK(room.stats().waiting == 6);
  CHECK(room.stats().left == 2);
}

TEST_CASE("waiting room drops waiters who stop polling", "[unit][waiting_room]") {
  FakeClock clock;
  SeededIdGenerator ids(10);
  auto o = opts(100, 10, 10);
  o.abandon_after = Duration(30'000);
  WaitingRoom room(clock, ids, o);
  auto a = join_ok(room, "a").ticket;
  auto b = join_ok(room, "b").ticket;
  auto c = join_ok(room, "c").ticket;
  clock.advance(20s);
  status_ok(room, a);  // a polls
  join_ok(room, "c");  // re-joining counts as a poll too
  clock.advance(10s);  // b: 30 s without a poll
  auto st_a = status_ok(room, a);
  CHECK(st_a.state == QueueState::kWaiting);
  CHECK(st_a.position == 1);
  CHECK(status_ok(room, c).position == 2);
  auto st_b = status_ok(room, b);
  CHECK(st_b.state == QueueState::kExpired);
  CHECK(room.stats().abandoned == 1);
  CHECK(room.stats().waiting == 2);
  // b's final state stays readable for abandon_after, then the ticket is forgotten.
  clock.advance(30s);
  room.tick();
  CHECK(room.status(b).status().code() == Code::kNotFound);
  // b may join again and gets a new ticket at the back of the queue.
  clock.advance(1ms);
  auto b2 = join_ok(room, "b");
  CHECK(b2.ticket != b);
}

TEST_CASE("waiting room expires active shoppers after the TTL", "[unit][waiting_room]") {
  FakeClock clock;
  SeededIdGenerator ids(11);
  auto o = opts(1, 10, 10);
  o.active_ttl = Duration(10'000);
  WaitingRoom room(clock, ids, o);
  auto a = join_ok(room, "a").ticket;
  auto b = join_ok(room, "b").ticket;
  REQUIRE(room.tick() == std::vector<std::string>{a});
  CHECK(room.is_active(a, "a"));
  CHECK_FALSE(room.is_active(a, "b"));  // someone else's ticket
  CHECK_FALSE(room.is_active(b, "b"));
  clock.advance(9999ms);
  CHECK(room.is_active(a, "a"));
  CHECK(status_ok(room, a).active_left_ms == 1);
  clock.advance(1ms);
  CHECK_FALSE(room.is_active(a, "a"));  // even before tick() runs
  REQUIRE(room.tick() == std::vector<std::string>{b});
  CHECK(status_ok(room, a).state == QueueState::kExpired);
  CHECK(room.stats().expired == 1);
  CHECK(room.stats().active == 1);
}

TEST_CASE("waiting room leave frees the slot", "[unit][waiting_room]") {
  FakeClock clock;
  SeededIdGenerator ids(12);
  WaitingRoom room(clock, ids, opts(1, 100, 100));
  auto a = join_ok(room, "a").ticket;
  auto b = join_ok(room, "b").ticket;
  REQUIRE(room.tick() == std::vector<std::string>{a});
  CHECK(room.tick().empty());
  REQUIRE(room.leave(a).is_ok());
  CHECK_FALSE(room.is_active(a, "a"));
  CHECK(room.leave(a).is_ok());  // idempotent
  REQUIRE(room.tick() == std::vector<std::string>{b});
  CHECK(room.leave("q_nope").code() == Code::kNotFound);
  auto s = room.stats();
  CHECK(s.left == 1);
  CHECK(s.active == 1);
  CHECK(s.waiting == 0);
}

TEST_CASE("waiting room join is idempotent per customer", "[unit][waiting_room]") {
  FakeClock clock;
  SeededIdGenerator ids(13);
  WaitingRoom room(clock, ids, opts(10, 10, 10));
  auto first = join_ok(room, "alice");
  auto again = join_ok(room, "alice");
  CHECK(again.ticket == first.ticket);
  CHECK(again.state == QueueState::kWaiting);
  CHECK(room.stats().joined == 1);
  room.tick();
  auto active = join_ok(room, "alice");
  CHECK(active.ticket == first.ticket);
  CHECK(active.state == QueueState::kActive);
  REQUIRE(room.leave(first.ticket).is_ok());
  auto fresh = join_ok(room, "alice");
  CHECK(fresh.ticket != first.ticket);
  CHECK(fresh.state == QueueState::kWaiting);
  CHECK(room.join("").status().code() == Code::kInvalidArgument);
}

TEST_CASE("waiting room refuses joins beyond max_queue", "[unit][waiting_room]") {
  FakeClock clock;
  SeededIdGenerator ids(14);
  auto o = opts(10, 10, 1);
  o.max_queue = 3;
  WaitingRoom room(clock, ids, o);
  for (int i = 0; i < 3; ++i) join_ok(room, "c" + std::to_string(i));
  auto full = room.join("late");
  REQUIRE_FALSE(full.is_ok());
  CHECK(full.status().code() == Code::kResourceExhausted);
  CHECK(full.status().message().rfind("queue_full: ", 0) == 0);
  join_ok(room, "c1");  // already in the queue: still fine
  REQUIRE(room.tick().size() == 1);
  join_ok(room, "late");
}

TEST_CASE("waiting room with a million waiters answers positions quickly", "[unit][waiting_room]") {
  FakeClock clock;
  SeededIdGenerator ids(15);
  WaitingRoom room(clock, ids, opts(100, 1000, 100));
  constexpr int kN = 1'000'000;
  std::vector<std::string> tickets;
  tickets.reserve(kN);
  int failures = 0;
  for (int i = 0; i < kN; ++i) {
    auto r = room.join("c" + std::to_string(i));
    if (!r.is_ok()) {
      ++failures;
      continue;
    }
    tickets.push_back(std::move(r->ticket));
  }
  REQUIRE(failures == 0);
  CHECK(room.stats().waiting == kN);
  CHECK(room.join("one-too-many").status().code() == Code::kResourceExhausted);
  // Every 1000th waiter leaves.
  for (int i = 0; i < kN; i += 1000) REQUIRE(room.leave(tickets[static_cast<size_t>(i)]).is_ok());
  REQUIRE(room.tick().size() == 100);  // the burst: waiters 1..100 (0 left)
  // Waiter i (not a multiple of 1000) is behind i - i/1000 - 1 remaining others... minus 100.
  auto expected = [](uint64_t i) { return i - (i / 1000 + 1) - 100 + 1; };
  for (uint64_t i : {101ull, 999ull, 1001ull, 500'001ull, 999'999ull}) {
    CHECK(status_ok(room, tickets[i]).position == expected(i));
  }
  // Many position queries: each is O(log n).
  uint64_t sum = 0;
  int bad = 0;
  for (int q = 0; q < 100'000; ++q) {
    auto r = room.status(tickets[static_cast<size_t>(kN - 1 - q * 7 % 900'000)]);
    if (!r.is_ok())
      ++bad;
    else
      sum += r->position;
  }
  CHECK(bad == 0);
  CHECK(sum > 0);
}

TEST_CASE("waiting room matches a naive model under random operations", "[unit][waiting_room]") {
  FakeClock clock;
  SeededIdGenerator ids(16);
  auto o = opts(20, 50, 5);
  o.active_ttl = Duration(3000);
  o.abandon_after = Duration(1'000'000);
  WaitingRoom room(clock, ids, o);
  std::mt19937_64 rng(42);
  std::vector<std::string> model;  // waiting tickets in queue order
  int next_customer = 0;
  for (int step = 0; step < 20'000; ++step) {
    const auto op = rng() % 10;
    if (op < 5) {
      auto st = join_ok(room, "c" + std::to_string(next_customer++));
      model.push_back(st.ticket);
    } else if (op < 7 && !model.empty()) {
      const size_t k = rng() % model.size();
      REQUIRE(room.leave(model[k]).is_ok());
      model.erase(model.begin() + static_cast<std::ptrdiff_t>(k));
    } else if (op < 9) {
      clock.advance(std::chrono::milliseconds(rng() % 100));
      for (const auto& t : room.tick()) {
        REQUIRE_FALSE(model.empty());
        REQUIRE(t == model.front());
        model.erase(model.begin());
      }
    } else if (!model.empty()) {
      const size_t k = rng() % model.size();
      REQUIRE(status_ok(room, model[k]).position == k + 1);
    }
    REQUIRE(room.stats().waiting == model.size());
    REQUIRE(room.stats().active <= 20);
  }
  for (size_t k = 0; k < model.size(); ++k) CHECK(status_ok(room, model[k]).position == k + 1);
}

TEST_CASE("waiting room is safe under concurrent use", "[unit][waiting_room]") {
  FakeClock clock;
  SeededIdGenerator ids(17);
  WaitingRoom room(clock, ids, opts(50, 1000, 1000));
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        auto st = room.join("t" + std::to_string(t) + "-" + std::to_string(i % 250));
        if (!st.is_ok()) {
          ++errors;
          continue;
        }
        if (!room.status(st->ticket).is_ok()) ++errors;
        if (i % 50 == 0) room.tick();
        if (i % 7 == 0 && !room.leave(st->ticket).is_ok()) ++errors;
        clock.advance(1ms);
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(errors == 0);
  auto s = room.stats();
  CHECK(s.active <= 50);
  CHECK(s.joined == s.waiting + s.active + s.left + s.expired + s.abandoned);
}
