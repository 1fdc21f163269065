// The linearizability search against a brute-force oracle on many small random histories: the
// same verdict every time (no false alarms, no misses).

#include <algorithm>
#include <catch2/catch.hpp>
#include <limits>
#include <random>

#include "checker_test_util.hpp"

namespace sd::dlock::lab::test {

namespace {

struct SmallOp {
  int proc;
  bool release;
  double call, ret;  // ret = +inf for unknown outcomes
  EventType outcome;
};

constexpr double kInf = std::numeric_limits<double>::infinity();

// Tries every order of every subset of the unknown-outcome ops: ok ops must all appear, an op
// must come after every ok op that returned before it was called, and the mutex must allow each
// step.
bool brute_linearizable(const std::vector<SmallOp>& ops, std::vector<bool>& used, int holder) {
  bool all_done = true;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].outcome == EventType::kOk && !used[i]) all_done = false;
  }
  if (all_done) return true;
  for (size_t i = 0; i < ops.size(); ++i) {
    const SmallOp& o = ops[i];
    if (used[i] || o.outcome == EventType::kFail) continue;
    bool blocked = false;
    for (size_t j = 0; j < ops.size(); ++j) {
      if (!used[j] && ops[j].outcome == EventType::kOk && ops[j].ret < o.call) blocked = true;
    }
    if (blocked) continue;
    int next;
    if (o.release) {
      if (holder != o.proc) continue;
      next = -1;
    } else {
      if (holder != -1) continue;
      next = o.proc;
    }
    used[i] = true;
    bool ok = brute_linearizable(ops, used, next);
    used[i] = false;
    if (ok) return true;
  }
  return false;
}

// Each process runs its ops one after another; times are distinct.
std::vector<SmallOp> random_ops(std::mt19937_64& rng, int procs, int count) {
  std::uniform_int_distribution<int> pick_proc(0, procs - 1), coin(0, 1), dur(1, 6), gap(0, 4),
      outcome(0, 9);
  std::vector<double> free_at(static_cast<size_t>(procs), 0);
  std::vector<bool> held(static_cast<size_t>(procs), false);
  std::vector<SmallOp> ops;
  double jitter = 0;
  for (int k = 0; k < count; ++k) {
    int p = pick_proc(rng);
    double& t = free_at[static_cast<size_t>(p)];
    SmallOp o;
    o.proc = p;
    // Mostly what a client does (release after acquire), sometimes not.
    o.release = coin(rng) ? held[static_cast<size_t>(p)] : !held[static_cast<size_t>(p)];
    held[static_cast<size_t>(p)] = !o.release;
    jitter += 0.001;  // keeps all times distinct
    o.call = t + gap(rng) + jitter;
    o.ret = o.call + dur(rng);
    int r = outcome(rng);
    o.outcome = r < 6 ? EventType::kOk : (r < 8 ? EventType::kInfo : EventType::kFail);
    t = o.ret + 0.5;
    if (o.outcome == EventType::kInfo && coin(rng)) o.ret = -1;  // still open at the end
    ops.push_back(o);
  }
  return ops;
}

}  // namespace

TEST_CASE("linearizable: the search agrees with brute force on random small histories",
          "[unit][lab]") {
  std::mt19937_64 rng(20240611);
  int violated = 0, ok = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    const int procs = 2 + iter % 2;
    auto ops = random_ops(rng, procs, 3 + iter % 5);
    Builder b;
    for (const SmallOp& o : ops) {
      const std::string c = "c" + std::to_string(o.proc);
      const char* f = o.release ? "release" : "acquire";
      b.op(EventType::kInvoke, c, f, o.call);
      if (o.ret >= 0) b.op(o.outcome, c, f, o.ret);
    }
    std::vector<SmallOp> oracle_ops = ops;
    for (SmallOp& o : oracle_ops) {
      if (o.outcome != EventType::kOk) o.ret = kInf;
    }
    std::vector<bool> used(ops.size(), false);
    const bool expected = brute_linearizable(oracle_ops, used, -1);
    auto report = check_history(b.sorted());
    const RuleResult& r = rule(report, "linearizable");
    INFO("iteration " << iter << "\n" << format_report(report, b.sorted()));
    REQUIRE(r.verdict == (expected ? Verdict::kOk : Verdict::kViolated));
    (expected ? ok : violated)++;
  }
  // Both outcomes were exercised.
  CHECK(ok > 300);
  CHECK(violated > 300);
}

}  // namespace sd::dlock::lab::test
