#pragma once
// Timers for sans-io service tests: a service's Scheduler returns these handles, and they fire only
// when the test advances the FakeClock (in 1 ms steps, like an event loop would). Header-only;
// users link sd::net (TimerHandle).

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "sd/base/clock.hpp"
#include "sd/net/server.hpp"

namespace sd::testing {

class ManualTimers {
 public:
  explicit ManualTimers(FakeClock& clock) : clock_(clock) {}

  net::TimerHandle schedule(std::chrono::milliseconds delay, std::function<void()> fn) {
    auto flag = std::make_shared<Flag>();
    entries_.push_back({clock_.now() + delay, std::move(fn), flag});
    delays_.push_back(delay);
    return net::TimerHandle(flag);
  }

  // Advances the clock in 1 ms steps, firing due timers.
  void advance(std::chrono::milliseconds d) {
    for (auto i = std::chrono::milliseconds(0); i < d; i += std::chrono::milliseconds(1)) {
      clock_.advance(std::chrono::milliseconds(1));
      fire_due();
    }
  }

  // Fires every due, uncancelled timer; one that schedules another restarts the scan.
  void fire_due() {
    for (bool fired = true; fired;) {
      fired = false;
      for (size_t i = 0; i < entries_.size(); ++i) {
        if (entries_[i].due > clock_.now()) continue;
        Entry e = std::move(entries_[i]);
        entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
        if (!e.flag->cancelled) e.fn();
        fired = true;
        break;
      }
    }
  }

  size_t live() const {  // armed and not cancelled
    size_t n = 0;
    for (const auto& e : entries_) n += e.flag->cancelled ? 0 : 1;
    return n;
  }
  size_t scheduled() const { return delays_.size(); }  // schedule() calls so far
  const std::vector<std::chrono::milliseconds>& delays() const { return delays_; }

 private:
  struct Flag final : net::TimerHandle::Impl {
    bool cancelled = false;
    void cancel() override { cancelled = true; }
  };
  struct Entry {
    TimePoint due;
    std::function<void()> fn;
    std::shared_ptr<Flag> flag;
  };
  FakeClock& clock_;
  std::vector<Entry> entries_;
  std::vector<std::chrono::milliseconds> delays_;  // of every schedule() call
};

}  // namespace sd::testing
