// Building blocks shared by the op loop and the handoff loop: sleeping, (re)connecting, one
// request/reply under a deadline, running a script, and the per-thread timeout sweeper.
#include <boost/asio/use_awaitable.hpp>

#include "engine_impl.hpp"

namespace sd::loadgen::detail {

void Shared::sample_error(const std::string& message) {
  std::lock_guard<std::mutex> lk(samples_mu);
  if (samples.size() < cfg.max_error_samples) samples.push_back(message);
}

bool Shared::admit_measured() {
  if (cfg.max_ops == 0) return true;
  if (started_measured.fetch_add(1, std::memory_order_relaxed) < cfg.max_ops) return true;
  max_ops_reached.store(true, std::memory_order_relaxed);
  return false;
}

void Shared::record(ThreadCtx& th, SteadyTime intended, SteadyTime done, const Verdict& v,
                    uint32_t retries, const Conn* conn) {
  if (!measured(intended)) return;
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(done - intended).count();
  th.hist.record(ns > 0 ? static_cast<uint64_t>(ns) : 0);
  if (conn != nullptr) {
    for (const auto& [step, step_ns] : conn->step_ns)
      if (step < th.step_hists.size()) th.step_hists[step].record(step_ns);
  }
  th.counters.retries += retries;
  switch (v.outcome) {
    case Outcome::kNext:
    case Outcome::kOk:
      ++th.counters.ok;
      break;
    case Outcome::kConflict:
      ++th.counters.conflicts;
      break;
    case Outcome::kError:
      ++th.counters.errors;
      th.progress_errors.fetch_add(1, std::memory_order_relaxed);
      sample_error(v.message);
      break;
  }
  th.progress_ops.fetch_add(1, std::memory_order_relaxed);
  if (done > th.last_measured_done) th.last_measured_done = done;
}

asio::awaitable<void> sleep_until(Conn& c, SteadyTime t) {
  if (t <= Clock::now()) co_return;
  c.timer.expires_at(t);
  co_await c.timer.async_wait(kTok);  // cancelled at hard stop: the caller rechecks its state
}

asio::awaitable<Status> ensure_connected(Shared& sh, ThreadCtx& th, Conn& c) {
  if (c.transport->is_open()) co_return Status::ok();
  if (th.hard_stop) co_return unavailable("stopped");
  c.deadline = Clock::now() + sh.cfg.request_timeout;
  c.timed_out = false;
  Status st = co_await c.transport->connect();
  c.deadline = kNever;
  c.connect_failed = !st.is_ok();
  if (!st.is_ok() && c.timed_out) st = deadline_exceeded("connect timed out");
  co_return st;
}

asio::awaitable<Result<Reply>> exchange(Shared& sh, ThreadCtx& th, Conn& c, const Call& call,
                                        bool do_send, bool do_receive,
                                        std::chrono::milliseconds timeout) {
  Status failure;
  Result<Reply> out = Reply{};
  if (do_send) {
    Status st = co_await ensure_connected(sh, th, c);
    if (!st.is_ok()) co_return st;
    c.deadline = Clock::now() + timeout;  // covers the reply too when it is received later
    c.timed_out = false;
    failure = co_await c.transport->send(call);
  }
  if (failure.is_ok() && do_receive) {
    out = co_await c.transport->receive();
    if (!out.is_ok()) failure = out.status();
  }
  if (do_receive || !failure.is_ok()) c.deadline = kNever;
  if (failure.is_ok()) co_return out;
  c.transport->close();  // framing is unknown after a failure: start over on a new connection
  if (c.timed_out)
    co_return deadline_exceeded("no reply within " + std::to_string(timeout.count()) + " ms");
  if (th.hard_stop) co_return deadline_exceeded("abandoned at the drain timeout");
  co_return failure;
}

asio::awaitable<Verdict> run_script(Shared& sh, ThreadCtx& th, Conn& c, const Script& script,
                                    Vars& op_vars, const std::string& key) {
  StepContext ctx{c.vars, op_vars, key, c.index, c.seq};
  const bool is_op = &script == &sh.cfg.workload.op;
  for (size_t i = 0; i < script.size(); ++i) {
    const Step& step = script[i];
    Call call = step.make(ctx);
    const auto sent = Clock::now();
    auto reply = co_await exchange(sh, th, c, call, true, true, sh.cfg.request_timeout);
    if (step.timed && is_op) {
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - sent).count();
      c.step_ns.emplace_back(i, ns > 0 ? static_cast<uint64_t>(ns) : 0);
    }
    if (!reply.is_ok()) co_return Verdict::error(step.name + ": " + reply.status().to_string());
    Verdict v = step.check(*reply, ctx);
    if (v.outcome != Outcome::kNext) co_return v;
  }
  co_return Verdict::ok();
}

asio::awaitable<void> teardown(Shared& sh, ThreadCtx& th, Conn& c) {
  if (th.hard_stop || sh.cfg.workload.teardown.empty()) co_return;
  Vars scratch;
  std::string key;
  co_await run_script(sh, th, c, sh.cfg.workload.teardown, scratch, key);  // best effort
}

asio::awaitable<void> sweeper(Shared& sh, ThreadCtx& th) {
  // One timer per thread instead of one per request: arming and cancelling a timer around every
  // request would cost more than the request itself at loopback speeds. The granularity (10 ms)
  // only matters for requests that time out anyway.
  asio::steady_timer tick(th.ioc);
  while (th.active > 0) {
    auto now = Clock::now();
    if (!th.hard_stop && now >= sh.hard_end) {
      th.hard_stop = true;
      for (auto& c : th.conns) {
        c->timed_out = false;
        c->transport->close();
        c->timer.cancel();
      }
    }
    for (auto& c : th.conns) {
      if (now > c->deadline && c->transport->is_open()) {
        c->timed_out = true;
        c->transport->close();
      }
    }
    tick.expires_after(std::chrono::milliseconds(10));
    co_await tick.async_wait(kTok);
  }
}

}  // namespace sd::loadgen::detail
