#pragma once
// The arithmetic every algorithm shares, kept in one place so the Redis Lua scripts can mirror it
// exactly: time as whole microseconds held in a double, durations rounded up to whole microseconds,
// counts rounded down. See designs/rate-limiter/README (algorithm semantics) for the contract.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>

#include "sd/ratelimit/limiter.hpp"

namespace sd::ratelimit::detail {

inline constexpr Nanos kNever = Nanos::max();

// t = floor(now_ns / 1000): whole microseconds since the clock's epoch.
inline double to_us(TimePoint now) {
  const int64_t ns = std::chrono::duration_cast<Nanos>(now.time_since_epoch()).count();
  const int64_t us = ns >= 0 ? ns / 1000 : -((-(ns + 1)) / 1000) - 1;  // floor for negatives too
  return static_cast<double>(us);
}

// The period in microseconds (may be fractional for sub-µs periods; validate_limit forbids those).
inline double period_us(const Limit& l) {
  return static_cast<double>(l.period.count()) / 1000.0;
}

// The burst an algorithm works with: the buckets and GCRA default to `requests`, the leaky queue's
// queue defaults to empty, window algorithms have none (0). Limiters, validation and the Redis key
// scheme all use this one rule.
inline uint64_t effective_burst(Algorithm a, const Limit& l) {
  switch (a) {
    case Algorithm::kTokenBucket:
    case Algorithm::kLeakyBucket:
    case Algorithm::kGcra:
      return l.burst != 0 ? l.burst : l.requests;
    case Algorithm::kLeakyQueue:
      return l.burst;
    default:
      return 0;
  }
}

// A µs duration as Nanos: rounded up to a whole µs, never negative, saturating (a wait that long
// cannot happen within validate_limit's bounds, but a cost far above the limit could ask for it).
inline Nanos us_to_nanos(double us) {
  if (!(us > 0)) return Nanos{0};  // also NaN
  const double whole = std::ceil(us);
  if (whole >= 9.2e15) return kNever;
  return Nanos{std::llround(whole * 1000.0)};
}

// floor(x) as a count, clamped at 0.
inline uint64_t floor_count(double x) {
  if (!(x > 0)) return 0;
  const double f = std::floor(x);
  if (f >= 1.8e19) return std::numeric_limits<uint64_t>::max();
  return static_cast<uint64_t>(f);
}

// Bytes glibc's malloc really takes for an n-byte request: 8 bytes of chunk header, 16-byte
// granularity, 32 bytes at least.
inline constexpr size_t malloc_footprint(size_t n) {
  const size_t chunk = (n + 8 + 15) & ~size_t{15};
  return chunk < 32 ? 32 : chunk;
}

}  // namespace sd::ratelimit::detail
