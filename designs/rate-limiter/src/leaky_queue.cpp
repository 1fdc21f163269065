// Leaky bucket as a queue (nginx limit_req with burst, without nodelay): requests leave one per
// T = period/requests; a request waits (Decision::delay) until the queue ahead has drained, and is
// denied if that wait would exceed burst * T. burst 0 = no queue: only a request at an idle
// moment passes.

#include "keyed_limiter.hpp"

namespace sd::ratelimit::detail {
namespace {

struct LeakyQueue {
  struct State {
    double free_at;  // µs when the queue ahead of a new request has drained
  };
  static constexpr Algorithm kAlgorithm = Algorithm::kLeakyQueue;
  static constexpr bool kHeapState = false;

  double R, P, B, T;
  explicit LeakyQueue(const Limit& l)
      : R(static_cast<double>(l.requests)),
        P(period_us(l)),
        B(static_cast<double>(l.burst)),
        T(P / R) {}

  State fresh(double) const { return {-std::numeric_limits<double>::infinity()}; }

  // Units that could still be queued at t after free_at, counting the one served at once.
  uint64_t remaining(double free_at, double t) const {
    if (free_at <= t) return floor_count(B + 1);
    return floor_count(std::max(0.0, std::floor((t + B * T - free_at) / T) + 1));
  }

  Decision step(State& s, double t, double c) const {
    const double start = std::max(t, s.free_at);
    const double wait = start - t;
    Decision d;
    if (wait <= B * T) {
      const double free_at = start + c * T;
      if (c > 0) s.free_at = free_at;
      d.allowed = true;
      d.delay = us_to_nanos(wait);
      d.remaining = remaining(free_at, t);
      d.reset_after = us_to_nanos(std::max(0.0, free_at - t));
    } else {
      d.remaining = remaining(s.free_at, t);
      d.reset_after = us_to_nanos(std::max(0.0, s.free_at - t));
      d.retry_after = us_to_nanos(wait - B * T);
    }
    return d;
  }

  bool idle(const State& s, double t) const { return s.free_at <= t; }
  size_t heap_bytes(const State&) const { return 0; }
};

}  // namespace

std::unique_ptr<Limiter> make_leaky_queue(const Limit& limit) {
  return std::make_unique<KeyedLimiter<LeakyQueue>>(limit);
}

}  // namespace sd::ratelimit::detail
