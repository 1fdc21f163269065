// Rule 4: the clients' acquire/release operations against a mutex model (free | held by p).
//
// The search is WGL in Lowe's "just-in-time" form. Walking the history's events in time order,
// it keeps the set of configurations (model state, bitset of the open operations already
// linearized) that some order of the operations so far can reach. At a call the operation joins
// the open window; at a return every configuration must have linearized it: from each one a DFS
// linearizes open operations (legal model steps only) until it reaches the returning one, and the
// resulting configurations -- memoized, so each is explored once per step -- form the new set. A
// returned operation is linearized in every configuration, so it leaves the bitset: the bitset
// only spans operations open at that moment, and the history is in effect cut into independent
// pieces at every return (a quiet point, where one configuration remains and nothing is open, is
// a full cut). That keeps a 30 s history of thousands of operations to a few states per step.
//
// Operations with an unknown outcome (info, or still open at the end) may take effect at any
// point after their call, or never. Once called, two such operations of the same process and
// kind are interchangeable, so the configuration counts them per (process, acquire|release)
// instead of carrying one bit each forever; a configuration that has at least as many of each
// left as another with the same state and window dominates it, and the dominated one is dropped.
//
// An empty set at a return is a violation: no order of the operations explains that completion.
// The checker reports it, then continues as if the operation had taken effect anyway (so one
// lease expiry is one violation, not a cascade). Each configuration explored counts against
// CheckOptions::max_search_states; running out gives kUnknown (or kViolated if a violation was
// already found), never a guess.

#include <algorithm>
#include <map>
#include <unordered_map>

#include "checker_internal.hpp"

namespace sd::dlock::lab::detail {

namespace {

constexpr size_t kNone = static_cast<size_t>(-1);
constexpr int kFree = -1;
constexpr size_t kMaxOpen = 64;  // the window is one uint64_t

struct Op {
  int proc = 0;
  bool release = false;
  size_t invoke = kNone;
  size_t done = kNone;   // the completion event (ok / fail / info), kNone if never completed
  bool ok = false;       // completed ok: must be linearized before its return
  bool dropped = false;  // completed fail: did not happen
};

struct Config {
  int holder = kFree;
  uint64_t lin = 0;            // bit per window slot: that open operation is already linearized
  std::vector<uint16_t> info;  // unknown-outcome operations still available, per kind
  size_t witness = kNone;      // the event that set `holder` (diagnostics only)
};

struct Key {
  int holder;
  uint64_t lin;
  bool operator==(const Key&) const = default;
};
struct KeyHash {
  size_t operator()(const Key& k) const {
    return std::hash<uint64_t>()(k.lin * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(k.holder));
  }
};

bool covers(const std::vector<uint16_t>& a, const std::vector<uint16_t>& b) {  // a >= b
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] < b[i]) return false;
  }
  return true;
}

// Configurations kept up to dominance: per (holder, window) only count vectors not covered by
// another. Without unknown-outcome operations that is a plain set.
class ConfigSet {
 public:
  // False when c is covered by a configuration already in the set.
  bool insert(Config c, bool drop_covered) {
    auto& bucket = map_[Key{c.holder, c.lin}];
    for (const Config& o : bucket) {
      if (covers(o.info, c.info)) return false;
    }
    if (drop_covered) {
      std::erase_if(bucket, [&](const Config& o) { return covers(c.info, o.info); });
    }
    bucket.push_back(std::move(c));
    return true;
  }
  std::vector<Config> take() {
    std::vector<Config> out;
    for (auto& [k, bucket] : map_) {
      for (Config& c : bucket) out.push_back(std::move(c));
    }
    map_.clear();
    return out;
  }
  bool empty() const { return map_.empty(); }

 private:
  std::unordered_map<Key, std::vector<Config>, KeyHash> map_;
};

class Search {
 public:
  Search(const HistoryView& h, const CheckOptions& o, RuleResult& r) : h_(h), o_(o), r_(r) {}

  void run() {
    collect_ops();
    if (ops_.empty()) {
      append_note(r_, "no acquire/release operations");
      return;
    }
    frontier_.push_back(Config{});
    size_t steps = 0;
    for (const auto& [idx, is_call, op] : stream()) {
      bool okay = is_call ? on_call(op) : on_return(op);
      if (!okay) {
        r_.verdict = r_.violations.empty() ? Verdict::kUnknown : Verdict::kViolated;
        append_note(r_, stop_reason_ + " at " + h_.ms(h_.at(idx).time_ns) + " (#" +
                            std::to_string(idx) + "), after " + std::to_string(steps) + " of " +
                            std::to_string(ok_ops_) +
                            " completed operations; the rest is not checked");
        finish_rule(r_, dropped_);
        return;
      }
      if (!is_call) ++steps;
    }
    std::string summary = std::to_string(ok_ops_) + " completed operations";
    if (info_ops_ > 0) summary += ", " + std::to_string(info_ops_) + " with unknown outcome";
    summary += ", " + std::to_string(states_) + " search states";
    append_note(r_, summary);
    if (!r_.violations.empty()) {
      append_note(r_, "after each violation the search goes on as if that operation took effect");
    }
    finish_rule(r_, dropped_);
  }

