#pragma once
// Injected time. Logic reads time only through Clock so tests can drive it with FakeClock.

#include <chrono>
#include <mutex>

namespace sd {

using Duration = std::chrono::milliseconds;
using TimePoint = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;  // monotonic
};

// The process's steady clock.
class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
  static SystemClock& instance();
};

// A clock that moves only when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start = TimePoint{} + std::chrono::hours(1)) : now_(start) {}
  TimePoint now() const override;
  void advance(std::chrono::nanoseconds d);
  void set(TimePoint t);

 private:
  mutable std::mutex mu_;
  TimePoint now_;  // guarded by mu_
};

// Milliseconds from `from` until `to`, clamped at 0.
inline long long ms_until(TimePoint from, TimePoint to) {
  auto d = std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
  return d < 0 ? 0 : d;
}

// Wall-clock milliseconds since the Unix epoch (for logs and persisted metadata, never for TTLs).
long long wall_ms();

}  // namespace sd
