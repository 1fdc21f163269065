// Rules 1-3, from the fenced resource's own log ("resource" events: ok = accepted, fail =
// rejected). These are what the data saw, whatever the lock service believed.

#include <algorithm>
#include <map>
#include <optional>

#include "checker_internal.hpp"

namespace sd::dlock::lab::detail {

namespace {

constexpr size_t kNone = static_cast<size_t>(-1);

bool is_resource(const Event& e, const CheckOptions& o) {
  if (e.process != "resource") return false;
  if (e.type != EventType::kOk && e.type != EventType::kFail) return false;  // completions only
  if (e.f != "read" && e.f != "write") return false;
  return e.key.empty() || e.key == o.key;
}

// The resource's events in time order.
std::vector<size_t> resource_events(const HistoryView& h, const CheckOptions& o) {
  std::vector<size_t> out;
  for (size_t i : h.order) {
    if (is_resource(h.at(i), o)) out.push_back(i);
  }
  return out;
}

std::string tok(const Event& e) {
  return e.token ? std::to_string(*e.token) : std::string("none");
}

// Per client: its last accepted read since its last write (any outcome). A write's critical
// section starts there -- when the read carries the same token (a read from another lock cycle
// whose write never came does not count).
class LastReads {
 public:
  void on_event(const HistoryView& h, size_t i) {
    const Event& e = h.at(i);
    if (e.f == "read") {
      if (e.type == EventType::kOk) last_[e.client] = i;
    } else {
      last_.erase(e.client);
    }
  }
  // Call before on_event() for the write itself.
  size_t read_for(const HistoryView& h, size_t write) const {
    const Event& w = h.at(write);
    auto it = last_.find(w.client);
    if (it == last_.end()) return kNone;
    const Event& r = h.at(it->second);
    if (r.token && w.token && *r.token != *w.token) return kNone;
    return it->second;
  }

