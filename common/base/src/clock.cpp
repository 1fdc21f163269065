#include "sd/base/clock.hpp"

namespace sd {

SystemClock& SystemClock::instance() {
  static SystemClock clock;
  return clock;
}

TimePoint FakeClock::now() const {
  std::lock_guard lock(mu_);
  return now_;
}

void FakeClock::advance(std::chrono::nanoseconds d) {
  std::lock_guard lock(mu_);
  now_ += std::chrono::duration_cast<TimePoint::duration>(d);
}

void FakeClock::set(TimePoint t) {
  std::lock_guard lock(mu_);
  now_ = t;
}

long long wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace sd
