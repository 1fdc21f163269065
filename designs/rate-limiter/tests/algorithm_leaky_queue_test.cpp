// Leaky queue (nginx limit_req with burst, without nodelay) against an independent reference in
// exact integers (times scaled by R so T = P/R is the integer P), and against its defining
// invariants read off the limiter's own output: admitted requests start (arrival + delay) at
// least cost * T after the previous one started, no delay exceeds burst * T, and a request is
// denied only when the queue ahead of it is longer than burst * T.

#include <cmath>
#include <map>
#include <memory>
#include <optional>

#include "algorithm_test_util.hpp"

namespace sd::ratelimit {
namespace {

using namespace testutil;

int64_t ceil_div(int64_t a, int64_t b) {
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}
int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

class QueueReference {
 public:
  QueueReference(int64_t requests, int64_t period_us, int64_t burst)
      : R_(requests), P_(period_us), B_(burst) {}

  struct Verdict {
    bool allowed;
    int64_t wait_r;  // R * wait: the exact wait for the queue ahead, scaled
    int64_t delay_us, retry_us, remaining, reset_us;
  };

  // What the request would get; `admit` commits it.
  Verdict peek(uint32_t key, int64_t t, int64_t c, std::optional<bool> force = {}) const {
    const int64_t tr = t * R_;
    auto it = free_r_.find(key);
    const int64_t start = it == free_r_.end() ? tr : std::max(tr, it->second);
    const int64_t wait = start - tr;
    Verdict v{};
    v.allowed = force.value_or(wait <= B_ * P_);
    v.wait_r = wait;
    int64_t f = it == free_r_.end() ? tr - 1 : it->second;
    if (v.allowed) {
      f = start + c * P_;
      v.delay_us = ceil_div(wait, R_);
    } else {
      v.retry_us = ceil_div(wait - B_ * P_, R_);
    }
    v.remaining = f <= tr ? B_ + 1 : std::max<int64_t>(0, floor_div(tr + B_ * P_ - f, P_) + 1);
    v.reset_us = f <= tr ? 0 : ceil_div(f - tr, R_);
    return v;
  }
  void admit(uint32_t key, int64_t t, int64_t c) {
    const int64_t tr = t * R_;
    auto it = free_r_.find(key);
    const int64_t start = it == free_r_.end() ? tr : std::max(tr, it->second);
    free_r_[key] = start + c * P_;
  }

 private:
  int64_t R_, P_, B_;
  std::map<uint32_t, int64_t> free_r_;  // R * free_at
};

struct Case {
  uint64_t requests;
  int64_t period_us;
  uint64_t burst;
  bool exact;  // T = P / R is a whole number of µs
};

TEST_CASE("leaky queue matches the exact queue reference and its invariants", "[unit]") {
  const Case cases[] = {{10, 1'000'000, 5, true}, {10, 1'000'000, 0, true},
                        {64, 1 << 20, 4, true},   {7, 1'000'000, 3, false},
                        {3, 1'000'000, 0, false}, {1000, 60'000'000, 20, true}};
  for (const Case& cs : cases) {
    INFO("R=" << cs.requests << " P=" << cs.period_us << "us B=" << cs.burst);
    const Limit lim{cs.requests, std::chrono::microseconds(cs.period_us), cs.burst};
    auto l = make_limiter(Algorithm::kLeakyQueue, lim);
    QueueReference ref(static_cast<int64_t>(cs.requests), cs.period_us,
                       static_cast<int64_t>(cs.burst));
    const double T = static_cast<double>(cs.period_us) / static_cast<double>(cs.requests);
    const double max_delay_us = std::ceil(static_cast<double>(cs.burst) * T);
    struct Last {
      double start_us;
      uint64_t cost;
    };
    std::map<uint32_t, Last> last;  // previous admitted request's start, per key
    size_t allowed = 0, denied = 0, ties = 0;
    for (const Req& r : make_trace(404 + cs.burst, 200'000, cs.period_us, cs.requests, 4)) {
      const auto c = static_cast<int64_t>(r.cost);
      Decision d = l->decide(key_name(r.key), r.cost, at_us(r.t));
      INFO("t " << r.t << " key " << r.key << " cost " << r.cost << " " << d);
      auto v = ref.peek(r.key, r.t, c);
      if (d.allowed != v.allowed) {
        // Rounding of T: only at an exact tie between the wait and burst * T.
        REQUIRE_FALSE(cs.exact);
        REQUIRE(std::abs(v.wait_r - static_cast<int64_t>(cs.burst) * cs.period_us) <= 1);
        ++ties;
        v = ref.peek(r.key, r.t, c, d.allowed);
      }
      const int64_t slack = cs.exact ? 0 : 1;  // µs of rounding when T is not whole
      CHECK(std::abs(d.delay.count() / 1000 - v.delay_us) <= slack);
      CHECK(std::abs(d.retry_after.count() / 1000 - v.retry_us) <= slack);
      CHECK(std::abs(d.reset_after.count() / 1000 - v.reset_us) <= slack);
      CHECK(std::abs(static_cast<int64_t>(d.remaining) - v.remaining) <= slack);
      if (!d.allowed) {
        ++denied;
        CHECK(d.delay == Nanos{0});
        continue;
      }
      ++allowed;
      ref.admit(r.key, r.t, c);
      // Invariants, from the limiter's output alone.
      const double delay_us = static_cast<double>(d.delay.count()) / 1000;
      CHECK(delay_us <= max_delay_us);
      const double start = static_cast<double>(r.t) + delay_us;
      auto it = last.find(r.key);
      if (it != last.end()) {
        CHECK(start >= it->second.start_us + static_cast<double>(it->second.cost) * T - 1);
      }
      last[r.key] = {start, r.cost};
    }
    INFO("allowed " << allowed << " denied " << denied << " ties " << ties);
    CHECK(allowed > 20'000);
    CHECK(denied > 20'000);
  }
}

TEST_CASE("leaky queue serves at most one request per T", "[unit]") {
  // 100 requests at once with burst 9, 50/s: 10 pass (delays 0, 20, ..., 180ms); starting from an
  // idle queue a request every 20ms never waits; every 10ms they queue up until burst is full.
  auto l = make_limiter(Algorithm::kLeakyQueue, {.requests = 50, .period = 1s, .burst = 9});
  int passed = 0;
  for (int i = 0; i < 100; ++i) {
    Decision d = l->decide("a", 1, at_us(kStartUs));
    if (d.allowed) {
      CHECK(d.delay == passed * 20ms);
      ++passed;
    }
  }
  CHECK(passed == 10);
  for (int i = 0; i < 100; ++i) {
    Decision d = l->decide("b", 1, at_us(kStartUs + i * 20'000));
    CHECK(d.allowed);
    CHECK(d.delay == 0ms);
  }
  int queued = 0;
  for (int i = 0; i < 100; ++i) {
    Decision d = l->decide("c", 1, at_us(kStartUs + i * 10'000));
    if (d.allowed) {
      CHECK(d.delay == std::min(i, 18) * 10ms);  // the queue grows by 10ms per request
      ++queued;
    }
  }
  // 19 pass while the queue fills (i = 0..18, delay 10ms * i); from then on the queue is full and
  // one passes per T = 20ms, i.e. every other request of the remaining 81: 40 more.
  CHECK(queued == 59);
}

}  // namespace
}  // namespace sd::ratelimit
