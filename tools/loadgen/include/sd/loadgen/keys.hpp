#pragma once
// Key choice for lock/KV workloads: seeded distributions over a keyspace of K keys. Each
// connection owns a KeyChooser seeded from (run seed, connection index), so a run's key sequence is
// reproducible per connection regardless of thread scheduling.

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace sd::loadgen {

enum class KeyDist {
  kUniform,   // every key equally likely
  kZipf,      // rank r (1-based) with probability ~ r^-s; key 0 is the hottest
  kHot,       // every op on key 0 (maximum contention)
  kDistinct,  // connection i always uses key i (no contention)
};

std::optional<KeyDist> parse_key_dist(std::string_view s);
std::string_view key_dist_name(KeyDist d);

struct KeyConfig {
  KeyDist dist = KeyDist::kUniform;
  uint64_t keyspace = 1000;  // K
  double zipf_s = 0.99;
  std::string prefix = "sdload-";
};

// Zipf sampler over ranks 1..n by rejection-inversion (Hörmann & Derflinger 1996, as in Apache
// Commons RNG): O(1) memory and expected O(1) time for any n and any s > 0, unlike a CDF table.
class ZipfSampler {
 public:
  ZipfSampler(uint64_t n, double s);
  uint64_t sample(std::mt19937_64& rng) const;  // in [1, n]
  // Exact probability of rank k (for tests; O(n) per call).
  double pmf(uint64_t k) const;

 private:
  double h(double x) const;
  double h_integral(double x) const;
  double h_integral_inverse(double x) const;
  uint64_t n_;
  double s_;
  double h_integral_x1_;
  double h_integral_n_;
  double sv_;
};

class KeyChooser {
 public:
  KeyChooser(const KeyConfig& cfg, uint64_t seed, uint64_t connection);
  uint64_t next_index();  // in [0, K) (distinct: the connection index)
  std::string key_name(uint64_t index) const { return prefix_ + std::to_string(index); }
  std::string next() { return key_name(next_index()); }

 private:
  KeyDist dist_;
  uint64_t keyspace_;
  uint64_t connection_;
  std::string prefix_;
  std::mt19937_64 rng_;
  std::optional<ZipfSampler> zipf_;
};

// The per-connection RNG seed: a SplitMix64 mix of (seed, stream) so neighbouring connections get
// unrelated streams.
uint64_t stream_seed(uint64_t seed, uint64_t stream);

}  // namespace sd::loadgen