 private:
  struct Step {
    size_t idx;
    bool is_call;
    size_t op;
  };

  // Pairs each client's invoke with its next completion of the same f.
  void collect_ops() {
    std::map<std::string, int> procs;
    std::vector<size_t> open;  // per proc: the open op, or kNone
    size_t stray = 0, reinvoked = 0;
    for (size_t i : h_.order) {
      const Event& e = h_.at(i);
      if (e.f != "acquire" && e.f != "release") continue;
      if (e.process == "resource" || e.process == "nemesis") continue;
      auto [it, fresh] = procs.emplace(e.process, static_cast<int>(procs.size()));
      if (fresh) {
        open.push_back(kNone);
        proc_names_.push_back(e.process);
      }
      const int p = it->second;
      size_t& cur = open[static_cast<size_t>(p)];
      if (e.type == EventType::kInvoke) {
        if (cur != kNone) ++reinvoked;  // its outcome never came: unknown
        cur = ops_.size();
        ops_.push_back(Op{p, e.f == "release", i});
        continue;
      }
      if (cur == kNone || ops_[cur].release != (e.f == "release")) {
        ++stray;
        continue;
      }
      Op& op = ops_[cur];
      op.done = i;
      op.ok = e.type == EventType::kOk;
      op.dropped = e.type == EventType::kFail;
      cur = kNone;
    }
    for (const Op& op : ops_) {
      if (op.ok) ++ok_ops_;
      if (!op.ok && !op.dropped) ++info_ops_;
    }
    if (stray > 0) {
      append_note(r_, std::to_string(stray) + " completions without a matching invoke ignored");
    }
    if (reinvoked > 0) {
      append_note(r_, std::to_string(reinvoked) +
                          " operations re-invoked before completing treated as unknown");
    }
  }

  // Calls and returns in time order; at equal times calls first (concurrent, not ordered).
  std::vector<Step> stream() const {
    std::vector<Step> s;
    for (size_t k = 0; k < ops_.size(); ++k) {
      const Op& op = ops_[k];
      if (op.dropped) continue;
      s.push_back({op.invoke, true, k});
      if (op.ok) s.push_back({op.done, false, k});
    }
    std::stable_sort(s.begin(), s.end(), [&](const Step& a, const Step& b) {
      int64_t ta = h_.at(a.idx).time_ns, tb = h_.at(b.idx).time_ns;
      if (ta != tb) return ta < tb;
      return a.is_call && !b.is_call;
    });
    return s;
  }

  size_t kind_of(const Op& op) {
    size_t raw = static_cast<size_t>(op.proc) * 2 + (op.release ? 1 : 0);
    auto [it, fresh] = kinds_.emplace(raw, kinds_.size());
    if (fresh) {
      kind_ops_.push_back(raw);
      kind_last_.push_back(kNone);
    }
    return it->second;
  }

  bool on_call(size_t k) {
    const Op& op = ops_[k];
    if (!op.ok) {  // unknown outcome: one more of its kind is available from now on
      size_t kind = kind_of(op);
      kind_last_[kind] = op.invoke;
      for (Config& c : frontier_) {
        c.info.resize(kinds_.size(), 0);
        if (c.info[kind] < UINT16_MAX) ++c.info[kind];
      }
      return true;
    }
    auto free_slot = std::find(slots_.begin(), slots_.end(), kNone);
    if (free_slot == slots_.end()) {
      if (slots_.size() == kMaxOpen) {
        stop_reason_ = "more than " + std::to_string(kMaxOpen) + " operations open at once";
        return false;
      }
      free_slot = slots_.insert(slots_.end(), kNone);
    }
    *free_slot = k;
    slot_of_[k] = static_cast<size_t>(free_slot - slots_.begin());
    return true;
  }

  // Applies `op` of `proc` to c if the mutex allows it.
  static bool step(Config& c, int proc, bool release, size_t witness) {
    if (release) {
      if (c.holder != proc) return false;
      c.holder = kFree;
    } else {
      if (c.holder != kFree) return false;
      c.holder = proc;
    }
    c.witness = witness;
    return true;
  }

  bool on_return(size_t k) {
    const size_t slot = slot_of_[k];
    const uint64_t bit = uint64_t{1} << slot;
    ConfigSet next;
    for (Config& c : frontier_) {
      c.info.resize(kinds_.size(), 0);
      if (c.lin & bit) {  // linearized earlier, as part of another operation's order
        Config n = c;
        n.lin &= ~bit;
        next.insert(std::move(n), true);
        continue;
      }
      if (!explore(c, bit, next)) return false;
    }
    if (next.empty()) {
      report(k);
      for (Config& c : frontier_) {  // go on as if it took effect
        Config n = c;
        n.lin &= ~bit;
        n.holder = ops_[k].release ? kFree : ops_[k].proc;
        n.witness = ops_[k].done;
        next.insert(std::move(n), true);
      }
    }
    frontier_ = next.take();
    slots_[slot] = kNone;
    slot_of_.erase(k);
    return true;
  }

