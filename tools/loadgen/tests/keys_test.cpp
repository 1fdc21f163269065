#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <vector>

#include "sd/loadgen/keys.hpp"

using namespace sd::loadgen;

TEST_CASE("zipf sampler matches the exact pmf", "[unit]") {
  for (double s : {0.5, 0.99, 1.0, 1.5}) {
    const uint64_t n = 50;
    ZipfSampler z(n, s);
    std::mt19937_64 rng(11);
    const int samples = 400'000;
    std::vector<int> counts(n + 1, 0);
    for (int i = 0; i < samples; ++i) {
      uint64_t k = z.sample(rng);
      REQUIRE(k >= 1);
      REQUIRE(k <= n);
      ++counts[k];
    }
    // Chi-square goodness of fit over all ranks; 49 degrees of freedom: the 99.9% quantile is
    // about 85.
    double chi2 = 0;
    for (uint64_t k = 1; k <= n; ++k) {
      double expected = z.pmf(k) * samples;
      chi2 += (counts[k] - expected) * (counts[k] - expected) / expected;
    }
    INFO("s=" << s << " chi2=" << chi2);
    REQUIRE(chi2 < 85);
  }
}

TEST_CASE("zipf sampler stays in range for huge keyspaces", "[unit]") {
  ZipfSampler z(1'000'000'000, 0.99);
  std::mt19937_64 rng(3);
  uint64_t ones = 0;
  for (int i = 0; i < 100'000; ++i) {
    uint64_t k = z.sample(rng);
    REQUIRE(k >= 1);
    REQUIRE(k <= 1'000'000'000);
    ones += k == 1;
  }
  REQUIRE(ones > 0);  // rank 1 is the most likely single key
}

TEST_CASE("key choosers: distributions and reproducibility", "[unit]") {
  KeyConfig cfg;
  cfg.keyspace = 100;

  SECTION("same seed and connection -> same sequence; other connections differ") {
    for (auto d : {KeyDist::kUniform, KeyDist::kZipf}) {
      cfg.dist = d;
      KeyChooser a(cfg, 99, 3), b(cfg, 99, 3), c(cfg, 99, 4), e(cfg, 100, 3);
      std::vector<uint64_t> sa, sb, sc, se;
      for (int i = 0; i < 64; ++i) {
        sa.push_back(a.next_index());
        sb.push_back(b.next_index());
        sc.push_back(c.next_index());
        se.push_back(e.next_index());
      }
      REQUIRE(sa == sb);
      REQUIRE(sa != sc);
      REQUIRE(sa != se);
    }
  }
  SECTION("uniform covers the keyspace evenly") {
    cfg.dist = KeyDist::kUniform;
    KeyChooser k(cfg, 1, 0);
    std::vector<int> counts(100, 0);
    for (int i = 0; i < 100'000; ++i) {
      uint64_t x = k.next_index();
      REQUIRE(x < 100);
      ++counts[x];
    }
    for (int c : counts) REQUIRE(std::abs(c - 1000) < 200);
  }
  SECTION("hot and distinct") {
    cfg.dist = KeyDist::kHot;
    KeyChooser hot(cfg, 1, 5);
    cfg.dist = KeyDist::kDistinct;
    KeyChooser distinct(cfg, 1, 5);
    for (int i = 0; i < 10; ++i) {
      REQUIRE(hot.next_index() == 0);
      REQUIRE(distinct.next_index() == 5);
    }
    REQUIRE(distinct.next() == "sdload-5");
  }
  SECTION("zipf: key 0 is the hottest") {
    cfg.dist = KeyDist::kZipf;
    KeyChooser k(cfg, 1, 0);
    std::map<uint64_t, int> counts;
    for (int i = 0; i < 50'000; ++i) ++counts[k.next_index()];
    for (const auto& [key, c] : counts) REQUIRE(c <= counts[0]);
  }
  REQUIRE(parse_key_dist("zipf") == KeyDist::kZipf);
  REQUIRE(!parse_key_dist("gaussian"));
  REQUIRE(key_dist_name(KeyDist::kDistinct) == "distinct");
}
