#pragma once
// Shared between the checker's rule files (not installed).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sd/dlock/lab/checker.hpp"

namespace sd::dlock::lab::detail {

// The history in time order (indices into it), and its first event's time for relative times.
struct HistoryView {
  const std::vector<Event>& events;
  std::vector<size_t> order;  // stable by time_ns
  int64_t t0 = 0;

  explicit HistoryView(const std::vector<Event>& h);
  const Event& at(size_t i) const { return events[i]; }
  std::string ms(int64_t time_ns) const;  // "1234.567ms" relative to t0
};

// Appends v unless the rule already lists kMaxViolationsPerRule; counts the rest in *dropped.
void add_violation(RuleResult& r, Violation v, size_t* dropped);
// Sets the rule's verdict from its violations and appends "N more not listed" to the note.
void finish_rule(RuleResult& r, size_t dropped);
void append_note(RuleResult& r, const std::string& text);

RuleResult check_mutual_exclusion(const HistoryView& h, const CheckOptions& o);
RuleResult check_fencing(const HistoryView& h, const CheckOptions& o);
RuleResult check_lost_update(const HistoryView& h, const CheckOptions& o);
RuleResult check_linearizable(const HistoryView& h, const CheckOptions& o);

}  // namespace sd::dlock::lab::detail
