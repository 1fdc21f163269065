// Sliding window counter (Cloudflare's approximation of the sliding log): two fixed-window counts,
// the previous one weighted by the part of it still inside the trailing period.
//   estimate = prev * (P - (t - w * P)) / P + cur

#include <cstdint>

#include "keyed_limiter.hpp"

namespace sd::ratelimit::detail {
namespace {

struct SlidingWindow {
  struct State {
    double w;       // window index floor(t / P) of `cur`
    uint32_t cur;   // units admitted in window w (<= requests <= 1e9)
    uint32_t prev;  // units admitted in window w - 1
  };
  static constexpr Algorithm kAlgorithm = Algorithm::kSlidingWindow;
  static constexpr bool kHeapState = false;

  double R, P;
  explicit SlidingWindow(const Limit& l) : R(static_cast<double>(l.requests)), P(period_us(l)) {}

  State fresh(double t) const { return {std::floor(t / P), 0, 0}; }

  // The least wait after which c units fit, given the counts (prev, cur) of window w at t. The
  // estimate is continuous and non-increasing in time: linear within w, equal to cur at w + 1's
  // start, linear down to 0 across w + 1.
  double retry_us(double t, double w, double prev, double cur, double c) const {
    double at;
    if (cur + c <= R && prev > 0) {  // reachable within w (or exactly at its end)
      at = (w + 1) * P - (R - c - cur) * P / prev;
    } else if (cur > 0) {  // in window w + 1: prev' = cur, cur' = 0
      at = std::max((w + 1) * P, (w + 2) * P - (R - c) * P / cur);
    } else {
      at = (w + 1) * P;
    }
    return at - t;
  }

  Decision step(State& s, double t, double c) const {
    double w = std::floor(t / P);
    if (w < s.w) {  // an earlier now counts as the start of the key's last window
      w = s.w;
      t = w * P;
    }
    double cur = 0, prev = 0;  // rolled to window w
    if (s.w == w) {
      cur = s.cur;
      prev = s.prev;
    } else if (s.w == w - 1) {
      prev = s.cur;
    }
    const double weight = (P - (t - w * P)) / P;
    const double estimate = prev * weight + cur;
    Decision d;
    if (estimate + c <= R) {
      cur = cur + c;
      if (c > 0) s = {w, static_cast<uint32_t>(cur), static_cast<uint32_t>(prev)};
      d.allowed = true;
    } else {
      d.retry_after = c > R ? kNever : us_to_nanos(retry_us(t, w, prev, cur, c));
    }
    d.remaining = floor_count(std::max(0.0, std::floor(R - (prev * weight + cur))));
    d.reset_after = cur > 0    ? us_to_nanos((w + 2) * P - t)
                    : prev > 0 ? us_to_nanos((w + 1) * P - t)
                               : Nanos{0};
    return d;
  }

  bool idle(const State& s, double t) const {
    const double w = std::floor(t / P);
    return w >= s.w + 2 || (w == s.w + 1 && s.cur == 0) || (s.cur == 0 && s.prev == 0);
  }
  size_t heap_bytes(const State&) const { return 0; }
};

}  // namespace

std::unique_ptr<Limiter> make_sliding_window(const Limit& limit) {
  return std::make_unique<KeyedLimiter<SlidingWindow>>(limit);
}

}  // namespace sd::ratelimit::detail
