// Lock handoff between two connections on one key. A holds the lock; B starts waiting (a
// server-side long-poll, or client-side polling); after `handoff_delay` (so B's wait is surely
// queued) A releases. The op latency is from the moment A's release is sent to the moment B's grant
// is received — what a waiting client experiences, excluding the time the lock was legitimately
// held. Then the roles swap. A and B run concurrently (awaitable operator &&) so each timestamp is
// taken when its own reply arrives, not when the other side's finished.
#include <algorithm>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "engine_impl.hpp"

namespace sd::loadgen::detail {

namespace {

using namespace boost::asio::experimental::awaitable_operators;

struct Side {
  Verdict verdict;
  SteadyTime at{};  // release sent (A) / grant received (B)
};

asio::awaitable<Verdict> step_once(Shared& sh, ThreadCtx& th, Conn& c, const Step& step,
                                   const std::string& key, bool do_send, bool do_receive,
                                   std::chrono::milliseconds timeout) {
  StepContext ctx{c.vars, c.op_vars, key, c.index, c.seq};
  Call call;
  if (do_send) call = step.make(ctx);
  auto reply = co_await exchange(sh, th, c, call, do_send, do_receive, timeout);
  if (!reply.is_ok()) co_return Verdict::error(step.name + ": " + reply.status().to_string());
  if (!do_receive) co_return Verdict::next();
  co_return step.check(*reply, ctx);
}

asio::awaitable<void> release_side(Shared& sh, ThreadCtx& th, Conn& a, const std::string& key,
                                   Side& out) {
  // A polling waiter's phase relative to the release would otherwise be fixed by the delay (B
  // polls at 0, A releases at `delay`: always retry - delay). Real releases come at random points
  // of the poll cycle, so jitter the release uniformly over one retry interval.
  auto delay = std::chrono::duration_cast<Clock::duration>(sh.cfg.handoff_delay);
  if (sh.cfg.workload.handoff->poll) {
    auto span = std::chrono::duration_cast<Clock::duration>(sh.cfg.workload.retry_interval);
    delay += Clock::duration(std::uniform_int_distribution<Clock::rep>(
        0, std::max<Clock::rep>(span.count() - 1, 0))(a.rng));
  }
  co_await sleep_until(a, Clock::now() + delay);
  out.at = Clock::now();
  out.verdict = co_await step_once(sh, th, a, sh.cfg.workload.handoff->release, key, true, true,
                                   sh.cfg.request_timeout);
}

asio::awaitable<void> wait_side(Shared& sh, ThreadCtx& th, Conn& b, const std::string& key,
                                SteadyTime began, Side& out) {
  const WorkloadSpec& w = sh.cfg.workload;
  if (!w.handoff->poll) {
    // The long-poll request was sent before the release side started; only the reply is awaited.
    out.verdict =
        co_await step_once(sh, th, b, w.handoff->wait, key, false, true, sh.cfg.request_timeout);
    out.at = Clock::now();
    co_return;
  }
  for (;;) {
    out.verdict =
        co_await step_once(sh, th, b, w.handoff->wait, key, true, true, sh.cfg.request_timeout);
    out.at = Clock::now();
    if (out.verdict.outcome != Outcome::kConflict) co_return;
    auto next = Clock::now() + w.retry_interval;
    if (next - began >= w.op_timeout || th.hard_stop) {
      out.verdict = Verdict::error("handoff: waiter not granted within the op timeout");
      co_return;
    }
    co_await sleep_until(b, next);
  }
}

// A takes the lock before the first handoff. A conflict means a leftover holder (e.g. an earlier
// run's key still inside its TTL): wait for it like any client would.
asio::awaitable<Verdict> initial_acquire(Shared& sh, ThreadCtx& th, Conn& a,
                                         const std::string& key) {
  for (;;) {
    Verdict v = co_await step_once(sh, th, a, sh.cfg.workload.handoff->acquire, key, true, true,
                                   sh.cfg.request_timeout);
    if (v.outcome != Outcome::kConflict) co_return v;
    if (Clock::now() >= sh.end || th.hard_stop) co_return Verdict::error("could not take the lock");
    co_await sleep_until(a, Clock::now() + sh.cfg.workload.retry_interval);
  }
}

}  // namespace

asio::awaitable<void> pair_loop(Shared& sh, ThreadCtx& th, Conn& first, Conn& second) {
  const WorkloadSpec& w = sh.cfg.workload;
  const std::string key = first.chooser.key_name(first.index / 2) + "-handoff";
  co_await sleep_until(first, sh.start);
  Conn* a = &first;
  Conn* b = &second;
  a->op_vars.clear();
  ++a->seq;
  Verdict v = co_await initial_acquire(sh, th, *a, key);
  bool holding = v.outcome == Outcome::kOk || v.outcome == Outcome::kNext;
  if (!holding) sh.record(th, sh.warm_end, Clock::now(), v, 0);

  while (holding && !th.hard_stop && !sh.max_ops_reached.load(std::memory_order_relaxed)) {
    SteadyTime began = Clock::now();
    if (began >= sh.end) break;
    if (sh.measured(began) && !sh.admit_measured()) break;
    b->op_vars.clear();
    ++b->seq;
    Side rel, wait;
    if (!w.handoff->poll) {
      Verdict sent =
          co_await step_once(sh, th, *b, w.handoff->wait, key, true, false, sh.cfg.request_timeout);
      if (sent.outcome == Outcome::kError) {
        sh.record(th, began, Clock::now(), sent, 0);
        break;
      }
    }
    co_await (release_side(sh, th, *a, key, rel) && wait_side(sh, th, *b, key, began, wait));

    Verdict outcome = Verdict::ok();
    if (rel.verdict.outcome == Outcome::kError) {
      outcome = rel.verdict;
    } else if (wait.verdict.outcome == Outcome::kError) {
      outcome = wait.verdict;
    } else if (wait.verdict.outcome == Outcome::kConflict) {
      outcome = Verdict::error("handoff: waiter's acquire timed out (409) after the release");
    } else if (wait.at < rel.at) {
      outcome = Verdict::error("handoff: waiter granted before the holder released");
    }
    if (outcome.outcome == Outcome::kError) {
      // The pair's lock state is unknown now; stop this pair rather than guess (the error is in
      // the report, and the other pairs go on).
      if (sh.measured(began)) sh.record(th, began, Clock::now(), outcome, 0);
      holding = false;
      break;
    }
    // Record the handoff latency: shift "intended" so done - intended == grant - release.
    sh.record(th, began, began + (wait.at - rel.at), outcome, 0);
    std::swap(a, b);
  }

  // Leave the lock free for the next run, then close the leases.
  if (holding && !th.hard_stop) {
    Side rel;
    rel.verdict =
        co_await step_once(sh, th, *a, w.handoff->release, key, true, true, sh.cfg.request_timeout);
  }
  co_await teardown(sh, th, first);
  co_await teardown(sh, th, second);
}

}  // namespace sd::loadgen::detail
