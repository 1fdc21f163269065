// Hand-made examples with exact remaining / reset_after / retry_after for every algorithm, and the
// property that retry_after is the earliest wait: 1µs earlier is still denied, at it the request
// passes (checked over seeded traces with limits whose arithmetic is exact in doubles).

#include <memory>

#include "algorithm_test_util.hpp"

namespace sd::ratelimit {
namespace {

using namespace testutil;

// Window-aligned start (a multiple of 1s) so window examples read naturally.
constexpr int64_t kT0 = kStartUs;

void check_decision(const Decision& d, bool allowed, uint64_t remaining, Nanos reset, Nanos retry) {
  INFO(d);
  CHECK(d.allowed == allowed);
  CHECK(d.remaining == remaining);
  CHECK(d.reset_after == reset);
  CHECK(d.retry_after == retry);
}

// Token bucket, leaky bucket (meter) and GCRA agree on this example: 10/s, burst 10.
TEST_CASE("bucket examples: drain a burst then refill", "[unit]") {
  for (Algorithm a : {Algorithm::kTokenBucket, Algorithm::kLeakyBucket, Algorithm::kGcra}) {
    INFO(algorithm_name(a));
    auto l = make_limiter(a, {.requests = 10, .period = 1s});
    check_decision(l->decide("k", 0, at_us(kT0)), true, 10, 0ms, 0ms);
    for (uint64_t i = 1; i <= 10; ++i) {
      check_decision(l->decide("k", 1, at_us(kT0)), true, 10 - i, i * 100ms, 0ms);
    }
    check_decision(l->decide("k", 1, at_us(kT0)), false, 0, 1s, 100ms);
    check_decision(l->decide("k", 3, at_us(kT0)), false, 0, 1s, 300ms);
    check_decision(l->decide("k", 11, at_us(kT0)), false, 0, 1s, Nanos::max());
    // 1µs before the retry time still denied, at it allowed.
    // (0.99999 tokens: the exact retry would be 1µs; doubles may round it to 2µs, so only the
    // decision is checked here — the exact-arithmetic test below checks the earliest retry.)
    CHECK_FALSE(l->decide("k", 1, at_us(kT0 + 99'999)).allowed);
    check_decision(l->decide("k", 1, at_us(kT0 + 100'000)), true, 0, 1s, 0ms);
    // Half a second idle refills 5.
    check_decision(l->decide("k", 2, at_us(kT0 + 600'000)), true, 3, 700ms, 0ms);
    // A long idle: back to a full bucket.
    check_decision(l->decide("k", 1, at_us(kT0 + 60'000'000)), true, 9, 100ms, 0ms);
    CHECK(l->evict_idle(at_us(kT0 + 60'099'999)) == 0);
    CHECK(l->evict_idle(at_us(kT0 + 60'100'000)) == 1);
  }
}

TEST_CASE("bucket examples: burst larger and smaller than the rate", "[unit]") {
  for (Algorithm a : {Algorithm::kTokenBucket, Algorithm::kLeakyBucket, Algorithm::kGcra}) {
    INFO(algorithm_name(a));
    auto big = make_limiter(a, {.requests = 4, .period = 1s, .burst = 8});
    check_decision(big->decide("k", 8, at_us(kT0)), true, 0, 2s, 0ms);
    check_decision(big->decide("k", 1, at_us(kT0)), false, 0, 2s, 250ms);
    auto small = make_limiter(a, {.requests = 100, .period = 1s, .burst = 2});
    check_decision(small->decide("k", 1, at_us(kT0)), true, 1, 10ms, 0ms);
    check_decision(small->decide("k", 1, at_us(kT0)), true, 0, 20ms, 0ms);
    check_decision(small->decide("k", 1, at_us(kT0 + 5'000)), false, 0, 15ms, 5ms);
    check_decision(small->decide("k", 3, at_us(kT0 + 5'000)), false, 0, 15ms, Nanos::max());
  }
}

// redis-cell README: CL.THROTTLE user123 15 30 60 -> limit 16, remaining 15, retry -1, reset 2.
// Our limit field is the requests per period (30); the rest matches.
TEST_CASE("gcra matches redis-cell's documented example", "[unit]") {
  auto l = make_limiter(Algorithm::kGcra, {.requests = 30, .period = 60s, .burst = 16});
  Decision d = l->decide("user123", 1, at_us(kT0));
  check_decision(d, true, 15, 2s, 0s);
  CHECK(d.limit == 30);
  for (int i = 0; i < 15; ++i) REQUIRE(l->decide("user123", 1, at_us(kT0)).allowed);
  check_decision(l->decide("user123", 1, at_us(kT0)), false, 0, 32s, 2s);
}

TEST_CASE("fixed window example: quota per window and the boundary burst", "[unit]") {
  auto l = make_limiter(Algorithm::kFixedWindow, {.requests = 3, .period = 1s});
  const int64_t t = kT0 + 250'000;
  check_decision(l->decide("k", 0, at_us(t)), true, 3, 750ms, 0ms);
  check_decision(l->decide("k", 1, at_us(t)), true, 2, 750ms, 0ms);
  check_decision(l->decide("k", 2, at_us(t)), true, 0, 750ms, 0ms);
  check_decision(l->decide("k", 1, at_us(t)), false, 0, 750ms, 750ms);
  check_decision(l->decide("k", 4, at_us(t)), false, 0, 750ms, Nanos::max());
  check_decision(l->decide("k", 1, at_us(kT0 + 999'999)), false, 0, us(1), us(1));
  check_decision(l->decide("k", 1, at_us(kT0 + 1'000'000)), true, 2, 1s, 0ms);
  // The known weakness: 3 at the end of one window and 3 at the start of the next, 2µs apart.
  auto edge = make_limiter(Algorithm::kFixedWindow, {.requests = 3, .period = 1s});
  CHECK(edge->decide("k", 3, at_us(kT0 + 999'999)).allowed);
  CHECK(edge->decide("k", 3, at_us(kT0 + 1'000'001)).allowed);
  CHECK(edge->evict_idle(at_us(kT0 + 1'999'999)) == 0);
  CHECK(edge->evict_idle(at_us(kT0 + 2'000'000)) == 1);
}

TEST_CASE("sliding log example: exact trailing window and the earliest retry", "[unit]") {
  auto l = make_limiter(Algorithm::kSlidingLog, {.requests = 3, .period = 1s});
  check_decision(l->decide("k", 0, at_us(kT0)), true, 3, 0ms, 0ms);
  check_decision(l->decide("k", 1, at_us(kT0)), true, 2, 1s, 0ms);
  check_decision(l->decide("k", 1, at_us(kT0 + 100'000)), true, 1, 1s, 0ms);
  check_decision(l->decide("k", 1, at_us(kT0 + 200'000)), true, 0, 1s, 0ms);
  check_decision(l->decide("k", 1, at_us(kT0 + 300'000)), false, 0, 900ms, 700ms);
  // Cost 2 needs the two oldest entries gone.
  check_decision(l->decide("k", 2, at_us(kT0 + 300'000)), false, 0, 900ms, 800ms);
  check_decision(l->decide("k", 4, at_us(kT0 + 300'000)), false, 0, 900ms, Nanos::max());
  check_decision(l->decide("k", 1, at_us(kT0 + 999'999)), false, 0, us(200'001), us(1));
  // An entry counts while its time > t - P: the one at kT0 stops counting at kT0 + 1s.
  check_decision(l->decide("k", 1, at_us(kT0 + 1'000'000)), true, 0, 1s, 0ms);
  check_decision(l->decide("k", 2, at_us(kT0 + 1'000'000)), false, 0, 1s, 200ms);
  CHECK(l->evict_idle(at_us(kT0 + 1'999'999)) == 0);
  CHECK(l->evict_idle(at_us(kT0 + 2'000'000)) == 1);
}

TEST_CASE("sliding window example: weighted previous window", "[unit]") {
  auto l = make_limiter(Algorithm::kSlidingWindow, {.requests = 10, .period = 1s});
  // 10 at the last µs of window 0, nothing else.
  CHECK(l->decide("k", 10, at_us(kT0 + 999'999)).allowed);
  // At 250ms into window 1 the estimate is 10 * 0.75 = 7.5: two more fit, a third does not.
  const int64_t w1 = kT0 + 1'000'000;
  check_decision(l->decide("k", 1, at_us(w1 + 250'000)), true, 1, 1750ms, 0ms);
  check_decision(l->decide("k", 1, at_us(w1 + 250'000)), true, 0, 1750ms, 0ms);
  // Third: needs 10 * weight + 2 + 1 <= 10, weight <= 0.7 -> 300ms into the window.
  check_decision(l->decide("k", 1, at_us(w1 + 250'000)), false, 0, 1750ms, 50ms);
  CHECK_FALSE(l->decide("k", 1, at_us(w1 + 299'999)).allowed);
  CHECK(l->decide("k", 1, at_us(w1 + 300'000)).allowed);
  // cur = 3 now; cost 8 cannot fit in window 1 (3 + 8 > 10): in window 2 prev' = 3 and
  // 3 * weight + 8 <= 10 needs weight <= 2/3, i.e. 1/3 of the way into window 2.
  Decision d = l->decide("k", 8, at_us(w1 + 300'000));
  CHECK_FALSE(d.allowed);
  CHECK(d.retry_after == us(1'000'000 - 300'000 + 333'334));
  // The counter's over-admission: 10 at the end of window 0 plus, by the end of window 1, nearly
  // 10 more — up to 2R in one trailing period (the log never exceeds R).
  auto o = make_limiter(Algorithm::kSlidingWindow, {.requests = 10, .period = 1s});
  CHECK(o->decide("k", 10, at_us(kT0 + 999'999)).allowed);
  CHECK(o->decide("k", 9, at_us(w1 + 999'000)).allowed);
  // A key is fresh again once both of its windows are over: two windows after its last one.
  auto e = make_limiter(Algorithm::kSlidingWindow, {.requests = 10, .period = 1s});
  CHECK(e->decide("k", 1, at_us(kT0 + 400'000)).allowed);
  CHECK(e->evict_idle(at_us(kT0 + 1'999'999)) == 0);
  CHECK(e->evict_idle(at_us(kT0 + 2'000'000)) == 1);
  auto log = make_limiter(Algorithm::kSlidingLog, {.requests = 10, .period = 1s});
  CHECK(log->decide("k", 10, at_us(kT0 + 999'999)).allowed);
  CHECK_FALSE(log->decide("k", 1, at_us(w1 + 999'000)).allowed);
}

TEST_CASE("leaky queue example: delays and the nginx burst", "[unit]") {
  // nginx: rate=10r/s burst=5 (no nodelay): 6 at once are served at 0, 100, ..., 500ms; the 7th
  // is rejected.
  auto l = make_limiter(Algorithm::kLeakyQueue, {.requests = 10, .period = 1s, .burst = 5});
  Decision fresh = l->decide("k", 0, at_us(kT0));
  CHECK(fresh.remaining == 6);
  for (int i = 0; i < 6; ++i) {
    Decision d = l->decide("k", 1, at_us(kT0));
    INFO(i << " " << d);
    CHECK(d.allowed);
    CHECK(d.delay == i * 100ms);
    CHECK(d.remaining == static_cast<uint64_t>(5 - i));
    CHECK(d.reset_after == (i + 1) * 100ms);
  }
  Decision seventh = l->decide("k", 1, at_us(kT0));
  check_decision(seventh, false, 0, 600ms, 100ms);
  CHECK(seventh.delay == 0ms);
  CHECK_FALSE(l->decide("k", 1, at_us(kT0 + 99'999)).allowed);
  Decision later = l->decide("k", 1, at_us(kT0 + 100'000));
  CHECK(later.allowed);
  CHECK(later.delay == 500ms);
  // burst = 0: one at a time, the second at once is rejected.
  auto strict = make_limiter(Algorithm::kLeakyQueue, {.requests = 10, .period = 1s});
  check_decision(strict->decide("k", 1, at_us(kT0)), true, 0, 100ms, 0ms);
  check_decision(strict->decide("k", 1, at_us(kT0)), false, 0, 100ms, 100ms);
  check_decision(strict->decide("k", 1, at_us(kT0 + 100'000)), true, 0, 100ms, 0ms);
  CHECK(strict->evict_idle(at_us(kT0 + 199'999)) == 0);
  CHECK(strict->evict_idle(at_us(kT0 + 200'000)) == 1);
}

// Limits whose arithmetic is exact in doubles: period 2^20 µs, so rates are dyadic.
Limit exact_limit(Algorithm a) {
  Limit l{.requests = 64, .period = std::chrono::microseconds(1 << 20), .burst = 0};
  if (a == Algorithm::kTokenBucket || a == Algorithm::kLeakyBucket || a == Algorithm::kGcra) {
    l.burst = 16;
  }
  if (a == Algorithm::kLeakyQueue) l.burst = 4;
  return l;
}

TEST_CASE("retry_after is the earliest wait that passes", "[unit]") {
  for (Algorithm a : kAllAlgorithms) {
    INFO(algorithm_name(a));
    const Limit lim = exact_limit(a);
    auto l = make_limiter(a, lim);
    size_t probes = 0;
    int64_t shift = 0;  // each probe pushes the rest of the trace later
    for (const Req& r : make_trace(23, 60000, 1 << 20, lim.requests, 3)) {
      const int64_t t = r.t + shift;
      const std::string k = key_name(r.key);
      Decision d = l->decide(k, r.cost, at_us(t));
      if (d.allowed || d.retry_after == Nanos::max()) continue;
      REQUIRE(d.retry_after > Nanos{0});
      REQUIRE(d.retry_after % 1us == Nanos{0});
      const int64_t wait =
          std::chrono::duration_cast<std::chrono::microseconds>(d.retry_after).count();
      INFO("t " << t << " cost " << r.cost << " " << d);
      if (wait > 1) REQUIRE_FALSE(l->decide(k, r.cost, at_us(t + wait - 1)).allowed);
      REQUIRE(l->decide(k, r.cost, at_us(t + wait)).allowed);
      shift += wait;
      ++probes;
    }
    CHECK(probes > 300);
  }
}

}  // namespace
}  // namespace sd::ratelimit
