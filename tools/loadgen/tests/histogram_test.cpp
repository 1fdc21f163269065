#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "sd/loadgen/histogram.hpp"

using sd::loadgen::Histogram;

namespace {
// Nearest-rank percentile on a sorted array: the definition Histogram::percentile approximates.
uint64_t exact_percentile(const std::vector<uint64_t>& sorted, double p) {
  if (p >= 100) return sorted.back();
  auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::max<size_t>(rank, 1) - 1];
}
}  // namespace

TEST_CASE("histogram buckets cover every value with <1% width", "[unit]") {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> exp(0, 39);
  for (int i = 0; i < 100000; ++i) {
    uint64_t v = rng() >> (63 - exp(rng));
    v = std::min(v, Histogram::kMaxValue);
    size_t b = Histogram::bucket_of(v);
    REQUIRE(b < Histogram::bucket_count());
    REQUIRE(Histogram::bucket_low(b) <= v);
    REQUIRE(v <= Histogram::bucket_high(b));
    uint64_t width = Histogram::bucket_high(b) - Histogram::bucket_low(b) + 1;
    REQUIRE(static_cast<double>(width) <= std::max(1.0, static_cast<double>(v) / 128.0));
  }
  // Buckets are contiguous: each starts right after the previous one ends.
  for (size_t b = 1; b < Histogram::bucket_count(); ++b)
    REQUIRE(Histogram::bucket_low(b) == Histogram::bucket_high(b - 1) + 1);
  REQUIRE(Histogram::bucket_high(Histogram::bucket_count() - 1) == Histogram::kMaxValue);
}

TEST_CASE("histogram percentiles match exact sorted percentiles within 1%", "[unit]") {
  for (uint64_t seed : {1u, 2u, 3u}) {
    std::mt19937_64 rng(seed);
    // Log-normal latencies around 50 us with a heavy tail reaching seconds, in nanoseconds.
    std::lognormal_distribution<double> dist(std::log(50'000.0), 1.5);
    Histogram h;
    std::vector<uint64_t> values;
    for (int i = 0; i < 200'000; ++i) {
      auto v = static_cast<uint64_t>(std::clamp(dist(rng), 1'000.0, 60e9));
      values.push_back(v);
      h.record(v);
    }
    std::sort(values.begin(), values.end());
    for (double p : {1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99}) {
      double exact = static_cast<double>(exact_percentile(values, p));
      double got = static_cast<double>(h.percentile(p));
      INFO("seed " << seed << " p" << p << " exact " << exact << " got " << got);
      REQUIRE(std::abs(got - exact) <= 0.01 * exact);
    }
    REQUIRE(h.max() == values.back());
    REQUIRE(h.min() == values.front());
    REQUIRE(h.percentile(100) == values.back());
    long double sum = 0;
    for (auto v : values) sum += static_cast<long double>(v);
    REQUIRE(h.mean() == Approx(static_cast<double>(sum / values.size())).epsilon(1e-9));
    REQUIRE(h.count() == values.size());
  }
}

TEST_CASE("histogram edge cases: empty, one value, clamped max", "[unit]") {
  Histogram h;
  REQUIRE(h.count() == 0);
  REQUIRE(h.percentile(50) == 0);
  REQUIRE(h.percentile(100) == 0);
  REQUIRE(h.mean() == 0);
  REQUIRE(h.max() == 0);

  h.record(123'456);
  for (double p : {0.0, 50.0, 99.9, 100.0}) REQUIRE(h.percentile(p) == 123'456);
  REQUIRE(h.mean() == 123'456);

  Histogram big;
  big.record(UINT64_MAX);
  REQUIRE(big.max() == Histogram::kMaxValue);
  REQUIRE(big.percentile(50) == Histogram::kMaxValue);

  Histogram small;
  for (uint64_t v = 0; v < 256; ++v) small.record(v);  // exact region
  REQUIRE(small.percentile(50) == 127);
  REQUIRE(small.percentile(100) == 255);
  REQUIRE(small.min() == 0);
}

TEST_CASE("histogram merge equals recording everything in one", "[unit]") {
  std::mt19937_64 rng(42);
  std::exponential_distribution<double> dist(1.0 / 200'000);
  Histogram a, b, all;
  for (int i = 0; i < 50'000; ++i) {
    auto v = static_cast<uint64_t>(dist(rng));
    (i % 3 ? a : b).record(v);
    all.record(v);
  }
  Histogram merged;
  merged.merge(a);
  merged.merge(b);
  merged.merge(Histogram{});  // merging an empty histogram changes nothing
  REQUIRE(merged.count() == all.count());
  REQUIRE(merged.min() == all.min());
  REQUIRE(merged.max() == all.max());
  REQUIRE(merged.mean() == Approx(all.mean()));
  for (double p : {50.0, 90.0, 99.0, 99.9}) REQUIRE(merged.percentile(p) == all.percentile(p));
  merged.reset();
  REQUIRE(merged.count() == 0);
}
