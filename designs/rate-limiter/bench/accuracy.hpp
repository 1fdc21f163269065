#pragma once
// Sliding-window counter vs the exact sliding log on the same seeded arrival traces: how often
// they decide differently, and how far the counter over-admits (the most admitted in any trailing
// period; the log never exceeds R, the counter is bounded by 2R). Shared by the accuracy test and
// the `ratelimit-accuracy` executable (README numbers).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "sd/ratelimit/limiter.hpp"

namespace sd::ratelimit::accuracy {

inline const std::vector<std::string>& shapes() {
  static const std::vector<std::string> s = {"steady_0.5x", "steady_1x",  "steady_2x",
                                             "poisson_1x",  "poisson_2x", "bursty",
                                             "sawtooth",    "edge_bursts"};
  return s;
}

// n arrival times (µs, non-decreasing) of one key for a limit of R per P µs.
//   steady_<f>x  constant gap P / (f R) from a random phase
//   poisson_<f>x exponential gaps, mean P / (f R)
//   bursty       on for P/4 at 4x the rate (Poisson), then off for an exponential mean P
//   sawtooth     2R per window with a rate rising linearly across each window (peaks at the edge)
//   edge_bursts  every other window: R in its last 1% and R in the next window's first 1%
inline std::vector<int64_t> arrivals(std::string_view shape, uint64_t seed, int64_t R, int64_t P,
                                     size_t n) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  const auto Pd = static_cast<double>(P), Rd = static_cast<double>(R);
  const double t0 = 3'600'000'000.0 + std::floor(u01(rng) * Pd);  // random phase
  std::vector<int64_t> out;
  out.reserve(n);
  auto push = [&](double t) { out.push_back(static_cast<int64_t>(std::floor(t))); };
  if (shape.starts_with("steady_") || shape.starts_with("poisson_")) {
    const double f = shape.ends_with("0.5x") ? 0.5 : shape.ends_with("2x") ? 2.0 : 1.0;
    const double gap = Pd / (f * Rd);
    std::exponential_distribution<double> exp_gap(1.0 / gap);
    double t = t0;
    for (size_t k = 0; k < n; ++k) {
      push(shape.starts_with("steady_") ? t0 + static_cast<double>(k) * gap : t);
      t += exp_gap(rng);
    }
  } else if (shape == "bursty") {
    std::exponential_distribution<double> on_gap(4.0 * Rd / Pd), off(1.0 / Pd);
    double t = t0;
    while (out.size() < n) {
      const double end = t + Pd / 4;
      for (t += on_gap(rng); t < end && out.size() < n; t += on_gap(rng)) push(t);
      t = end + off(rng);
    }
  } else if (shape == "sawtooth") {
    const size_t per = static_cast<size_t>(2 * R);
    for (double w = std::floor(t0 / Pd); out.size() < n; w += 1) {
      // Density proportional to the elapsed fraction x: x = sqrt(uniform).
      std::vector<double> xs(per);
      for (double& x : xs) x = std::sqrt(u01(rng));
      std::sort(xs.begin(), xs.end());
      for (size_t i = 0; i < per && out.size() < n; ++i) push((w + xs[i]) * Pd);
    }
  } else if (shape == "edge_bursts") {
    for (double w = std::floor(t0 / Pd) + 1; out.size() < n; w += 2) {
      std::vector<double> xs(static_cast<size_t>(2 * R));
      for (size_t i = 0; i < xs.size(); ++i) {
        xs[i] = i < static_cast<size_t>(R) ? w - 0.01 * u01(rng) : w + 0.01 * u01(rng);
      }
      std::sort(xs.begin(), xs.end());
      for (size_t i = 0; i < xs.size() && out.size() < n; ++i) push(xs[i] * Pd);
    }
  }
  return out;
}

struct Report {
  std::string shape;
  int64_t limit = 0, period_us = 0;
  size_t requests = 0, windows = 0;
  size_t admitted_log = 0, admitted_counter = 0;
  size_t differ = 0, over = 0, under = 0;  // over: counter admits what the log denies
  size_t max_trailing_log = 0, max_trailing_counter = 0;  // most admitted in any trailing period
  size_t max_window_counter = 0;                          // most admitted in one fixed window
  double pct(size_t k) const { return requests ? 100.0 * static_cast<double>(k) / requests : 0; }
};

// The most admitted times in any (t - P, t].
inline size_t max_trailing(const std::vector<int64_t>& admitted, int64_t P) {
  size_t best = 0, lo = 0;
  for (size_t hi = 0; hi < admitted.size(); ++hi) {
    while (admitted[lo] <= admitted[hi] - P) ++lo;
    best = std::max(best, hi - lo + 1);
  }
  return best;
}

inline Report compare(std::string_view shape, uint64_t seed, int64_t R, int64_t P, size_t n) {
  const Limit lim{static_cast<uint64_t>(R), std::chrono::microseconds(P), 0};
  auto log = make_limiter(Algorithm::kSlidingLog, lim);
  auto counter = make_limiter(Algorithm::kSlidingWindow, lim);
  Report r;
  r.shape = std::string(shape);
  r.limit = R;
  r.period_us = P;
  std::vector<int64_t> by_log, by_counter;
  std::map<int64_t, size_t> per_window;
  const auto ts = arrivals(shape, seed, R, P, n);
  for (int64_t t : ts) {
    const TimePoint now = TimePoint{} + std::chrono::microseconds(t);
    const bool a = log->decide("k", 1, now).allowed;
    const bool b = counter->decide("k", 1, now).allowed;
    if (a) by_log.push_back(t);
    if (b) {
      by_counter.push_back(t);
      r.max_window_counter = std::max(r.max_window_counter, ++per_window[t / P]);
    }
    r.differ += a != b;
    r.over += b && !a;
    r.under += a && !b;
  }
  r.requests = ts.size();
  r.windows = ts.empty() ? 0 : static_cast<size_t>(ts.back() / P - ts.front() / P + 1);
  r.admitted_log = by_log.size();
  r.admitted_counter = by_counter.size();
  r.max_trailing_log = max_trailing(by_log, P);
  r.max_trailing_counter = max_trailing(by_counter, P);
  return r;
}

inline std::string to_json(const Report& r) {
  char buf[768];
  std::snprintf(buf, sizeof buf,
                "{\"shape\":\"%s\",\"limit\":%lld,\"period_us\":%lld,\"requests\":%zu,"
                "\"windows\":%zu,\"admitted_log\":%zu,\"admitted_counter\":%zu,"
                "\"differ_pct\":%.4f,\"over_admitted_pct\":%.4f,\"under_admitted_pct\":%.4f,"
                "\"max_in_trailing_period_log\":%zu,\"max_in_trailing_period_counter\":%zu,"
                "\"counter_over_limit_ratio\":%.3f,\"max_in_fixed_window_counter\":%zu}",
                r.shape.c_str(), static_cast<long long>(r.limit),
                static_cast<long long>(r.period_us), r.requests, r.windows, r.admitted_log,
                r.admitted_counter, r.pct(r.differ), r.pct(r.over), r.pct(r.under),
                r.max_trailing_log, r.max_trailing_counter,
                static_cast<double>(r.max_trailing_counter) / static_cast<double>(r.limit),
                r.max_window_counter);
  return buf;
}

}  // namespace sd::ratelimit::accuracy
