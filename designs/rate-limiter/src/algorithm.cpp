// Algorithm names, limit validation and the factory over the per-algorithm files.

#include <chrono>
#include <string>

#include "keyed_limiter.hpp"
#include "sd/ratelimit/limiter.hpp"

namespace sd::ratelimit {
namespace {

constexpr uint64_t kMaxCount = 1'000'000'000;    // requests, burst: sums stay exact in doubles
constexpr uint64_t kMaxLogRequests = 1'000'000;  // sliding_log keeps up to this many entries/key
constexpr Nanos kMaxPeriod = std::chrono::hours(24 * 366);  // "1 year"
constexpr Nanos kMinPeriod = std::chrono::microseconds(1);  // decisions have µs resolution

bool is_window(Algorithm a) {
  return a == Algorithm::kFixedWindow || a == Algorithm::kSlidingLog ||
         a == Algorithm::kSlidingWindow;
}

}  // namespace

std::string_view algorithm_name(Algorithm a) {
  switch (a) {
    case Algorithm::kTokenBucket:
      return "token_bucket";
    case Algorithm::kLeakyBucket:
      return "leaky_bucket";
    case Algorithm::kLeakyQueue:
      return "leaky_queue";
    case Algorithm::kFixedWindow:
      return "fixed_window";
    case Algorithm::kSlidingLog:
      return "sliding_log";
    case Algorithm::kSlidingWindow:
      return "sliding_window";
    case Algorithm::kGcra:
      return "gcra";
  }
  return "unknown";
}

std::optional<Algorithm> parse_algorithm(std::string_view name) {
  for (Algorithm a : kAllAlgorithms) {
    if (algorithm_name(a) == name) return a;
  }
  return std::nullopt;
}

std::string validate_limit(Algorithm a, const Limit& limit) {
  const std::string name(algorithm_name(a));
  if (limit.requests == 0) return "requests must be > 0";
  if (limit.requests > kMaxCount) return "requests must be at most 1000000000";
  if (limit.period <= Nanos{0}) return "period must be > 0";
  if (limit.period < kMinPeriod) return "period must be at least 1us (decisions use microseconds)";
  if (limit.period > kMaxPeriod) return "period must be at most 1 year (366 days)";
  if (is_window(a)) {
    if (limit.burst != 0) return "burst is not used by " + name + "; leave it 0";
  } else if (limit.burst > kMaxCount) {
    return "burst must be at most 1000000000";
  }
  if (a == Algorithm::kSlidingLog && limit.requests > kMaxLogRequests) {
    return "sliding_log keeps one entry per admitted request: requests must be at most 1000000 "
           "(sliding_window approximates larger limits)";
  }
  // The longest wait a limit implies (refilling the whole burst, or the leaky queue's full queue)
  // must stay far inside Nanos.
  const uint64_t burst = detail::effective_burst(a, limit);
  const double drain_ns = static_cast<double>(burst) * static_cast<double>(limit.period.count()) /
                          static_cast<double>(limit.requests);
  if (drain_ns > static_cast<double>(kMaxPeriod.count())) {
    return "burst * period / requests (the time to drain a full burst) must be at most 1 year";
  }
  return {};
}

std::unique_ptr<Limiter> make_limiter(Algorithm a, const Limit& limit) {
  switch (a) {
    case Algorithm::kTokenBucket:
      return detail::make_token_bucket(limit);
    case Algorithm::kLeakyBucket:
      return detail::make_leaky_bucket(limit);
    case Algorithm::kLeakyQueue:
      return detail::make_leaky_queue(limit);
    case Algorithm::kFixedWindow:
      return detail::make_fixed_window(limit);
    case Algorithm::kSlidingLog:
      return detail::make_sliding_log(limit);
    case Algorithm::kSlidingWindow:
      return detail::make_sliding_window(limit);
    case Algorithm::kGcra:
      return detail::make_gcra(limit);
  }
  return nullptr;
}

}  // namespace sd::ratelimit
