// GCRA with redis-cell's CL.THROTTLE semantics (max_burst = burst - 1): one theoretical arrival
// time per key; a request of cost c is admitted if it would not push tat more than tau = T * burst
// ahead of now. Equivalent to a token bucket of capacity burst, in one double of state.

#include "keyed_limiter.hpp"

namespace sd::ratelimit::detail {
namespace {

struct Gcra {
  struct State {
    double tat;  // theoretical arrival time, µs
  };
  static constexpr Algorithm kAlgorithm = Algorithm::kGcra;
  static constexpr bool kHeapState = false;

  double R, P, B, T, tau;
  explicit Gcra(const Limit& l)
      : R(static_cast<double>(l.requests)),
        P(period_us(l)),
        B(static_cast<double>(effective_burst(Algorithm::kGcra, l))),
        T(P / R),
        tau(T * B) {}

  State fresh(double t) const { return {t}; }

  Decision step(State& s, double t, double c) const {
    const double tat0 = std::max(s.tat, t);
    const double inc = T * c;
    const double new_tat = tat0 + inc;
    const double allow_at = new_tat - tau;
    Decision d;
    double ttl;
    if (t >= allow_at) {
      if (c > 0) s.tat = new_tat;
      d.allowed = true;
      ttl = new_tat - t;
    } else {
      ttl = tat0 - t;
      d.retry_after = inc > tau ? kNever : us_to_nanos(allow_at - t);
    }
    d.remaining = floor_count(std::max(0.0, std::floor((tau - ttl) / T)));
    d.reset_after = us_to_nanos(ttl);
    return d;
  }

  bool idle(const State& s, double t) const { return s.tat <= t; }
  size_t heap_bytes(const State&) const { return 0; }
};

}  // namespace

std::unique_ptr<Limiter> make_gcra(const Limit& limit) {
  return std::make_unique<KeyedLimiter<Gcra>>(limit);
}

}  // namespace sd::ratelimit::detail
