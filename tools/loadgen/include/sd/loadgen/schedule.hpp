#pragma once
// Open-loop pacing (wrk2-style coordinated-omission correction) as a pure component: no sockets,
// no sleeps, time passed in. A total rate R over N connections gives each connection the period
// N/R, staggered by i/R so the aggregate arrivals are evenly spaced. Latency is measured from the
// INTENDED send time: when the target stalls, the connection falls behind, sends the backlog
// immediately, and every queued op reports the time it waited, exactly as a user would see it.

#include <chrono>
#include <cstdint>

namespace sd::loadgen {

using SteadyTime = std::chrono::steady_clock::time_point;
using Nanos = std::chrono::nanoseconds;

class OpenLoopSchedule {
 public:
  // rate: total ops/s across all connections (> 0); connections >= 1.
  OpenLoopSchedule(double rate, uint32_t connections, SteadyTime start);
  // Intended send time of connection `conn`'s k-th op (k from 0).
  SteadyTime intended(uint32_t conn, uint64_t k) const;
  Nanos period() const { return period_; }

 private:
  double rate_;
  uint32_t connections_;
  SteadyTime start_;
  Nanos period_;
};

// One connection's view of the schedule: which op is next, when to send it, and the latency to
// record when it completes.
class ConnectionPacer {
 public:
  ConnectionPacer(const OpenLoopSchedule& schedule, uint32_t conn)
      : schedule_(&schedule), conn_(conn) {}
  SteadyTime next_intended() const { return schedule_->intended(conn_, k_); }
  // When to actually send given the current time: the intended time, or now if behind schedule.
  SteadyTime send_time(SteadyTime now) const {
    SteadyTime t = next_intended();
    return t > now ? t : now;
  }
  // The op that started at next_intended() completed at `done`: returns its latency (from the
  // intended time, so queueing behind a stall is included) and moves to the next op.
  Nanos complete(SteadyTime done);
  uint64_t sent() const { return k_; }

 private:
  const OpenLoopSchedule* schedule_;
  uint32_t conn_;
  uint64_t k_ = 0;
};

}  // namespace sd::loadgen
