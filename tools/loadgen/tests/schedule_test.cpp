#include <catch2/catch.hpp>

#include <vector>

#include "sd/base/clock.hpp"
#include "sd/loadgen/schedule.hpp"

using namespace sd::loadgen;
using namespace std::chrono_literals;

TEST_CASE("open-loop schedule spreads arrivals evenly over connections", "[unit]") {
  SteadyTime start{std::chrono::hours(1)};
  OpenLoopSchedule s(1000.0, 4, start);  // 1 op/ms in total, 4 ms per connection
  REQUIRE(s.period() == 4ms);
  for (uint32_t c = 0; c < 4; ++c)
    for (uint64_t k = 0; k < 100; ++k)
      REQUIRE(s.intended(c, k) == start + std::chrono::milliseconds(4 * k + c));
  // No drift after many ops even when the period is not a whole number of nanoseconds.
  OpenLoopSchedule odd(3.0, 1, start);
  REQUIRE(odd.intended(0, 3'000'000) == start + std::chrono::seconds(1'000'000));
}

TEST_CASE("open-loop pacer records queueing delay behind a stall", "[unit]") {
  // One connection at 100 ops/s (10 ms apart); each op takes 1 ms except op 3, which stalls for
  // 55 ms. Time comes from a FakeClock; "sending" just advances it.
  sd::FakeClock clock;
  const SteadyTime start = clock.now();
  OpenLoopSchedule s(100.0, 1, start);
  ConnectionPacer pacer(s, 0);
  std::vector<long long> open_ms, closed_ms;
  for (int k = 0; k < 10; ++k) {
    SteadyTime send = pacer.send_time(clock.now());
    clock.set(send);  // wait for the intended time (or not at all when behind)
    clock.advance(k == 3 ? 55ms : 1ms);
    SteadyTime done = clock.now();
    open_ms.push_back(
        std::chrono::duration_cast<std::chrono::milliseconds>(pacer.complete(done)).count());
    closed_ms.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(done - send).count());
  }
  // Op 3 was intended at 30 ms and finished at 85 ms. Ops 4..8 were intended at 40..80 ms but
  // could only be sent at 85, 86, ... : their latency includes the wait. Op 9 (90 ms) is on time.
  REQUIRE(open_ms == std::vector<long long>{1, 1, 1, 55, 46, 37, 28, 19, 10, 1});
  // Measuring from the actual send (what a closed-loop tool does) hides all but the stalled op.
  REQUIRE(closed_ms == std::vector<long long>{1, 1, 1, 55, 1, 1, 1, 1, 1, 1});
  REQUIRE(pacer.sent() == 10);
}

TEST_CASE("pacer never reports negative latency and never sends early", "[unit]") {
  SteadyTime start{std::chrono::hours(2)};
  OpenLoopSchedule s(10.0, 2, start);
  ConnectionPacer p(s, 1);
  REQUIRE(p.next_intended() == start + 100ms);
  REQUIRE(p.send_time(start) == start + 100ms);          // early: wait for the slot
  REQUIRE(p.send_time(start + 150ms) == start + 150ms);  // late: send now
  REQUIRE(p.complete(start) == std::chrono::nanoseconds(0));
  REQUIRE(p.next_intended() == start + 300ms);
}
