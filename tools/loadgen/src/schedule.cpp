#include "sd/loadgen/schedule.hpp"

#include <algorithm>
#include <cmath>

namespace sd::loadgen {

OpenLoopSchedule::OpenLoopSchedule(double rate, uint32_t connections, SteadyTime start)
    : rate_(rate > 0 ? rate : 1.0),
      connections_(std::max<uint32_t>(connections, 1)),
      start_(start),
      period_(Nanos(static_cast<int64_t>(std::llround(1e9 * connections_ / rate_)))) {}

SteadyTime OpenLoopSchedule::intended(uint32_t conn, uint64_t k) const {
  // Computed from the op index rather than accumulated, so rounding never drifts: op k of
  // connection c is the (k*N + c)-th arrival of the whole run, at (k*N + c)/R seconds.
  double arrival = static_cast<double>(k) * connections_ + conn;
  return start_ + Nanos(static_cast<int64_t>(std::llround(arrival * 1e9 / rate_)));
}

Nanos ConnectionPacer::complete(SteadyTime done) {
  Nanos latency = std::max(Nanos(0), std::chrono::duration_cast<Nanos>(done - next_intended()));
  ++k_;
  return latency;
}

}  // namespace sd::loadgen
