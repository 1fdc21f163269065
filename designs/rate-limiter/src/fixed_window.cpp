// Fixed window: at most `requests` units per window [k*period, (k+1)*period) of the clock's epoch;
// the count starts over at each window.

#include "keyed_limiter.hpp"

namespace sd::ratelimit::detail {
namespace {

struct FixedWindow {
  struct State {
    double w;      // window index floor(t / P)
    double count;  // units admitted in window w
  };
  static constexpr Algorithm kAlgorithm = Algorithm::kFixedWindow;
  static constexpr bool kHeapState = false;

  double R, P;
  explicit FixedWindow(const Limit& l) : R(static_cast<double>(l.requests)), P(period_us(l)) {}

  State fresh(double t) const { return {std::floor(t / P), 0.0}; }

  Decision step(State& s, double t, double c) const {
    double w = std::floor(t / P);
    if (w < s.w) {  // an earlier now counts as the start of the key's last window
      w = s.w;
      t = w * P;
    }
    double count = s.w == w ? s.count : 0.0;
    const double reset = (w + 1) * P - t;
    Decision d;
    if (count + c <= R) {
      count = count + c;
      if (c > 0) s = {w, count};
      d.allowed = true;
    } else {
      d.retry_after = c > R ? kNever : us_to_nanos(reset);
    }
    d.remaining = floor_count(R - count);
    d.reset_after = us_to_nanos(reset);
    return d;
  }

  bool idle(const State& s, double t) const { return std::floor(t / P) > s.w || s.count == 0; }
  size_t heap_bytes(const State&) const { return 0; }
};

}  // namespace

std::unique_ptr<Limiter> make_fixed_window(const Limit& limit) {
  return std::make_unique<KeyedLimiter<FixedWindow>>(limit);
}

}  // namespace sd::ratelimit::detail
