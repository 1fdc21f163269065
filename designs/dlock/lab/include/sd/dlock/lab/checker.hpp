#pragma once
// The safety lab's checker: four verdicts over one merged history (see history.hpp).
//
//   "mutual-exclusion"  from the resource's view: an accepted critical section of client c runs
//                       from c's last accepted read (same token) to its accepted write; two such
//                       sections of different clients overlapping is a violation.
//   "fencing"           accepted writes carry strictly increasing tokens, and none carries a token
//                       lower than one the resource had already seen in an accepted read.
//   "lost-update"       each accepted write writes the previous accepted value + 1 (from 0).
//   "linearizable"      the clients' acquire/release operations against a mutex model (free |
//                       held by p), by a WGL-style search with a memo and a state budget; hitting
//                       the budget gives kUnknown, never a guess.
//
// Each violation names the operations involved and lists their indices into the checked history
// (the lab's timeline marks those events red).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sd/dlock/lab/history.hpp"

namespace sd::dlock::lab {

enum class Verdict { kOk, kViolated, kUnknown };

std::string_view verdict_name(Verdict v);  // "ok" | "violated" | "unknown"

struct Violation {
  std::string rule;
  std::string message;
  std::vector<size_t> events;  // indices into the checked history
};

struct RuleResult {
  std::string rule;
  Verdict verdict = Verdict::kOk;
  std::vector<Violation> violations;
  std::string note;  // why unknown, what was skipped, how many more violations were not listed
};

struct CheckOptions {
  uint64_t max_search_states = 2'000'000;  // linearizability search budget (configurations)
  std::string key = "counter";             // the resource key the clients increment
};

struct CheckReport {
  // In order: "mutual-exclusion", "fencing", "lost-update", "linearizable".
  std::vector<RuleResult> rules;
  bool violated() const;
};

// history: sorted by time (sort_by_time); ties keep their order.
CheckReport check_history(const std::vector<Event>& history, const CheckOptions& options = {});

// Human-readable text: one line per rule, then each violation with the operations involved.
std::string format_report(const CheckReport& report, const std::vector<Event>& history);

// {"violated":bool,"rules":[{"rule","verdict","note","violations":[{"message","events":[...],
// "operations":[{"index","process","f","type","time_ms",...}]}]}]} (one line).
std::string report_json(const CheckReport& report, const std::vector<Event>& history);

// One event for messages: "c1 acquire ok token=7 @1234.567ms" (time relative to history's first
// event); resource events name the client: "resource write ok client=c1 token=7 value=12 @...".
std::string describe_event(const std::vector<Event>& history, size_t index);

// The cap on violations listed per rule (the rest are counted in the rule's note).
inline constexpr size_t kMaxViolationsPerRule = 50;

}  // namespace sd::dlock::lab