  // DFS from `start` over legal linearizations of open and unknown-outcome operations, stopping
  // each path where the returning operation (window bit `bit`) is linearized.
  bool explore(const Config& start, uint64_t bit, ConfigSet& next) {
    ConfigSet seen;
    std::vector<Config> stack{start};
    seen.insert(start, false);
    while (!stack.empty()) {
      Config c = std::move(stack.back());
      stack.pop_back();
      if (++states_ > o_.max_search_states) {
        stop_reason_ =
            "search budget of " + std::to_string(o_.max_search_states) + " states exhausted";
        return false;
      }
      for (size_t s = 0; s < slots_.size(); ++s) {
        const uint64_t b = uint64_t{1} << s;
        if (slots_[s] == kNone || (c.lin & b)) continue;
        const Op& op = ops_[slots_[s]];
        Config n = c;
        if (!step(n, op.proc, op.release, op.done)) continue;
        n.lin |= b;
        if (b == bit) {
          n.lin &= ~bit;
          next.insert(std::move(n), true);
        } else if (seen.insert(n, false)) {
          stack.push_back(std::move(n));
        }
      }
      for (size_t kind = 0; kind < c.info.size(); ++kind) {
        if (c.info[kind] == 0) continue;
        Config n = c;
        const int proc = static_cast<int>(kind_ops_[kind] / 2);
        if (!step(n, proc, kind_ops_[kind] % 2 == 1, kind_last_[kind])) continue;
        --n.info[kind];
        if (seen.insert(n, false)) stack.push_back(std::move(n));
      }
    }
    return true;
  }

  void report(size_t k) {
    const Op& op = ops_[k];
    const Event& done = h_.at(op.done);
    const std::string& who = proc_names_[static_cast<size_t>(op.proc)];
    Violation v;
    v.events = {op.invoke, op.done};
    std::string msg = who + "'s " + (op.release ? "release" : "acquire") + " (invoked #" +
                      std::to_string(op.invoke) + " at " + h_.ms(h_.at(op.invoke).time_ns) +
                      ", ok #" + std::to_string(op.done) + " at " + h_.ms(done.time_ns);
    if (done.token) msg += ", token " + std::to_string(*done.token);
    msg += ") cannot be linearized against a mutex: ";
    // What the lock was in the configurations that reached this point (a few of them).
    std::vector<std::string> states;
    for (const Config& c : frontier_) {
      if (states.size() == 3) break;
      std::string s;
      if (c.holder == kFree) {
        s = "free";
        if (c.witness != kNone) s += " (released by #" + std::to_string(c.witness) + ")";
      } else {
        s = "held by " + proc_names_[static_cast<size_t>(c.holder)];
        if (c.witness != kNone) {
          const Event& w = h_.at(c.witness);
          s += " (" + std::string(w.type == EventType::kOk ? "acquired" : "maybe acquired") +
               " by #" + std::to_string(c.witness) + " at " + h_.ms(w.time_ns);
          if (w.token) s += ", token " + std::to_string(*w.token);
          s += ", not released since)";
        }
      }
      if (std::find(states.begin(), states.end(), s) != states.end()) continue;
      states.push_back(s);
      if (c.witness != kNone) v.events.push_back(c.witness);
    }
    msg += op.release ? who + " did not hold the lock; it was " : "the lock was ";
    for (size_t i = 0; i < states.size(); ++i) msg += (i ? " or " : "") + states[i];
    v.message = msg;
    std::sort(v.events.begin(), v.events.end());
    v.events.erase(std::unique(v.events.begin(), v.events.end()), v.events.end());
    add_violation(r_, std::move(v), &dropped_);
  }

  const HistoryView& h_;
  const CheckOptions& o_;
  RuleResult& r_;
  std::vector<Op> ops_;
  std::vector<std::string> proc_names_;
  size_t ok_ops_ = 0, info_ops_ = 0, dropped_ = 0;
  uint64_t states_ = 0;
  std::string stop_reason_;
  std::vector<Config> frontier_;
  std::vector<size_t> slots_;                   // window slot -> open op (kNone = free)
  std::unordered_map<size_t, size_t> slot_of_;  // open op -> its slot
  std::map<size_t, size_t> kinds_;              // proc*2+release -> compact kind index
  std::vector<size_t> kind_ops_;                // compact kind -> proc*2+release
  std::vector<size_t> kind_last_;               // compact kind -> latest such invoke (witness)
};

}  // namespace

RuleResult check_linearizable(const HistoryView& h, const CheckOptions& o) {
  RuleResult r;
  r.rule = "linearizable";
  Search(h, o, r).run();
  return r;
}

}  // namespace sd::dlock::lab::detail