 private:
  std::map<std::string, size_t> last_;
};

struct Section {
  std::string client;
  size_t read = kNone;  // kNone: no matching read; the section is the write's instant
  size_t write = kNone;
  int64_t start = 0, end = 0;
};

std::string describe_section(const HistoryView& h, const Section& s) {
  const Event& w = h.at(s.write);
  std::string out = s.client + "'s critical section (token " + tok(w) + ", ";
  if (s.read != kNone) {
    out += "read #" + std::to_string(s.read) + " at " + h.ms(s.start) + " -> ";
  }
  out += "write #" + std::to_string(s.write) + " of value " +
         (w.value ? std::to_string(*w.value) : std::string("?")) + " at " + h.ms(s.end) + ")";
  return out;
}

}  // namespace

RuleResult check_mutual_exclusion(const HistoryView& h, const CheckOptions& o) {
  RuleResult r;
  r.rule = "mutual-exclusion";
  std::vector<Section> sections;
  LastReads reads;
  for (size_t i : resource_events(h, o)) {
    const Event& e = h.at(i);
    if (e.f == "write" && e.type == EventType::kOk) {
      Section s;
      s.client = e.client;
      s.write = i;
      s.read = reads.read_for(h, i);
      s.end = e.time_ns;
      s.start = s.read == kNone ? e.time_ns : h.at(s.read).time_ns;
      sections.push_back(std::move(s));
    }
    reads.on_event(h, i);
  }
  if (sections.empty()) {
    r.note = "no accepted writes on key \"" + o.key + "\"";
    return r;
  }
  std::stable_sort(sections.begin(), sections.end(),
                   [](const Section& a, const Section& b) { return a.start < b.start; });
  // Sweep by start: every earlier section still open at this one's start overlaps it.
  size_t dropped = 0;
  std::vector<size_t> active;
  for (size_t k = 0; k < sections.size(); ++k) {
    const Section& b = sections[k];
    std::erase_if(active, [&](size_t a) { return sections[a].end <= b.start; });
    for (size_t a_idx : active) {
      const Section& a = sections[a_idx];
      if (a.client == b.client || !(b.start < a.end)) continue;
      Violation v;
      v.message = describe_section(h, a) + " overlaps " + describe_section(h, b) +
                  ": the resource accepted both";
      for (size_t i : {a.read, a.write, b.read, b.write}) {
        if (i != kNone) v.events.push_back(i);
      }
      std::sort(v.events.begin(), v.events.end());
      add_violation(r, std::move(v), &dropped);
    }
    active.push_back(k);
  }
  finish_rule(r, dropped);
  return r;
}

RuleResult check_fencing(const HistoryView& h, const CheckOptions& o) {
  RuleResult r;
  r.rule = "fencing";
  size_t dropped = 0, untokened = 0, writes = 0;
  size_t prev_write = kNone;  // the last accepted write with a token
  size_t max_read = kNone;    // the accepted read with the highest token so far
  for (size_t i : resource_events(h, o)) {
    const Event& e = h.at(i);
    if (e.type != EventType::kOk) continue;
    if (!e.token) {
      if (e.f == "write") ++untokened;
      continue;
    }
    if (e.f == "read") {
      if (max_read == kNone || *e.token > *h.at(max_read).token) max_read = i;
      continue;
    }
    ++writes;
    std::vector<std::string> why;
    Violation v;
    if (prev_write != kNone && *e.token <= *h.at(prev_write).token) {
      const Event& p = h.at(prev_write);
      why.push_back("not greater than the previous accepted write's token " + tok(p) + " (#" +
                    std::to_string(prev_write) + " by " + p.client + " at " + h.ms(p.time_ns) +
                    ")");
      v.events.push_back(prev_write);
    }
    if (max_read != kNone && *h.at(max_read).token > *e.token) {
      const Event& m = h.at(max_read);
      why.push_back("lower than token " + tok(m) + " the resource had already seen in a read (#" +
                    std::to_string(max_read) + " by " + m.client + " at " + h.ms(m.time_ns) + ")");
      v.events.push_back(max_read);
    }
    if (!why.empty()) {
      v.message = "stale write accepted: " + e.client + " wrote with token " + tok(e) + " at " +
                  h.ms(e.time_ns) + " (#" + std::to_string(i) + "), " + why[0];
      if (why.size() > 1) v.message += ", and " + why[1];
      v.events.push_back(i);
      std::sort(v.events.begin(), v.events.end());
      add_violation(r, std::move(v), &dropped);
    }
    if (prev_write == kNone || *e.token > *h.at(prev_write).token) prev_write = i;
  }
  if (writes == 0 && untokened == 0) r.note = "no accepted writes on key \"" + o.key + "\"";
  if (untokened > 0) {
    append_note(r, std::to_string(untokened) + " accepted writes without a token not checked");
  }
  finish_rule(r, dropped);
  return r;
}

RuleResult check_lost_update(const HistoryView& h, const CheckOptions& o) {
  RuleResult r;
  r.rule = "lost-update";
  size_t dropped = 0, valueless = 0, writes = 0;
  int64_t value = 0;  // the counter starts at 0
  size_t prev_write = kNone;
  LastReads reads;
  for (size_t i : resource_events(h, o)) {
    const Event& e = h.at(i);
    if (e.f == "write" && e.type == EventType::kOk) {
      if (!e.value) {
        ++valueless;
      } else {
        ++writes;
        if (*e.value != value + 1) {
          Violation v;
          std::string prev = prev_write == kNone ? std::string("the initial value 0")
                                                 : "value " + std::to_string(value) +
                                                       " written by " + h.at(prev_write).client +
                                                       " (#" + std::to_string(prev_write) + " at " +
                                                       h.ms(h.at(prev_write).time_ns) + ")";
          v.message = e.client + " wrote " + std::to_string(*e.value) + " at " + h.ms(e.time_ns) +
                      " (#" + std::to_string(i) + ") over " + prev + "; expected " +
                      std::to_string(value + 1);
          if (*e.value <= value) {
            int64_t lost = value + 1 - *e.value;
            v.message += ": " + std::to_string(lost) +
                         (lost == 1 ? " increment was lost" : " increments were lost");
          } else {
            v.message += ": the counter jumped";
          }
          if (size_t rd = reads.read_for(h, i); rd != kNone) {
            v.message += " (" + e.client + " had read " +
                         (h.at(rd).value ? std::to_string(*h.at(rd).value) : "?") + " at " +
                         h.ms(h.at(rd).time_ns) + ", #" + std::to_string(rd) + ")";
            v.events.push_back(rd);
          }
          if (prev_write != kNone) v.events.push_back(prev_write);
          v.events.push_back(i);
          std::sort(v.events.begin(), v.events.end());
          add_violation(r, std::move(v), &dropped);
        }
        value = *e.value;  // go on from what the resource now holds: one loss, one violation
        prev_write = i;
      }
    }
    reads.on_event(h, i);
  }
  if (writes == 0 && valueless == 0) r.note = "no accepted writes on key \"" + o.key + "\"";
  if (valueless > 0) {
    append_note(r, std::to_string(valueless) + " accepted writes without a value not checked");
  }
  finish_rule(r, dropped);
  return r;
}

}  // namespace sd::dlock::lab::detail
