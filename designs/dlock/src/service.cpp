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
                         Scheduler scheduler)
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
          "From the release/revoke/expiry that freed a lock to the waiter's grant being sent")) {
  gate_->service = this;  // nobody else sees the gate yet
}

LockService::~LockService() {
  {
    std::lock_guard gate(gate_->mu);
    gate_->service = nullptr;
  }
  shutdown();
}

void LockService::shutdown() {
  Outbox out;
  {
    std::lock_guard lock(core_mu_);
    if (stopped_) return;
    stopped_ = true;
    out.stale_timers.push_back(std::move(timer_));
    armed_at_.reset();
    for (auto& [id, p] : parked_) {
      core_.cancel_wait(id);
      if (p.own_lease) (void)core_.revoke_lease(*p.own_lease);
      out.responses.push_back({std::move(p.responder),
                               net::Response::error(503, "unavailable", "server is shutting down"),
                               false,
                               {}});
    }
    parked_.clear();
    parked_by_key_.clear();
    (void)core_.take_events();
    update_gauges_locked();
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
    TimePoint now = clock_.now();
    core_.tick();
    // Expiry-driven handoffs are measured from the instant the expiry was due.
    after_core_call_locked(out, std::min(deadline, now));
  }
  flush(out);
}

}  // namespace sd::dlock
