// Token bucket: `burst` tokens (default: requests), refilled continuously at requests/period; a
// request takes `cost` tokens or is denied.

#include "keyed_limiter.hpp"

namespace sd::ratelimit::detail {
namespace {

struct TokenBucket {
  struct State {
    double tokens;  // at `last`
    double last;    // µs
  };
  static constexpr Algorithm kAlgorithm = Algorithm::kTokenBucket;
  static constexpr bool kHeapState = false;

  double R, P, B;
  explicit TokenBucket(const Limit& l)
      : R(static_cast<double>(l.requests)),
        P(period_us(l)),
        B(static_cast<double>(effective_burst(Algorithm::kTokenBucket, l))) {}

  State fresh(double t) const { return {B, t}; }

  Decision step(State& s, double t, double c) const {
    t = std::max(t, s.last);  // an earlier now counts as the last one seen
    const double tokens = std::min(B, s.tokens + (t - s.last) * R / P);
    Decision d;
    if (c <= tokens) {
      const double left = tokens - c;
      if (c > 0) s = {left, t};
      d.allowed = true;
      d.remaining = floor_count(left);
      d.reset_after = us_to_nanos((B - left) * P / R);
    } else {
      d.remaining = floor_count(tokens);
      d.reset_after = us_to_nanos((B - tokens) * P / R);
      d.retry_after = c > B ? kNever : us_to_nanos((c - tokens) * P / R);
    }
    return d;
  }

  bool idle(const State& s, double t) const {
    return t >= s.last && s.tokens + (t - s.last) * R / P >= B;
  }
  size_t heap_bytes(const State&) const { return 0; }
};

}  // namespace

std::unique_ptr<Limiter> make_token_bucket(const Limit& limit) {
  return std::make_unique<KeyedLimiter<TokenBucket>>(limit);
}

}  // namespace sd::ratelimit::detail
