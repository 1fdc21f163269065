// LockService machinery: waiter table, event delivery, the deadline timer, metrics.

#include "sd/dlock/service.hpp"

#include <algorithm>
#include <utility>

#include "sd/base/log.hpp"
#include "service_http.hpp"

namespace sd::dlock {

using service_detail::grant_response;
using service_detail::status_response;

LockService::LockService(LockCore& core, const Clock& clock, metrics::Registry& metrics,
                         Scheduler scheduler, Poster post)
    : core_(core),
      clock_(clock),
      scheduler_(std::move(scheduler)),
      leases_gauge_(metrics.gauge("dlock_leases", "Live leases")),
      holds_gauge_(metrics.gauge("dlock_holds", "Holds on locks and semaphores")),
      waiters_gauge_(metrics.gauge("dlock_waiters", "Queued acquire requests")),
      acquire_granted_(metrics.counter(
          "dlock_acquire_total", "Acquire requests by immediate result", {{"result", "granted"}})),
      acquire_queued_(metrics.counter("dlock_acquire_total", "Acquire requests by immediate result",
                                      {{"result", "queued"}})),
      acquire_locked_(metrics.counter("dlock_acquire_total", "Acquire requests by immediate result",
                                      {{"result", "locked"}})),
      acquire_error_(metrics.counter("dlock_acquire_total", "Acquire requests by immediate result",
                                     {{"result", "error"}})),
      grants_to_waiters_(metrics.counter("dlock_grants_to_waiters_total",
                                         "Grants delivered to queued (long-poll) acquires")),
      waiters_abandoned_(
          metrics.counter("dlock_waiters_abandoned_total",
                          "Queued (long-poll) acquires dropped because their client disconnected")),
      handoff_seconds_(metrics.histogram(
          "dlock_handoff_seconds",
          "From the release/revoke/expiry that freed a lock to the waiter's grant being sent")),
      commits_(metrics.counter("dlock_store_commits_total",
                               "Group commits of the store (each covers every reply it releases)")),
      commit_failures_(metrics.counter(
          "dlock_store_commit_failures_total",
          "Failed group commits (the state was reloaded from the store; their replies got 503)")),
      committed_replies_(metrics.counter("dlock_store_committed_replies_total",
                                         "Replies released by group commits")),
      post_(std::move(post)) {
  gate_->service = this;  // nobody else sees the gate yet
  if (post_) {
    // Nobody calls into the service yet, so core_ needs no lock here.
    Status st = core_.set_group_commit(true);
    group_commit_ = st.is_ok();
    if (!st) SD_LOG(kInfo) << "dlock: no group commit: " << st.to_string();
  }
}

LockService::~LockService() {
  {
    std::lock_guard gate(gate_->mu);
    gate_->service = nullptr;
  }
  shutdown();
  if (group_commit_) {
    // The core and its store may be used on without us: back to committing every batch.
    std::lock_guard lock(core_mu_);
    Status st = core_.set_group_commit(false);
    if (!st) SD_LOG(kWarn) << "dlock: leaving group commit: " << st.to_string();
  }
}

void LockService::shutdown() {
  Outbox out;
  {
    std::lock_guard lock(core_mu_);
    if (!stopped_) {
      stopped_ = true;
      out.stale_timers.push_back(std::move(timer_));
      armed_at_.reset();
      for (auto& [id, p] : parked_) {
        core_.cancel_wait(id);
        if (p.own_lease) (void)core_.revoke_lease(*p.own_lease);
        out.responses.push_back(
            {std::move(p.responder),
             net::Response::error(503, "unavailable", "server is shutting down"),
             false,
             {}});
      }
      parked_.clear();
      parked_by_key_.clear();
      (void)core_.take_events();
      update_gauges_locked();
    }
    // A posted commit task does not run once the server has stopped: commit here.
    if (group_commit_ && (commit_posted_ || core_.uncommitted())) commit_locked(out, false);
  }
  flush(out);
}

size_t LockService::parked_waiters() const {
  std::lock_guard lock(core_mu_);
  return parked_.size();
}

std::string LockService::parked_key(Kind kind, const LeaseId& lease, const std::string& name) {
  std::string key(1, kind == Kind::kLock ? 'L' : 'S');
  key += lease;
  key += name;  // lease ids have a fixed length, so the concatenation is unambiguous
  return key;
}

LockService::Parked LockService::unpark_locked(std::unordered_map<WaiterId, Parked>::iterator it) {
  Parked p = std::move(it->second);
  parked_.erase(it);
  parked_by_key_.erase(p.key);
  return p;
}

std::function<void()> LockService::abandon_callback(WaiterId waiter) const {
  return [gate = gate_, waiter] {
    std::lock_guard lock(gate->mu);
    if (gate->service != nullptr) gate->service->on_waiter_abandoned(waiter);
  };
}

void LockService::on_waiter_abandoned(WaiterId waiter) {
  Outbox out;
  {
    std::lock_guard lock(core_mu_);
    // Gone already: answered, superseded or shut down (waiter ids are never reused).
    auto it = parked_.find(waiter);
    if (it == parked_.end()) return;
    TimePoint start = clock_.now();
    Parked p = unpark_locked(it);
    core_.cancel_wait(waiter);
    if (p.own_lease) (void)core_.revoke_lease(*p.own_lease);
    waiters_abandoned_.inc();
    // Nobody receives this (the Responder is a no-op now); sending releases it outside the mutex.
    out.responses.push_back(
        {std::move(p.responder),
         net::Response::error(499, "client_closed", "the client disconnected while waiting"),
         false,
         {}});
    // Cancelling may unblock the waiters behind it (e.g. a big semaphore request at the head).
    after_core_call_locked(out, start);
    hold_until_durable_locked(out);
  }
  flush(out);
}

void LockService::drain_events_locked(Outbox& out, TimePoint op_start) {
  for (;;) {
    std::vector<WaiterEvent> events = core_.take_events();
    if (events.empty()) return;
    for (auto& ev : events) {
      auto it = parked_.find(ev.waiter);
      if (it == parked_.end()) continue;  // e.g. cancelled by shutdown()
      Parked p = unpark_locked(it);
      if (ev.granted) {
        out.responses.push_back(
            {std::move(p.responder),
             grant_response(ev.grant, p.limit, p.own_lease ? p.own_lease_ttl_ms : 0), true,
             op_start});
        continue;
      }
      // Not granted: a lease the shortcut created for this acquire must not outlive it. Revoking
      // may wake other waiters; the loop picks up their events.
      if (p.own_lease) (void)core_.revoke_lease(*p.own_lease);
      out.responses.push_back(
          {std::move(p.responder), status_response(ev.status, "lease_not_found"), false, {}});
    }
  }
}

void LockService::rearm_locked(Outbox& out) {
  if (stopped_) return;
  std::optional<TimePoint> next = core_.next_deadline();
  // A timer that fires before the next deadline is harmless (it ticks and re-arms), so only arm
  // when nothing is armed or the new deadline is earlier. No deadline: let an armed timer lapse.
  if (!next || (armed_at_ && *armed_at_ <= *next)) return;
  auto delay = std::chrono::ceil<std::chrono::milliseconds>(*next - clock_.now());
  delay = std::max(delay, std::chrono::milliseconds{0});
  armed_at_ = next;
  uint64_t generation = ++timer_generation_;
  TimePoint deadline = *next;
  net::TimerHandle fresh =
      scheduler_(delay, [this, generation, deadline] { on_timer(generation, deadline); });
  // The replaced timer is cancelled by flush(), outside core_mu_; if it fires first, it only ticks.
  out.stale_timers.push_back(std::exchange(timer_, std::move(fresh)));
}

void LockService::update_gauges_locked() {
  CoreStats st = core_.stats();
  leases_gauge_.set(static_cast<double>(st.leases));
  holds_gauge_.set(static_cast<double>(st.holds));
  waiters_gauge_.set(static_cast<double>(st.waiters));
}

void LockService::after_core_call_locked(Outbox& out, TimePoint op_start) {
  drain_events_locked(out, op_start);
  rearm_locked(out);
  update_gauges_locked();
}

void LockService::hold_until_durable_locked(Outbox& out) {
  if (!group_commit_) return;
  // A handoff to a waiter is a serial chain (the next release waits for this grant), so its
  // latency is the lock's throughput: commit now, with whatever is staged, instead of waiting
  // for the loop to get to the commit task.
  const bool handoff = std::any_of(out.responses.begin(), out.responses.end(),
                                   [](const Outgoing& o) { return o.waiter_grant; });
  if (handoff && (commit_posted_ || core_.uncommitted())) {
    for (auto& o : out.responses) deferred_.push_back(std::move(o));
    out.responses.clear();
    commit_locked(out, /*posted=*/false);
    return;
  }
  if (!commit_posted_) {
    // Nothing staged and nothing in flight: whatever these replies show is durable already.
    if (!core_.uncommitted()) return;
    // A group of one gains nothing from the trip through the I/O loop, and the parked reply
    // costs a few wake-ups: while groups stay solo, commit inline (as without group commit),
    // sending a probe group through the loop now and then to notice requests queueing up.
    if (solo_mode_ && ++solo_commits_ % kSoloProbeEvery != 0) {
      for (auto& o : out.responses) deferred_.push_back(std::move(o));
      out.responses.clear();
      commit_locked(out, /*posted=*/false);
      return;
    }
    commit_posted_ = true;
    // Queued behind the requests the loop has already read: they join this commit.
    post_([gate = gate_] {
      std::lock_guard lock(gate->mu);
      if (gate->service != nullptr) gate->service->run_commit();
    });
  }
  // Even a reply that changed nothing (a read, a 409) may show staged state: it waits too.
  for (auto& o : out.responses) deferred_.push_back(std::move(o));
  out.responses.clear();
}

void LockService::run_commit() {
  Outbox out;
  {
    std::lock_guard lock(core_mu_);
    if (!commit_posted_) return;  // shutdown() committed already
    commit_locked(out, /*posted=*/true);
  }
  flush(out);
}

void LockService::commit_locked(Outbox& out, bool posted) {
  commit_posted_ = false;
  Status st = core_.commit();
  if (st) {
    if (posted) {
      // Only groups that went through the loop tell whether others would have joined.
      solo_streak_ = deferred_.size() <= 1 ? solo_streak_ + 1 : 0;
      solo_mode_ = solo_streak_ >= kSoloGroups;
    }
    commits_.inc();
    committed_replies_.inc(static_cast<double>(deferred_.size()));
    for (auto& o : deferred_) out.responses.push_back(std::move(o));
    deferred_.clear();
    return;
  }
  // The memory state is ahead of the disk: no reply that depends on the lost group may claim
  // success. Reload the durable state and answer everyone involved 503; to the client that is a
  // lost reply (a batch that reserved tokens may have committed what was staged before it early),
  // so it retries -- idempotent by lease and token -- against what the store really holds.
  commit_failures_.inc();
  SD_LOG(kError) << "dlock: store commit failed, reloading the state from the store: "
                 << st.to_string();
  auto failed = [] {
    return net::Response::error(
        503, "unavailable", "the store failed to commit; retry (state reloaded from the store)");
  };
  for (auto& o : deferred_) {
    out.responses.push_back({std::move(o.responder), failed(), false, {}});
  }
  deferred_.clear();
  // The reloaded core has no waiters (and other deadlines): answer the parked ones too.
  for (auto& [id, p] : parked_) {
    out.responses.push_back({std::move(p.responder), failed(), false, {}});
  }
  parked_.clear();
  parked_by_key_.clear();
  out.stale_timers.push_back(std::move(timer_));
  armed_at_.reset();
  needs_reload_ = true;
  if (core_usable_locked()) rearm_locked(out);
  update_gauges_locked();
}

bool LockService::core_usable_locked() {
  if (!needs_reload_) return true;
  Status st = core_.reload();
  if (!st) {
    SD_LOG(kError) << "dlock: reloading the state from the store failed: " << st.to_string();
    return false;
  }
  needs_reload_ = false;
  SD_LOG(kWarn) << "dlock: state reloaded from the store after a failed commit";
  return true;
}

void LockService::flush(Outbox& out) {
  for (auto& t : out.stale_timers) t.cancel();
  out.stale_timers.clear();
  for (auto& o : out.responses) {
    o.responder.send(std::move(o.response));
    if (o.waiter_grant) {
      grants_to_waiters_.inc();
      if (o.handoff_start) {
        std::chrono::duration<double> d = clock_.now() - *o.handoff_start;
        handoff_seconds_.observe(std::max(d.count(), 0.0));
      }
    }
  }
  out.responses.clear();
}

void LockService::on_timer(uint64_t generation, TimePoint deadline) {
  Outbox out;
  {
    std::lock_guard lock(core_mu_);
    if (stopped_) return;
    if (generation == timer_generation_) armed_at_.reset();
    if (!core_usable_locked()) return;  // the next request retries the reload
    TimePoint now = clock_.now();
    core_.tick();
    // Expiry-driven handoffs are measured from the instant the expiry was due.
    after_core_call_locked(out, std::min(deadline, now));
    hold_until_durable_locked(out);
  }
  flush(out);
}

}  // namespace sd::dlock
