// Token bucket, leaky bucket (meter) and GCRA against an independent reference: the definition of
// a (burst, rate) conforming stream, checked in exact integer arithmetic. A request of cost c at t
// conforms iff for every earlier admitted request i (and the request itself)
//     units admitted in [t_i, t] + c  <=  B + R * (t - t_i) / P
// Scaled by P this is integer-only, and the minimum over i can be kept as a running minimum. The
// three algorithms must admit exactly the conforming requests; with doubles they may only differ
// where the exact slack is within rounding of zero, and not at all when the rates are dyadic.

#include <cmath>
#include <map>
#include <memory>

#include "algorithm_test_util.hpp"

namespace sd::ratelimit {
namespace {

using namespace testutil;

class ConformanceReference {
 public:
  ConformanceReference(int64_t requests, int64_t period_us, int64_t burst)
      : R_(requests), P_(period_us), B_(burst) {}

  // Exact slack in units of 1/P token (>= 0 iff admissible) and P * tokens left if admitted.
  struct Verdict {
    bool allowed;
    int64_t slack;  // B*P - ((admitted in the tightest interval) + c)*P + R*(its length)
  };
  Verdict peek(uint32_t key, int64_t t, int64_t c) {
    const State& s = keys_[key];
    const int64_t slack = B_ * P_ - ((s.sum + c) * P_ - R_ * t - min_term(s, t));
    return {c <= B_ && slack >= 0, slack};
  }
  void admit(uint32_t key, int64_t t, int64_t c) {
    State& s = keys_[key];
    s.min_term = min_term(s, t);
    s.sum += c;
  }

 private:
  struct State {
    int64_t sum = 0;               // units admitted so far
    int64_t min_term = INT64_MAX;  // min over admitted i of (units before i) * P - R * t_i
  };
  // The tightest interval may also start at the request itself: S*P - R*t.
  int64_t min_term(const State& s, int64_t t) const {
    return std::min(s.min_term, s.sum * P_ - R_ * t);
  }

  int64_t R_, P_, B_;
  std::map<uint32_t, State> keys_;
};

struct Case {
  uint64_t requests;
  int64_t period_us;
  uint64_t burst;
  bool exact;  // dyadic rate: doubles compute every quantity exactly
};

const Case kCases[] = {
    {64, 1 << 20, 64, true},      {64, 1 << 20, 16, true},  {4, 1 << 22, 100, true},
    {100, 1'000'000, 100, false}, {7, 1'000'000, 3, false}, {1000, 60'000'000, 50, false},
    {3, 1'000'000, 10, false},
};

TEST_CASE("token bucket leaky bucket and gcra admit exactly the conforming requests", "[unit]") {
  for (const Case& cs : kCases) {
    for (Algorithm a : {Algorithm::kTokenBucket, Algorithm::kLeakyBucket, Algorithm::kGcra}) {
      INFO(algorithm_name(a) << " R=" << cs.requests << " P=" << cs.period_us
                             << "us B=" << cs.burst);
      const Limit lim{cs.requests, std::chrono::microseconds(cs.period_us), cs.burst};
      auto l = make_limiter(a, lim);
      ConformanceReference ref(static_cast<int64_t>(cs.requests), cs.period_us,
                               static_cast<int64_t>(cs.burst));
      size_t allowed = 0, denied = 0, ties = 0;
      const auto trace = make_trace(101 + cs.requests, 200'000, cs.period_us, cs.requests, 4);
      for (const Req& r : trace) {
        const auto c = static_cast<int64_t>(r.cost);
        Decision d = l->decide(key_name(r.key), r.cost, at_us(r.t));
        auto v = ref.peek(r.key, r.t, c);
        (d.allowed ? allowed : denied)++;
        if (d.allowed != v.allowed) {
          // Only rounding may disagree: the exact slack is within 1e-9 tokens of the boundary
          // (and then the reference follows the limiter, so the rest stays comparable).
          INFO("t " << r.t << " key " << r.key << " cost " << r.cost << " slack " << v.slack
                    << "/P " << d);
          REQUIRE_FALSE(cs.exact);
          REQUIRE(std::abs(static_cast<double>(v.slack)) <=
                  1e-9 * static_cast<double>(cs.period_us));
          ++ties;
        }
        if (d.allowed) {
          ref.admit(r.key, r.t, c);
          // remaining = floor(tokens left) = floor(slack / P), exactly when the rate is dyadic.
          if (cs.exact) REQUIRE(d.remaining == static_cast<uint64_t>(v.slack / cs.period_us));
        } else if (cs.exact && d.retry_after != Nanos::max()) {
          // retry_after = the missing tokens' refill time, P * (-slack / P) / R, rounded up.
          const int64_t need = -v.slack;  // > 0
          const int64_t r_us =
              (need + static_cast<int64_t>(cs.requests) - 1) / static_cast<int64_t>(cs.requests);
          REQUIRE(d.retry_after == us(r_us));
        }
      }
      INFO("allowed " << allowed << " denied " << denied);
      if (ties > 0) WARN(algorithm_name(a) << ": " << ties << " rounding ties at the boundary");
      CHECK(allowed > 20'000);
      CHECK(denied > 20'000);
    }
  }
}

// The three are the same limit written three ways: with a dyadic rate every Decision field
// agrees, not just the verdicts.
TEST_CASE("token bucket equals the leaky bucket meter and gcra on traces", "[unit]") {
  for (const Case& cs : kCases) {
    if (!cs.exact) continue;
    INFO("R=" << cs.requests << " P=" << cs.period_us << "us B=" << cs.burst);
    const Limit lim{cs.requests, std::chrono::microseconds(cs.period_us), cs.burst};
    auto tb = make_limiter(Algorithm::kTokenBucket, lim);
    auto lb = make_limiter(Algorithm::kLeakyBucket, lim);
    auto gcra = make_limiter(Algorithm::kGcra, lim);
    for (const Req& r : make_trace(202, 200'000, cs.period_us, cs.requests, 5)) {
      const std::string k = key_name(r.key);
      Decision a = tb->decide(k, r.cost, at_us(r.t));
      Decision b = lb->decide(k, r.cost, at_us(r.t));
      Decision c = gcra->decide(k, r.cost, at_us(r.t));
      INFO("t " << r.t << " cost " << r.cost);
      REQUIRE(a == b);
      REQUIRE(a == c);
    }
    CHECK(tb->key_count() == gcra->key_count());
  }
}

}  // namespace
}  // namespace sd::ratelimit
