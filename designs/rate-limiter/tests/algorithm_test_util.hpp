#pragma once
// Shared helpers for the algorithm tests: microsecond time points, seeded request traces and
// Decision comparison.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "sd/ratelimit/limiter.hpp"

namespace sd::ratelimit {

inline std::ostream& operator<<(std::ostream& os, const Decision& d) {
  return os << "{allowed=" << d.allowed << " limit=" << d.limit << " remaining=" << d.remaining
            << " reset_after=" << d.reset_after.count()
            << "ns retry_after=" << d.retry_after.count() << "ns delay=" << d.delay.count()
            << "ns}";
}

inline bool operator==(const Decision& a, const Decision& b) {
  return a.allowed == b.allowed && a.limit == b.limit && a.remaining == b.remaining &&
         a.reset_after == b.reset_after && a.retry_after == b.retry_after && a.delay == b.delay;
}

namespace testutil {

using namespace std::chrono_literals;

inline constexpr int64_t kStartUs = 3'600'000'000;  // FakeClock's default start: 1 hour

inline TimePoint at_us(int64_t us) {
  return TimePoint{} + std::chrono::microseconds(us);
}
inline Nanos us(int64_t n) {
  return std::chrono::microseconds(n);
}

struct Req {
  int64_t t;      // µs
  uint32_t key;   // index into key_name()
  uint64_t cost;  // 1..max_cost
};

inline std::string key_name(uint32_t k) {
  return "key:" + std::to_string(k);
}

// A seeded trace of n requests over `keys` keys whose average per-key rate is about the limit
// (requests per period_us), in phases: bursts (same or adjacent µs), steady traffic near the rate,
// overload at several times the rate, light traffic, and idle gaps of up to a few periods.
inline std::vector<Req> make_trace(uint64_t seed, size_t n, int64_t period_us, uint64_t requests,
                                   uint32_t keys, uint64_t max_cost = 3) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  // Mean gap between any two requests so that each key sees about the limit.
  const int64_t gap = std::max<int64_t>(1, period_us / static_cast<int64_t>(requests * keys));
  std::vector<Req> out;
  out.reserve(n);
  int64_t t = kStartUs + uniform(0, period_us);
  while (out.size() < n) {
    const int phase = static_cast<int>(uniform(0, 4));
    const int64_t len = uniform(5, 80);
    for (int64_t i = 0; i < len && out.size() < n; ++i) {
      switch (phase) {
        case 0:
          t += uniform(0, 1);
          break;  // burst
        case 1:
          t += uniform(gap / 2, gap * 3 / 2);
          break;  // about the rate
        case 2:
          t += uniform(0, gap / 2);
          break;  // overload
        case 3:
          t += uniform(gap, gap * 4);
          break;  // light
        default:
          break;
      }
      out.push_back({t, static_cast<uint32_t>(uniform(0, keys - 1)),
                     static_cast<uint64_t>(uniform(1, static_cast<int64_t>(max_cost)))});
    }
    if (uniform(0, 9) == 0) t += uniform(period_us / 2, 3 * period_us);  // idle
  }
  return out;
}

}  // namespace testutil
}  // namespace sd::ratelimit
