// The sliding-window counter against the exact sliding log on the same seeded traces (shapes in
// bench/accuracy.hpp). The comparison is printed; the assertions are the bounds theory gives:
//   - the log never has more than R in any trailing period; the counter never more than R in one
//     fixed window (cur <= estimate <= R), hence never more than 2R in a trailing period, which
//     spans at most two windows;
//   - steady traffic at half the limit: the estimate stays <= R/2 + 2, so neither ever denies;
//   - steady traffic at exactly the limit (gap P/R): the log admits all; the counter's estimate
//     exceeds the true trailing count by less than one request, so it denies at most once per
//     window (the denial leaves a unit of slack for the rest of the window) — 2 allowing ties;
//   - steady traffic at twice the limit: both admit about R per period; the log exactly R per
//     trailing period, the counter at least R - 1 in every full window after the first (its last
//     denial in a window happens with the estimate above R - 1).

#include <iostream>

#include "accuracy.hpp"
#include "algorithm_test_util.hpp"

namespace sd::ratelimit {
namespace {

TEST_CASE("sliding window counter error against the exact sliding log", "[unit]") {
  constexpr int64_t R = 100, P = 1'000'000;
  for (uint64_t seed : {1u, 2u}) {
    for (const std::string& shape : accuracy::shapes()) {
      const auto r = accuracy::compare(shape, seed, R, P, 100'000);
      std::cout << "seed " << seed << " " << accuracy::to_json(r) << "\n";
      INFO(accuracy::to_json(r));
      REQUIRE(r.requests == 100'000);
      CHECK(r.max_trailing_log <= R);
      CHECK(r.max_window_counter <= R);
      CHECK(r.max_trailing_counter <= 2 * R);
      CHECK(r.differ == r.over + r.under);
      if (shape == "steady_0.5x") {
        CHECK(r.admitted_log == r.requests);
        CHECK(r.admitted_counter == r.requests);
        CHECK(r.differ == 0);
      } else if (shape == "steady_1x") {
        CHECK(r.admitted_log == r.requests);
        CHECK(r.over == 0);
        CHECK(r.under <= 2 * r.windows);
      } else if (shape == "steady_2x") {
        const size_t full = r.windows - 2;  // the first and last windows are partial
        CHECK(r.admitted_log >= static_cast<size_t>(R) * full);
        CHECK(r.admitted_log <= static_cast<size_t>(R) * r.windows);
        CHECK(r.admitted_counter >= static_cast<size_t>(R - 1) * full);
        CHECK(r.admitted_counter <= static_cast<size_t>(R) * r.windows);
      }
    }
  }
}

}  // namespace
}  // namespace sd::ratelimit
