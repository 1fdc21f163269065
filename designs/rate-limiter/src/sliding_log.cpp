// Sliding log: the exact limit — at most `requests` units in any trailing period. Each key keeps
// the (time, units) of its admitted requests inside the period in a small ring buffer; entries of
// the same microsecond are merged (they expire together, so nothing observable changes).

#include <cstdint>
#include <memory>
#include <utility>

#include "keyed_limiter.hpp"

namespace sd::ratelimit::detail {
namespace {

struct Entry {
  double time;  // µs
  double units;
};

// Power-of-two ring of entries, oldest first. 24 bytes when empty.
struct Log {
  std::unique_ptr<Entry[]> buf;
  uint32_t cap = 0;
  uint32_t head = 0;
  uint32_t size = 0;
  uint32_t sum = 0;  // units in the log (<= requests <= 1e9)

  const Entry& at(uint32_t i) const { return buf[(head + i) & (cap - 1)]; }
  Entry& at(uint32_t i) { return buf[(head + i) & (cap - 1)]; }
  const Entry& newest() const { return at(size - 1); }

  void reallocate(uint32_t new_cap) {
    auto fresh = std::make_unique<Entry[]>(new_cap);
    for (uint32_t i = 0; i < size; ++i) fresh[i] = at(i);
    buf = std::move(fresh);
    cap = new_cap;
    head = 0;
  }

  // Drops entries that no longer count at t (time <= t - P); gives memory back when mostly empty.
  void prune(double t, double P) {
    const double horizon = t - P;
    while (size > 0 && at(0).time <= horizon) {
      sum -= static_cast<uint32_t>(at(0).units);
      head = (head + 1) & (cap - 1);
      --size;
    }
    if (size == 0) {
      buf.reset();
      cap = head = 0;
    } else if (cap >= 8 && size * 4 <= cap) {
      reallocate(cap / 2);
    }
  }

  void push(double t, double units) {
    sum += static_cast<uint32_t>(units);
    if (size > 0 && newest().time == t) {
      at(size - 1).units += units;
      return;
    }
    if (size == cap) reallocate(cap == 0 ? 1 : cap * 2);
    at(size++) = {t, units};
  }
};

struct SlidingLog {
  using State = Log;
  static constexpr Algorithm kAlgorithm = Algorithm::kSlidingLog;
  static constexpr bool kHeapState = true;

  double R, P;
  explicit SlidingLog(const Limit& l) : R(static_cast<double>(l.requests)), P(period_us(l)) {}

  State fresh(double) const { return {}; }

  // Walking oldest first: the first entry whose expiry (with all older ones) leaves <= R - c.
  double retry_us(const Log& log, double t, double c) const {
    double sum = log.sum;
    for (uint32_t i = 0; i < log.size; ++i) {
      sum -= log.at(i).units;
      if (sum <= R - c) return log.at(i).time + P - t;
    }
    return 0;  // unreachable: an empty log admits any c <= R
  }

  Decision step(Log& s, double t, double c) const {
    if (s.size > 0) t = std::max(t, s.newest().time);  // an earlier now counts as the last seen
    s.prune(t, P);  // changes nothing observable: pruned entries never count again
    const double sum = s.sum;
    Decision d;
    if (sum + c <= R) {
      if (c > 0) s.push(t, c);
      d.allowed = true;
      d.remaining = floor_count(R - (sum + c));
    } else {
      d.remaining = floor_count(R - sum);
      d.retry_after = c > R ? kNever : us_to_nanos(retry_us(s, t, c));
    }
    d.reset_after = s.size > 0 ? us_to_nanos(s.newest().time + P - t) : Nanos{0};
    return d;
  }

  bool idle(const Log& s, double t) const { return s.size == 0 || s.newest().time <= t - P; }
  size_t heap_bytes(const Log& s) const {
    return s.cap > 0 ? malloc_footprint(s.cap * sizeof(Entry)) : 0;
  }
};

}  // namespace

std::unique_ptr<Limiter> make_sliding_log(const Limit& limit) {
  return std::make_unique<KeyedLimiter<SlidingLog>>(limit);
}

}  // namespace sd::ratelimit::detail
