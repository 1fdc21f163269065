#pragma once
// Test helpers for the checker: hand-made histories (times in ms) and a synthetic lab run.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sd/dlock/lab/checker.hpp"
#include "sd/dlock/lab/history.hpp"

namespace sd::dlock::lab::test {

inline int64_t ns(double ms) {
  return static_cast<int64_t>(ms * 1e6);
}

// Appends events in the order written; times are ms from 0. Returns the event's index.
class Builder {
 public:
  size_t op(EventType t, const std::string& process, const std::string& f, double ms,
            std::optional<uint64_t> token = std::nullopt,
            std::optional<int64_t> value = std::nullopt, const std::string& error = "") {
    Event e;
    e.type = t;
    e.process = process;
    e.f = f;
    e.time_ns = ns(ms);
    e.token = token;
    e.value = value;
    e.error = error;
    events.push_back(std::move(e));
    return events.size() - 1;
  }
  // A resource event: ok = accepted, fail = rejected.
  size_t res(EventType t, const std::string& f, const std::string& client, double ms,
             uint64_t token, int64_t value) {
    Event e;
    e.type = t;
    e.process = "resource";
    e.f = f;
    e.time_ns = ns(ms);
    e.token = token;
    e.value = value;
    e.key = "counter";
    e.client = client;
    events.push_back(std::move(e));
    return events.size() - 1;
  }
  // A whole clean lock cycle of `c` from `ms`: acquire, read `value`, write value+1, release.
  // Takes 10 ms.
  void cycle(const std::string& c, double ms, uint64_t token, int64_t value) {
    op(EventType::kInvoke, c, "acquire", ms);
    op(EventType::kOk, c, "acquire", ms + 1, token);
    op(EventType::kInvoke, c, "read", ms + 2, token);
    res(EventType::kOk, "read", c, ms + 3, token, value);
    op(EventType::kOk, c, "read", ms + 4, token, value);
    op(EventType::kInvoke, c, "write", ms + 5, token, value + 1);
    res(EventType::kOk, "write", c, ms + 6, token, value + 1);
    op(EventType::kOk, c, "write", ms + 7, token, value + 1);
    op(EventType::kInvoke, c, "release", ms + 8, token);
    op(EventType::kOk, c, "release", ms + 9, token);
  }
  std::vector<Event> sorted() const {
    std::vector<Event> h = events;
    sort_by_time(h);
    return h;
  }
  std::vector<Event> events;
};

inline const RuleResult& rule(const CheckReport& r, const std::string& name) {
  for (const RuleResult& x : r.rules) {
    if (x.rule == name) return x;
  }
  static RuleResult none;
  return none;
}

// A simulated lab run: N clients contending for one lock with FIFO grants, each cycle
// acquire -> read -> work -> write value+1 -> release, against a (fenced or unfenced) counter.
struct SynthOptions {
  int clients = 5;
  double duration_ms = 30'000;
  double work_ms = 50;
  double ttl_ms = 2'000;
  double wait_ms = 2'000;
  uint64_t seed = 42;
  bool fencing = true;
  double info_rate = 0;           // share of acquires / releases whose reply is lost (info)
  std::vector<int> pause_cycles;  // the holder of these cycles pauses after its read
  double pause_ms = 3'000;        // longer than the TTL: the lease expires meanwhile
};

std::vector<Event> synthetic_history(const SynthOptions& o);

}  // namespace sd::dlock::lab::test
