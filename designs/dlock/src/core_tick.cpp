// LockCore: time-driven work (lease expiry, lock-delay ends, waiter timeouts) and recovery.

#include <algorithm>

#include "core_state.hpp"
#include "sd/base/log.hpp"

namespace sd::dlock {

Status LockCore::State::expire_lease(LeaseNode* n, TimePoint at) {
  const bool delay = opt.lock_delay > Duration{0};
  Plan plan = plan_lease_removal(n, at, delay);
  SD_RETURN_IF_ERROR(store.apply(plan.batch));
  std::vector<HoldRef> held = n->second.holds;
  std::vector<HoldRef> touched;
  remove_lease(n, not_found("lease gone"), touched);
  if (delay) {
    for (const HoldRef& h : held) set_delay(h.kind, *h.name, at + opt.lock_delay);
  }
  leases.erase(leases.find(n->first));
  commit_plan(plan);
  for (const HoldRef& t : touched) maybe_drop(t.kind, t.name);
  return Status::ok();
}

void LockCore::State::tick() {
  const TimePoint now = clock.now();
  bool failed = false;
  if (!pending_pumps.empty()) {
    retry_pending_pumps(now);
    failed = !pending_pumps.empty();
  }
  bool expiry_blocked = false;
  // Everything due is applied in time order, so a tick that runs late still behaves as if it had
  // run at each instant. At equal instants: waiter timeouts, then lease expiries, then lock-delay
  // ends (a waiter is in line on [enqueue, deadline) and is never granted at its deadline).
  for (;;) {
    enum { kNone, kTimeout, kExpiry, kDelayEnd } what = kNone;
    TimePoint at = now;
    if (!wait_expiry.empty() && wait_expiry.begin()->first <= now) {
      what = kTimeout;
      at = wait_expiry.begin()->first;
    }
    if (!expiry_blocked && !lease_expiry.empty() && lease_expiry.begin()->at <= now &&
        (what == kNone || lease_expiry.begin()->at < at)) {
      what = kExpiry;
      at = lease_expiry.begin()->at;
    }
    if (!delay_ends.empty() && delay_ends.begin()->at <= now &&
        (what == kNone || delay_ends.begin()->at < at)) {
      what = kDelayEnd;
      at = delay_ends.begin()->at;
    }
    if (what == kNone) break;

    if (what == kTimeout) {
      Waiter& w = waiters.at(wait_expiry.begin()->second);
      WaiterEvent ev;
      ev.waiter = w.id;
      ev.status = conflict("locked");
      events.push_back(std::move(ev));
      const Kind kind = w.kind;
      NameNode* node = w.name;
      erase_waiter(w);
      pump(kind, node, at);
    } else if (what == kExpiry) {
      LeaseNode* n = lease_expiry.begin()->lease;
      Status st = expire_lease(n, at);
      if (!st) {
        note_store_failure(st, "lease expiry", now);
        expiry_blocked = true;  // keep the lease; retry on the next tick
      }
    } else {
      DelayKey k = *delay_ends.begin();
      clear_delay(k.kind, *k.name);
      pump(k.kind, k.name, at);
    }
  }
  failed = failed || expiry_blocked || !pending_pumps.empty();
  degraded = failed;
}

std::optional<TimePoint> LockCore::State::next_deadline() const {
  std::optional<TimePoint> best;
  auto consider = [&](TimePoint t) {
    if (!best || t < *best) best = t;
  };
  if (!wait_expiry.empty()) consider(wait_expiry.begin()->first);
  if (!lease_expiry.empty()) consider(lease_expiry.begin()->at);
  if (!delay_ends.empty()) consider(delay_ends.begin()->at);
  if (!pending_pumps.empty()) consider(retry_at);
  // While the store is failing, do not spin on work that is already overdue.
  if (best && degraded && *best < retry_at) best = retry_at;
  return best;
}

Status LockCore::State::recover() {
  if (recovered || !leases.empty() || hold_count != 0 || counter != 0) {
    return {Code::kFailedPrecondition, "recover() must be called once, before anything else"};
  }
  auto snap = store.load();
  if (!snap) return snap.status();
  const TimePoint now = clock.now();
  Token top = snap->token_reserved;

  for (PutLease& pl : snap->leases) {
    auto [it, inserted] = leases.try_emplace(pl.id);
    if (!inserted) continue;
    Lease& l = it->second;
    l.ttl = Duration(pl.ttl_ms);
    l.deadline = now + l.ttl;  // full TTL again: see store.hpp
    l.seq = next_lease_seq++;
    index_lease(*it);
  }
  size_t skipped = 0;
  for (PutHold& h : snap->holds) {
    auto lit = leases.find(h.lease_id);
    if (lit == leases.end()) {
      ++skipped;
      continue;
    }
    top = std::max(top, h.token);
    NameMap& m = names_of(h.kind);
    auto it = m.try_emplace(h.name).first;
    Active& a = ensure_active(h.kind, *it);
    if (h.kind == Kind::kSemaphore) {
      if (a.holders.empty()) a.limit = h.limit;
      add_holder(h.kind, *it, &*lit, Mode::kShared, h.permits, h.token);
    } else {
      add_holder(h.kind, *it, &*lit, h.mode, 1, h.token);
    }
  }
  for (auto& [key, token] : snap->last_tokens) {
    top = std::max(top, token);
    if (token == 0) continue;
    auto it = names_of(key.first).try_emplace(key.second).first;
    it->second.last_token = std::max(it->second.last_token, token);
  }
  if (skipped) {
    SD_LOG(kWarn) << "dlock: recover skipped " << skipped << " holds without a lease";
  }
  counter = top;
  reserved = top;  // the next grant reserves a fresh block above everything ever issued
  recovered = true;
  SD_LOG(kDebug) << "dlock: recovered " << leases.size() << " leases, " << hold_count
                 << " holds from " << store.describe() << "; tokens resume above " << top;
  return Status::ok();
}

}  // namespace sd::dlock
