// The window algorithms against independent references in exact integers:
//   fixed window   — counts of admitted units per window index;
//   sliding log    — the full history of admitted requests with prefix sums; the earliest retry
//                    found by binary search over the wait rather than by walking entries;
//   sliding window — per-window counts and the estimate as an exact fraction; retry by binary
//                    search over the wait.
// Every Decision field is compared (sliding window: exactly when the period is a power of two
// µs, so the weight is exact in doubles; otherwise verdicts may differ only at exact ties).

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "algorithm_test_util.hpp"

namespace sd::ratelimit {
namespace {

using namespace testutil;

int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

Nanos never_or(bool never, int64_t us_) {
  return never ? Nanos::max() : us(us_);
}

TEST_CASE("fixed window admits exactly what each window's count allows", "[unit]") {
  const std::pair<int64_t, int64_t> cases[] = {
      {3, 1'000'000}, {100, 1'000'000}, {7, 999'983}, {10, 60'000'000}};
  for (auto [R, P] : cases) {
    INFO("R=" << R << " P=" << P << "us");
    auto l = make_limiter(Algorithm::kFixedWindow,
                          {static_cast<uint64_t>(R), std::chrono::microseconds(P), 0});
    std::map<std::pair<uint32_t, int64_t>, int64_t> count;  // (key, window) -> admitted units
    size_t allowed = 0, denied = 0;
    for (const Req& r : make_trace(505, 200'000, P, static_cast<uint64_t>(R), 4)) {
      const auto c = static_cast<int64_t>(r.cost);
      const int64_t w = floor_div(r.t, P);
      int64_t& n = count[{r.key, w}];
      const bool ok = n + c <= R;
      if (ok) n += c;
      Decision d = l->decide(key_name(r.key), r.cost, at_us(r.t));
      INFO("t " << r.t << " key " << r.key << " cost " << r.cost << " " << d);
      REQUIRE(d.allowed == ok);
      REQUIRE(d.remaining == static_cast<uint64_t>(R - n));
      REQUIRE(d.reset_after == us((w + 1) * P - r.t));
      REQUIRE(d.retry_after == (ok ? Nanos{0} : never_or(c > R, (w + 1) * P - r.t)));
      (ok ? allowed : denied)++;
    }
    CHECK(allowed > 20'000);
    CHECK(denied > 20'000);
  }
}

// Admitted (time, units) per key with prefix sums, so "units with time in (a, b]" is two binary
// searches.
struct History {
  std::vector<int64_t> times;
  std::vector<int64_t> prefix{0};  // prefix[i] = units of the first i entries

  void add(int64_t t, int64_t c) {
    times.push_back(t);
    prefix.push_back(prefix.back() + c);
  }
  int64_t units_after(int64_t a) const {  // time > a
    const auto i = std::upper_bound(times.begin(), times.end(), a) - times.begin();
    return prefix.back() - prefix[static_cast<size_t>(i)];
  }
};

TEST_CASE("sliding log admits exactly what the trailing period allows", "[unit]") {
  const std::pair<int64_t, int64_t> cases[] = {{3, 1'000'000}, {50, 1'000'000}, {10, 999'983}};
  for (auto [R, P] : cases) {
    INFO("R=" << R << " P=" << P << "us");
    auto l = make_limiter(Algorithm::kSlidingLog,
                          {static_cast<uint64_t>(R), std::chrono::microseconds(P), 0});
    std::map<uint32_t, History> hist;
    size_t allowed = 0, denied = 0;
    for (const Req& r : make_trace(606, 200'000, P, static_cast<uint64_t>(R), 4)) {
      const auto c = static_cast<int64_t>(r.cost);
      History& h = hist[r.key];
      const int64_t in_window = h.units_after(r.t - P);
      const bool ok = in_window + c <= R;
      Nanos retry{0};
      if (!ok && c > R) retry = Nanos::max();
      if (!ok && c <= R) {
        // The least d >= 1 with units in (t + d - P, t] <= R - c.
        int64_t lo = 1, hi = P;
        while (lo < hi) {
          const int64_t mid = lo + (hi - lo) / 2;
          if (h.units_after(r.t + mid - P) <= R - c)
            hi = mid;
          else
            lo = mid + 1;
        }
        retry = us(lo);
      }
      if (ok) h.add(r.t, c);
      Decision d = l->decide(key_name(r.key), r.cost, at_us(r.t));
      INFO("t " << r.t << " key " << r.key << " cost " << r.cost << " " << d);
      REQUIRE(d.allowed == ok);
      REQUIRE(d.remaining == static_cast<uint64_t>(R - in_window - (ok ? c : 0)));
      const bool any = !h.times.empty() && h.times.back() > r.t - P;
      REQUIRE(d.reset_after == (any ? us(h.times.back() + P - r.t) : Nanos{0}));
      REQUIRE(d.retry_after == retry);
      (ok ? allowed : denied)++;
    }
    CHECK(allowed > 20'000);
    CHECK(denied > 20'000);
  }
}

class CounterReference {
 public:
  CounterReference(int64_t requests, int64_t period_us) : R_(requests), P_(period_us) {}

  // P * (estimate at t) + P * c - P * R: <= 0 iff c more units fit at t, given the counts of
  // window w (cur) and w - 1 (prev) now; later windows have no admissions yet.
  int64_t excess(int64_t t, int64_t c, int64_t w, int64_t prev, int64_t cur) const {
    const int64_t wt = floor_div(t, P_);
    if (wt == w + 1) {
      prev = cur;
      cur = 0;
    } else if (wt > w + 1) {
      prev = cur = 0;
    }
    return prev * (P_ - (t - wt * P_)) + (cur + c) * P_ - R_ * P_;
  }
  int64_t get(uint32_t key, int64_t w) const {
    auto it = count_.find({key, w});
    return it == count_.end() ? 0 : it->second;
  }
  void admit(uint32_t key, int64_t t, int64_t c) { count_[{key, floor_div(t, P_)}] += c; }

 private:
  int64_t R_, P_;
  std::map<std::pair<uint32_t, int64_t>, int64_t> count_;
};

TEST_CASE("sliding window counter matches its exact-fraction reference", "[unit]") {
  struct Case {
    int64_t R, P;
    bool exact;  // P a power of two: weights are exact in doubles
  };
  const Case cases[] = {{64, 1 << 20, true},
                        {10, 1 << 20, true},
                        {3, 1 << 18, true},
                        {100, 1'000'000, false},
                        {7, 1'000'000, false}};
  for (const Case& cs : cases) {
    const int64_t R = cs.R, P = cs.P;
    INFO("R=" << R << " P=" << P << "us");
    auto l = make_limiter(Algorithm::kSlidingWindow,
                          {static_cast<uint64_t>(R), std::chrono::microseconds(P), 0});
    CounterReference ref(R, P);
    size_t allowed = 0, denied = 0, ties = 0;
    for (const Req& r : make_trace(707, 200'000, P, static_cast<uint64_t>(R), 4)) {
      const auto c = static_cast<int64_t>(r.cost);
      const int64_t w = floor_div(r.t, P);
      const int64_t cur0 = ref.get(r.key, w), prev0 = ref.get(r.key, w - 1);
      const int64_t excess = ref.excess(r.t, c, w, prev0, cur0);
      Decision d = l->decide(key_name(r.key), r.cost, at_us(r.t));
      INFO("t " << r.t << " key " << r.key << " cost " << r.cost << " excess " << excess << " "
                << d);
      bool ok = excess <= 0;
      if (d.allowed != ok) {  // only an exact tie may round either way
        REQUIRE_FALSE(cs.exact);
        REQUIRE(excess == 0);
        ++ties;
        ok = d.allowed;
      }
      (ok ? allowed : denied)++;
      if (!ok) {
        Nanos retry = Nanos::max();
        if (c <= R) {
          int64_t lo = 1, hi = 2 * P;
          while (lo < hi) {
            const int64_t mid = lo + (hi - lo) / 2;
            if (ref.excess(r.t + mid, c, w, prev0, cur0) <= 0)
              hi = mid;
            else
              lo = mid + 1;
          }
          retry = us(lo);
        }
        if (cs.exact || retry == Nanos::max()) {
          REQUIRE(d.retry_after == retry);
        } else {
          REQUIRE(std::chrono::abs(d.retry_after - retry) <= 1us);
        }
      } else {
        ref.admit(r.key, r.t, c);
      }
      const int64_t cur = ref.get(r.key, w), prev = ref.get(r.key, w - 1);
      // remaining = floor(R - estimate after the decision), clamped at 0.
      const int64_t left = floor_div(R * P - prev * (P - (r.t - w * P)) - cur * P, P);
      if (cs.exact) REQUIRE(d.remaining == static_cast<uint64_t>(std::max<int64_t>(0, left)));
      const Nanos reset = cur > 0    ? us((w + 2) * P - r.t)
                          : prev > 0 ? us((w + 1) * P - r.t)
                                     : Nanos{0};
      REQUIRE(d.reset_after == reset);
    }
    INFO("allowed " << allowed << " denied " << denied << " ties " << ties);
    CHECK(allowed > 20'000);
    CHECK(denied > 20'000);
  }
}

}  // namespace
}  // namespace sd::ratelimit
