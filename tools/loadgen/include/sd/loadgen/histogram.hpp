#pragma once
// Latency histogram with HDR-style log-linear buckets: values below 256 ns are exact; above, each
// power of two is split into 128 linear sub-buckets, so a bucket is at most 1/128 (0.78%) of its
// value wide and the reported midpoint is within 0.4%. Fixed size (~35 KB), O(1) record, and
// mergeable, so each engine thread keeps its own and they are summed at the end (no sharing on the
// hot path).

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sd::loadgen {

class Histogram {
 public:
  // Largest value tracked exactly by bucket; larger values are clamped (~18 minutes in ns).
  static constexpr uint64_t kMaxValue = (uint64_t{1} << 40) - 1;

  Histogram();

  void record(uint64_t value_ns);  // values above kMaxValue count as kMaxValue
  void merge(const Histogram& other);
  void reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const;  // 0 when empty

  // Nearest-rank percentile (p in [0, 100]): the value v such that at least p% of recorded values
  // are <= v, reported as its bucket's midpoint clamped to [min, max]. 0 when empty; p >= 100 is
  // the exact max.
  uint64_t percentile(double p) const;

  // Bucket math, public for tests.
  static size_t bucket_of(uint64_t v);
  static uint64_t bucket_low(size_t index);
  static uint64_t bucket_high(size_t index);  // inclusive
  static size_t bucket_count();

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = 0;
  uint64_t max_ = 0;
  long double sum_ = 0;  // long double: a long run's sum of nanoseconds must not lose the mean
};

}  // namespace sd::loadgen
