// Log-linear bucket layout (see histogram.hpp): index = value for v < 256; otherwise, with
// e = floor(log2 v) >= 8, the top 8 bits of v (in [128, 256)) pick one of 128 sub-buckets of the
// power-of-two range [2^e, 2^(e+1)).
#include "sd/loadgen/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace sd::loadgen {

namespace {
constexpr unsigned kSubBits = 7;                       // 128 sub-buckets per power of two
constexpr uint64_t kLinear = uint64_t{2} << kSubBits;  // 256: exact below this
constexpr unsigned kLinearExp = kSubBits + 1;          // log2(kLinear)
constexpr unsigned kTopExp = 39;                       // floor(log2(kMaxValue))
}  // namespace

size_t Histogram::bucket_count() {
  return kLinear + (kTopExp - kLinearExp + 1) * (uint64_t{1} << kSubBits);
}

size_t Histogram::bucket_of(uint64_t v) {
  v = std::min(v, kMaxValue);
  if (v < kLinear) return static_cast<size_t>(v);
  unsigned e = static_cast<unsigned>(std::bit_width(v)) - 1;
  unsigned shift = e - kSubBits;
  uint64_t sub = (v >> shift) - (uint64_t{1} << kSubBits);  // in [0, 128)
  return static_cast<size_t>(kLinear + (e - kLinearExp) * (uint64_t{1} << kSubBits) + sub);
}

uint64_t Histogram::bucket_low(size_t index) {
  if (index < kLinear) return index;
  uint64_t rel = index - kLinear;
  unsigned e = kLinearExp + static_cast<unsigned>(rel >> kSubBits);
  uint64_t sub = (rel & ((uint64_t{1} << kSubBits) - 1)) + (uint64_t{1} << kSubBits);
  return sub << (e - kSubBits);
}

uint64_t Histogram::bucket_high(size_t index) {
  if (index < kLinear) return index;
  uint64_t rel = index - kLinear;
  unsigned e = kLinearExp + static_cast<unsigned>(rel >> kSubBits);
  return bucket_low(index) + (uint64_t{1} << (e - kSubBits)) - 1;
}

Histogram::Histogram() : counts_(bucket_count(), 0) {}

void Histogram::record(uint64_t v) {
  v = std::min(v, kMaxValue);
  ++counts_[bucket_of(v)];
  if (count_ == 0 || v < min_) min_ = v;
  max_ = std::max(max_, v);
  ++count_;
  sum_ += static_cast<long double>(v);
}

void Histogram::merge(const Histogram& o) {
  if (o.count_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
  min_ = count_ == 0 ? o.min_ : std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
  count_ += o.count_;
  sum_ += o.sum_;
}

void Histogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = min_ = max_ = 0;
  sum_ = 0;
}

double Histogram::mean() const {
  return count_ ? static_cast<double>(sum_ / static_cast<long double>(count_)) : 0.0;
}

uint64_t Histogram::percentile(double p) const {
  if (count_ == 0) return 0;
  if (p >= 100.0) return max_;
  // Nearest rank: the smallest value with at least ceil(p% * n) values at or below it.
  double want = std::ceil(std::max(p, 0.0) / 100.0 * static_cast<double>(count_));
  uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(want));
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      uint64_t mid = bucket_low(i) + (bucket_high(i) - bucket_low(i)) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

}  // namespace sd::loadgen
