// The op loop of one connection, closed or open loop.
//
// Closed loop: the next op starts when the previous one completes; latency is measured from the
// actual send. Open loop: op k of connection c has an intended send time from the schedule; the
// loop sleeps until it, or sends at once when behind, and measures latency from the intended time
// (wrk2's correction for coordinated omission: a stalled server delays every queued op, and the
// report must show it, not just the one request that was stuck).
#include "engine_impl.hpp"

namespace sd::loadgen::detail {

namespace {

struct OpResult {
  Verdict verdict;
  uint32_t retries = 0;
};

asio::awaitable<OpResult> run_op(Shared& sh, ThreadCtx& th, Conn& c) {
  const WorkloadSpec& w = sh.cfg.workload;
  OpResult r;
  c.op_vars.clear();
  c.step_ns.clear();
  ++c.seq;
  std::string key = c.chooser.next();
  const auto op_start = Clock::now();
  for (;;) {
    r.verdict = co_await run_script(sh, th, c, w.op, c.op_vars, key);
    if (r.verdict.outcome == Outcome::kError && c.connect_failed) {
      // The server is down or refusing: back off instead of spinning through refused connects.
      co_await sleep_until(c, Clock::now() + std::chrono::milliseconds(100));
    }
    if (r.verdict.outcome != Outcome::kConflict || !w.retry_on_conflict) break;
    // Contended: retry like a polling lock client would, until success or the op timeout. The
    // op's latency covers the wait, so a retry interval that is too coarse shows up as latency.
    auto next = Clock::now() + w.retry_interval;
    if (next - op_start >= w.op_timeout || th.hard_stop || next >= sh.hard_end) break;
    ++r.retries;
    co_await sleep_until(c, next);
    if (th.hard_stop) break;
  }
  co_return r;
}

}  // namespace

asio::awaitable<void> conn_loop(Shared& sh, ThreadCtx& th, Conn& c) {
  std::optional<ConnectionPacer> pacer;
  if (sh.schedule) pacer.emplace(*sh.schedule, c.index);
  co_await sleep_until(c, sh.start);  // every thread starts together, after all setup is done
  for (;;) {
    if (th.hard_stop || sh.max_ops_reached.load(std::memory_order_relaxed)) break;
    SteadyTime intended;
    if (pacer) {
      intended = pacer->next_intended();
      if (intended >= sh.end) break;
      co_await sleep_until(c, intended);
      if (th.hard_stop) break;
    } else {
      intended = Clock::now();
      if (intended >= sh.end) break;
    }
    if (sh.measured(intended) && !sh.admit_measured()) break;
    OpResult r = co_await run_op(sh, th, c);
    SteadyTime done = Clock::now();
    if (pacer) pacer->complete(done);
    sh.record(th, intended, done, r.verdict, r.retries, &c);
  }
  co_await teardown(sh, th, c);
}

}  // namespace sd::loadgen::detail
