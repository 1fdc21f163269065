#pragma once
// The rate-limiting algorithms behind one interface. Sans-io and deterministic: time is an
// argument, never read from a clock, so a FakeClock (or a trace) drives them exactly.
//
//   auto l = sd::ratelimit::make_limiter(Algorithm::kGcra, {.requests = 10, .period = 1s, .burst =
//   5}); Decision d = l->decide("user:42", 1, clock.now());
//
// Every algorithm answers the same question — may `cost` more units for `key` pass at `now`? — and
// consumes them only when the answer is yes (a denied request costs nothing, so a client that
// retries after retry_after is admitted).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sd/base/clock.hpp"

namespace sd::ratelimit {

using Nanos = std::chrono::nanoseconds;

enum class Algorithm {
  kTokenBucket,    // bucket of `burst` tokens (default: requests), refilled at requests/period
  kLeakyBucket,    // meter: level drains at requests/period; admit while level + cost <= burst
  kLeakyQueue,     // nginx limit_req with `burst` and without `nodelay`: requests leave one per
                   // period/requests; up to `burst` wait in the queue (Decision::delay), more are
                   // denied
  kFixedWindow,    // at most `requests` per window [k*period, (k+1)*period) of the clock's epoch
  kSlidingLog,     // at most `requests` in any trailing `period` (exact; keeps one entry per unit)
  kSlidingWindow,  // counter approximation: prev_window * (1 - elapsed/period) + current
  kGcra,           // generic cell rate algorithm, redis-cell semantics (burst = max_burst + 1)
};

std::string_view algorithm_name(Algorithm a);  // "token_bucket", "leaky_bucket", "leaky_queue",
                                               // "fixed_window", "sliding_log", "sliding_window",
                                               // "gcra"
std::optional<Algorithm> parse_algorithm(std::string_view name);
inline constexpr Algorithm kAllAlgorithms[] = {Algorithm::kTokenBucket, Algorithm::kLeakyBucket,
                                               Algorithm::kLeakyQueue,  Algorithm::kFixedWindow,
                                               Algorithm::kSlidingLog,  Algorithm::kSlidingWindow,
                                               Algorithm::kGcra};

// `requests` units per `period`. `burst` is the most units admitted at once (token bucket, leaky
// bucket, GCRA; 0 = requests) or the queue length (leaky queue; 0 = no queue); window algorithms
// have no burst and must be given 0.
struct Limit {
  uint64_t requests = 0;  // > 0
  Nanos period{0};        // > 0
  uint64_t burst = 0;
};

// Checks a limit for an algorithm: requests/period > 0, burst allowed, no overflow in the
// algorithm's arithmetic. Returns an error message, or empty when valid.
std::string validate_limit(Algorithm a, const Limit& limit);

struct Decision {
  bool allowed = false;
  uint64_t limit = 0;      // the quota advertised in headers: requests per period
  uint64_t remaining = 0;  // units that would still be admitted right now, after this decision
  Nanos reset_after{0};  // until the key is back to its full quota (window algorithms: window end)
  Nanos retry_after{0};  // denied: the earliest wait after which this cost could pass; allowed: 0.
                         // Nanos::max(): never (cost is larger than the limit can ever admit)
  Nanos delay{0};        // leaky queue, allowed: hold the request this long before serving it
};

// Per-key state for one algorithm and one limit. Not thread-safe (callers shard and lock).
class Limiter {
 public:
  virtual ~Limiter() = default;
  virtual Algorithm algorithm() const = 0;
  virtual const Limit& limit() const = 0;
  // Decides for `cost` units of `key` at `now` and consumes them if allowed. cost 0 only reports
  // (allowed, retry_after and delay 0, state untouched). Time has microsecond resolution.
  // `now` should not go backwards for a key; an earlier now never admits more than the latest
  // would: the buckets and the log clamp it to the last time seen, the windows to the start of
  // the key's current window, and the leaky queue and GCRA just see a longer wait.
  virtual Decision decide(std::string_view key, uint64_t cost, TimePoint now) = 0;
  virtual size_t key_count() const = 0;
  // Bytes held for all keys: the map's nodes, buckets and each key's state (benchmarks divide by
  // key_count() for bytes/key).
  virtual size_t memory_bytes() const = 0;
  // Drops keys whose state is indistinguishable from a fresh key at `now`; returns how many.
  virtual size_t evict_idle(TimePoint now) = 0;
};

std::unique_ptr<Limiter> make_limiter(Algorithm a, const Limit& limit);  // limit must be valid

}  // namespace sd::ratelimit
