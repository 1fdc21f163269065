// Key distributions. The Zipf sampler is rejection-inversion (W. Hörmann, G. Derflinger,
// "Rejection- inversion to generate variates from monotone discrete distributions", 1996),
// following the formulation in Apache Commons RNG: sample a continuous hat by inverting its
// integral H, round to the nearest integer, accept if the point lies under the histogram of the
// true pmf.
#include "sd/loadgen/keys.hpp"

#include <algorithm>
#include <cmath>

namespace sd::loadgen {

std::optional<KeyDist> parse_key_dist(std::string_view s) {
  if (s == "uniform") return KeyDist::kUniform;
  if (s == "zipf") return KeyDist::kZipf;
  if (s == "hot") return KeyDist::kHot;
  if (s == "distinct") return KeyDist::kDistinct;
  return std::nullopt;
}

std::string_view key_dist_name(KeyDist d) {
  switch (d) {
    case KeyDist::kUniform:
      return "uniform";
    case KeyDist::kZipf:
      return "zipf";
    case KeyDist::kHot:
      return "hot";
    case KeyDist::kDistinct:
      return "distinct";
  }
  return "?";
}

uint64_t stream_seed(uint64_t seed, uint64_t stream) {
  // SplitMix64 finaliser over seed and stream; mt19937_64 seeded with close integers would still
  // be fine, but mixing keeps streams independent even for seed 0/1 and adjacent connections.
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

namespace {
// log1p(x)/x and expm1(x)/x with series near 0, where the quotients lose precision.
double helper1(double x) {
  return std::abs(x) > 1e-8 ? std::log1p(x) / x : 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}
double helper2(double x) {
  return std::abs(x) > 1e-8 ? std::expm1(x) / x
                            : 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}
}  // namespace

ZipfSampler::ZipfSampler(uint64_t n, double s) : n_(std::max<uint64_t>(n, 1)), s_(s) {
  h_integral_x1_ = h_integral(1.5) - 1.0;
  h_integral_n_ = h_integral(static_cast<double>(n_) + 0.5);
  sv_ = 2.0 - h_integral_inverse(h_integral(2.5) - h(2.0));
}

double ZipfSampler::h(double x) const {
  return std::exp(-s_ * std::log(x));
}

double ZipfSampler::h_integral(double x) const {
  double log_x = std::log(x);
  return helper2((1.0 - s_) * log_x) * log_x;
}

double ZipfSampler::h_integral_inverse(double x) const {
  double t = x * (1.0 - s_);
  if (t < -1.0) t = -1.0;  // numerical guard: the true value is never below -1
  return std::exp(helper1(t) * x);
}

uint64_t ZipfSampler::sample(std::mt19937_64& rng) const {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (;;) {
    double u = h_integral_n_ + unit(rng) * (h_integral_x1_ - h_integral_n_);
    double x = h_integral_inverse(u);
    double kd = std::floor(x + 0.5);
    uint64_t k = kd < 1.0 ? 1 : (kd > static_cast<double>(n_) ? n_ : static_cast<uint64_t>(kd));
    double kf = static_cast<double>(k);
    if (kf - x <= sv_ || u >= h_integral(kf + 0.5) - h(kf)) return k;
  }
}

double ZipfSampler::pmf(uint64_t k) const {
  double norm = 0;
  for (uint64_t i = 1; i <= n_; ++i) norm += std::pow(static_cast<double>(i), -s_);
  return std::pow(static_cast<double>(k), -s_) / norm;
}

KeyChooser::KeyChooser(const KeyConfig& cfg, uint64_t seed, uint64_t connection)
    : dist_(cfg.dist),
      keyspace_(std::max<uint64_t>(cfg.keyspace, 1)),
      connection_(connection),
      prefix_(cfg.prefix),
      rng_(stream_seed(seed, connection)) {
  if (dist_ == KeyDist::kZipf) zipf_.emplace(keyspace_, cfg.zipf_s);
}

uint64_t KeyChooser::next_index() {
  switch (dist_) {
    case KeyDist::kUniform:
      return std::uniform_int_distribution<uint64_t>(0, keyspace_ - 1)(rng_);
    case KeyDist::kZipf:
      return zipf_->sample(rng_) - 1;
    case KeyDist::kHot:
      return 0;
    case KeyDist::kDistinct:
      return connection_;
  }
  return 0;
}

}  // namespace sd::loadgen
