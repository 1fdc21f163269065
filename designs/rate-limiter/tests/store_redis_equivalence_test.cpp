// The proof that the redis:// store's Lua scripts mirror the in-memory algorithms bit for bit:
// the same seeded trace (several keys and limits, gaps from 0 to 2 periods, costs 0..3 and some
// that can never pass, 1-3 items per call) through memory:// and redis:// with client time gives
// identical Decisions, every field.

#include <catch2/catch.hpp>

#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "store_test_util.hpp"

using namespace std::chrono_literals;
using namespace sd;
using namespace sd::ratelimit;

namespace {

std::string show(const Decision& d) {
  std::ostringstream o;
  o << "{allowed=" << d.allowed << " limit=" << d.limit << " remaining=" << d.remaining
    << " reset=" << d.reset_after.count() << " retry=" << d.retry_after.count()
    << " delay=" << d.delay.count() << "}";
  return o.str();
}

bool same(const Decision& a, const Decision& b) {
  return a.allowed == b.allowed && a.limit == b.limit && a.remaining == b.remaining &&
         a.reset_after == b.reset_after && a.retry_after == b.retry_after && a.delay == b.delay;
}

bool is_window(Algorithm a) {
  return a == Algorithm::kFixedWindow || a == Algorithm::kSlidingLog ||
         a == Algorithm::kSlidingWindow;
}

// Limits per algorithm: periods long enough that Redis's real-time PEXPIRE (derived from the
// trace's fake time) never fires during the test; odd periods (fractional µs, P/R not exact).
std::vector<Limit> limits_for(Algorithm a) {
  const Nanos odd = 777'777'777'777ns;  // P = 777777777.777 µs
  std::vector<Limit> out{{.requests = 5, .period = 10min},
                         {.requests = 7, .period = odd},
                         {.requests = 50, .period = 1h}};
  if (!is_window(a)) {
    out.push_back({.requests = 3, .period = 20min, .burst = 8});
    out.push_back({.requests = 10, .period = odd, .burst = 2});
  }
  return out;
}

}  // namespace

TEST_CASE("redis store: Lua scripts give the in-memory decisions bit for bit", "[integration]") {
  testing::TempDir dir("sd-rl-store");
  auto redis = test::start_redis(dir);
  FakeClock clock;
  StoreOptions o;
  o.clock = &clock;
  o.redis_client_time = true;
  auto mem = test::open("memory://", o);
  auto red = test::open(test::redis_uri(*redis, "?timeout_ms=2000&prefix=eq:"), o);

  const std::vector<std::string> keys{"alice", "carol:1"};
  size_t compared = 0, allowed = 0, denied = 0, never = 0, delayed = 0;
  for (Algorithm a : kAllAlgorithms) {
    const std::vector<Limit> limits = limits_for(a);
    std::mt19937_64 rng(0x5eed + static_cast<int>(a));
    int requests = 0;
    size_t algo_allowed = 0, algo_denied = 0;
    while (requests < 3000) {
      // Gap: none (50%), up to 1 s (30%), 30 s (15%), 5 min (4%) or 20 min = 2 periods of the
      // shortest limit (1%): bursts that hit the limits, and pauses that refill them.
      const double u = std::uniform_real_distribution<double>(0, 1)(rng);
      const int pick = static_cast<int>(rng() % 100);
      const double max_gap_s = pick < 50   ? 0
                               : pick < 80 ? 1
                               : pick < 95 ? 30
                               : pick < 99 ? 300
                                           : 1200;
      clock.advance(Nanos(static_cast<int64_t>(max_gap_s * 1e9 * u)));
      const size_t n = 1 + rng() % 3;
      std::vector<StoreItem> items;
      for (size_t i = 0; i < n; ++i) {
        const Limit& l = limits[rng() % limits.size()];
        uint64_t cost = 1 + rng() % 3;
        if (rng() % 20 == 0) cost = 0;                 // report only
        if (rng() % 50 == 0) cost = l.requests + 100;  // more than the limit ever admits
        items.push_back(test::item(a, l, keys[rng() % keys.size()], cost));
      }
      requests += static_cast<int>(n);
      auto m = mem->decide(items);
      auto r = red->decide(items);
      REQUIRE(m.is_ok());
      INFO(r.status().message());
      REQUIRE(r.is_ok());
      REQUIRE(r->size() == n);
      for (size_t i = 0; i < n; ++i) {
        INFO(algorithm_name(a) << " request " << requests << " key " << items[i].key << " cost "
                               << items[i].cost << " requests " << items[i].limit.requests
                               << " burst " << items[i].limit.burst);
        INFO("memory " << show((*m)[i]) << "\nredis  " << show((*r)[i]));
        REQUIRE(same((*m)[i], (*r)[i]));
        ++compared;
        allowed += (*m)[i].allowed;
        algo_allowed += (*m)[i].allowed;
        algo_denied += !(*m)[i].allowed;
        denied += !(*m)[i].allowed;
        never += (*m)[i].retry_after == Nanos::max();
        delayed += (*m)[i].delay > Nanos{0};
      }
    }
    INFO(algorithm_name(a));
    CHECK(algo_allowed > 300);  // both branches of every script were compared many times
    CHECK(algo_denied > 300);
  }
  // The trace exercised every branch kind (a trace that never denies would prove little).
  CHECK(compared >= 7 * 3000);
  CHECK(allowed > compared / 5);
  CHECK(denied > compared / 5);
  CHECK(never > 100);
  CHECK(delayed > 50);
  WARN("equivalence: " << compared << " decisions compared (" << allowed << " allowed, " << denied
                       << " denied, " << never << " never, " << delayed << " delayed)");
}
