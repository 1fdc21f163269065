// Leaky bucket as a meter: the level drains at requests/period and a request is admitted while
// level + cost <= burst (default: requests). The dual of the token bucket (level = burst - tokens).

#include "keyed_limiter.hpp"

namespace sd::ratelimit::detail {
namespace {

struct LeakyBucket {
  struct State {
    double level;  // at `last`
    double last;   // µs
  };
  static constexpr Algorithm kAlgorithm = Algorithm::kLeakyBucket;
  static constexpr bool kHeapState = false;

  double R, P, B;
  explicit LeakyBucket(const Limit& l)
      : R(static_cast<double>(l.requests)),
        P(period_us(l)),
        B(static_cast<double>(effective_burst(Algorithm::kLeakyBucket, l))) {}

  State fresh(double t) const { return {0.0, t}; }

  Decision step(State& s, double t, double c) const {
    t = std::max(t, s.last);  // an earlier now counts as the last one seen
    const double level = std::max(0.0, s.level - (t - s.last) * R / P);
    Decision d;
    if (level + c <= B) {
      const double filled = level + c;
      if (c > 0) s = {filled, t};
      d.allowed = true;
      d.remaining = floor_count(B - filled);
      d.reset_after = us_to_nanos(filled * P / R);
    } else {
      d.remaining = floor_count(B - level);
      d.reset_after = us_to_nanos(level * P / R);
      d.retry_after = c > B ? kNever : us_to_nanos((level + c - B) * P / R);
    }
    return d;
  }

  bool idle(const State& s, double t) const {
    return t >= s.last && s.level - (t - s.last) * R / P <= 0;
  }
  size_t heap_bytes(const State&) const { return 0; }
};

}  // namespace

std::unique_ptr<Limiter> make_leaky_bucket(const Limit& limit) {
  return std::make_unique<KeyedLimiter<LeakyBucket>>(limit);
}

}  // namespace sd::ratelimit::detail
